"""benchmarks.warm_start_steps's arithmetic: target, first step reached, steps saved."""
import pytest

from benchmarks.warm_start_steps import compare, metric_for, seed_config, summarize, validation_curve


def test_reached_at_the_first_epoch_at_or_past_the_scratch_final():
    scratch = [0.5, 0.6, 0.7, 0.75, 0.8]
    warm = [0.7, 0.78, 0.8, 0.79, 0.82]
    r = compare(warm, scratch, steps=600, steps_per_epoch=120)
    assert r["target"] == 0.8 and r["steps"] == 600
    assert r["reached_step"] == 360  # epoch index 2 ends at step 3 x 120
    assert r["steps_saved"] == 240
    assert (r["warm_first_epoch"], r["scratch_first_epoch"]) == (0.7, 0.5)
    assert (r["warm_final"], r["scratch_final"]) == (0.82, 0.8)
    assert r["scratch_reached_step"] == 600


def test_never_reached_saves_nothing():
    r = compare([0.6, 0.7, 0.79], [0.5, 0.9, 0.8], steps=300, steps_per_epoch=100)
    assert r["reached_step"] is None and r["steps_saved"] == 0
    assert r["scratch_reached_step"] == 200  # scratch itself passed 0.8 at its second epoch


def test_reached_only_at_the_end_saves_nothing():
    r = compare([0.1, 0.2, 0.8], [0.5, 0.6, 0.8], steps=30, steps_per_epoch=10)
    assert r["reached_step"] == 30 and r["steps_saved"] == 0


def test_lower_is_better_for_regression():
    assert metric_for("regression") == ("mae", False) and metric_for("binary") == ("accuracy", True)
    r = compare([6.0, 4.5, 4.0], [9.0, 6.0, 5.0], steps=30, steps_per_epoch=10, higher_is_better=False)
    assert r["target"] == 5.0 and r["reached_step"] == 20 and r["steps_saved"] == 10


def test_empty_curve_is_an_error():
    with pytest.raises(ValueError):
        compare([], [0.5], steps=10, steps_per_epoch=10)


def test_validation_curve_in_epoch_order():
    report = {"tasks": {"smile": {"training_curves": {"accuracy": {
        "train": [[0, 0.1]], "validation": [[1, 0.7], [0, 0.6], [2, 0.8]]}}}}}
    assert validation_curve(report, "smile", "accuracy") == [0.6, 0.7, 0.8]


def test_summary_over_seeds():
    rows = {"0": {"smile": {"steps": 600, "reached_step": 120, "steps_saved": 480, "scratch_reached_step": 360,
                            "warm_first_epoch": 0.8,
                            "scratch_first_epoch": 0.6, "warm_final": 0.85, "scratch_final": 0.84}},
            "1": {"smile": {"steps": 600, "reached_step": None, "steps_saved": 0, "scratch_reached_step": 480,
                            "warm_first_epoch": 0.7,
                            "scratch_first_epoch": 0.6, "warm_final": 0.8, "scratch_final": 0.82}}}
    s = summarize(rows)["smile"]
    assert s["seeds"] == 2 and s["reached"] == 1 and s["mean_steps_saved"] == 240
    assert s["mean_steps_ahead_of_scratch"] == (240 + -120) / 2  # never reached: counted at 600
    assert s["mean_first_epoch_gap"] == pytest.approx(0.15) and s["mean_final_gap"] == pytest.approx(-0.005)


def test_seed_config_offsets_seeds_and_keeps_the_rest():
    raw = {"sources": [{"name": "g", "sample": {"count": 600, "seed": 1}}, {"name": "w", "sample": {"count": 8}}],
           "tasks": [{"name": "smile", "thresholds": {"accuracy": 0.8}}, {"name": "x"}],
           "train": {"steps": 600, "warm_start": True}, "validation": {"drift": {"action": "warn"}}}
    c = seed_config(raw, 2, warm_start=False, quick=False)
    assert [s["sample"]["seed"] for s in c["sources"]] == [2001, 2000]
    assert c["train"] == {"steps": 600, "warm_start": False, "seed": 44}  # TrainConfig's default 42 + 2
    assert [t["thresholds"] for t in c["tasks"]] == [{"accuracy": 0.0}, {"accuracy": 0.0}]
    assert c["validation"] == {"drift": {"action": "warn"}} and c["evaluation"]["max_regression"] == 0.99
    assert raw["sources"][0]["sample"]["seed"] == 1 and raw["train"]["warm_start"] is True  # not mutated
