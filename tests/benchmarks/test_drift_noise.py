"""benchmarks.drift_noise's sampling model: a redraw keeps every total and every value set."""
import numpy as np

from benchmarks.drift_noise import redraw

SOURCES = {"g": {"read": 100, "written": 80, "rejected": 20, "examples_by_task": {"smile": 80},
                 "labels_by_task": {"smile": {"no_smile": 30, "smile": 50}},
                 "image_formats": {"JPEG": 80}, "image_sizes": {"96x96": 60, "64x64": 20}}}


def test_a_redraw_keeps_totals_and_values():
    rng = np.random.default_rng(0)
    draws = [redraw(SOURCES, rng)["g"] for _ in range(50)]
    for d in draws:
        assert d["written"] + d["rejected"] == 100 and d["read"] == 100
        smile = d["labels_by_task"]["smile"]
        assert sum(smile.values()) == 80 and set(smile) <= {"no_smile", "smile"}
        assert d["image_formats"] == {"JPEG": 80} and d["examples_by_task"] == {"smile": 80}  # one value: fixed
        assert sum(d["image_sizes"].values()) == 80
    assert len({d["labels_by_task"]["smile"]["smile"] for d in draws}) > 5  # it does vary
    assert abs(np.mean([d["labels_by_task"]["smile"]["smile"] for d in draws]) - 50) < 3
