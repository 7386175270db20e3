"""data_prep.spans: what a run's stats say over a window of spans, and spans that disagree."""
import pytest

from config import ConfigError
from data_prep.spans import check_consistent, merge_window


def span(read, train, eval_, classes=("no_smile", "smile"), sizes=("96x96",)):
    return {"read": read, "written": read, "rejected": 0, "rejected_by_reason": {},
            "examples": {"train": train, "eval": eval_},
            "examples_by_task": {"smile": train + eval_},
            "examples_by_split_task": {"train": {"smile": train}, "eval": {"smile": eval_}},
            "labels_by_task": {"smile": {c: 1 for c in classes}}, "image_sizes": {s: read for s in sizes}}


def test_merge_counts_records_and_train_of_the_window_and_eval_of_the_newest():
    per_span = {1: span(10, 8, 2), 2: span(20, 15, 5), 3: span(30, 24, 6)}
    merged = merge_window(per_span, [2, 3], 3)
    assert merged["read"] == 50 and merged["written"] == 50
    assert merged["examples"] == {"train": 39, "eval": 6}
    assert merged["examples_by_split_task"] == {"train": {"smile": 39}, "eval": {"smile": 6}}
    assert merged["examples_by_task"] == {"smile": 45}
    assert merged["image_sizes"] == {"96x96": 50}


def test_spans_with_other_classes_or_another_fixed_size_are_refused():
    check_consistent("sources[0].path", {1: span(1, 1, 0), 2: span(1, 1, 0)})
    with pytest.raises(ConfigError, match=r"its spans differ in task smile's classes: span 1: no_smile, smile; "
                                          r"span 2: smile"):
        check_consistent("sources[0].path", {1: span(1, 1, 0), 2: span(1, 1, 0, classes=("smile",))})
    with pytest.raises(ConfigError, match="different sizes: span 1: 96x96; span 2: 64x64"):
        check_consistent("sources[0].path", {1: span(1, 1, 0), 2: span(1, 1, 0, sizes=("64x64",))})
    # varying sizes within a span (IMDB-WIKI's crops): a shift is drift, not an error
    check_consistent("sources[0].path", {1: span(2, 2, 0, sizes=("96x96", "80x80")),
                                         2: span(2, 2, 0, sizes=("64x64", "70x70"))})
