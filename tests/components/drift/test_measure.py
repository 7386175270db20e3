"""components.drift.measure: TFDV's drift distances on hand-made prep_stats counts, checked
against the arithmetic by hand."""
import copy
import json
import math

import pytest

from components.drift.measure import THRESHOLD_KEYS, breaches, feature_counts, measure_drift

# Two spans of two sources. g: the smile share goes 0.60 -> 0.75, the image sizes 50/50 -> 75/25
# and 20 of its 100 records are now rejected; w: the same counts in both spans.
W = {"read": 50, "written": 40, "rejected": 10, "examples_by_task": {"gender": 40},
     "labels_by_task": {"gender": {"female": 20, "male": 20}},
     "image_formats": {"JPEG": 30, "PNG": 10}, "image_sizes": {"96x96": 40}}
PREVIOUS = {"g": {"read": 100, "written": 100, "rejected": 0, "examples_by_task": {"smile": 100},
                  "labels_by_task": {"smile": {"no_smile": 40, "smile": 60}},
                  "image_formats": {"JPEG": 100}, "image_sizes": {"96x96": 50, "64x64": 50}},
            "w": W}
NEW = {"g": {"read": 100, "written": 80, "rejected": 20, "examples_by_task": {"smile": 80},
             "labels_by_task": {"smile": {"no_smile": 20, "smile": 60}},
             "image_formats": {"JPEG": 80}, "image_sizes": {"96x96": 60, "64x64": 20}},
       "w": copy.deepcopy(W)}
LOOSE = dict.fromkeys(THRESHOLD_KEYS, 0.5)
FEATURES = ["examples", "image_format/g", "image_format/w", "image_size/g", "image_size/w",
            "label/gender", "label/smile", "rejection/g", "rejection/w"]


def js_bits(p, q):
    """The Jensen-Shannon divergence in bits: (KL(p || m) + KL(q || m)) / 2, m = (p + q) / 2."""
    m = [(a + b) / 2 for a, b in zip(p, q)]
    kl = lambda x, y: sum(a * math.log2(a / b) for a, b in zip(x, y) if a)  # noqa: E731
    return (kl(p, m) + kl(q, m)) / 2


def distances(result):
    return {f: r["distance"] for f, r in result.items()}


def test_infinity_norm_by_hand():
    result = measure_drift(PREVIOUS, NEW, LOOSE)
    assert list(result) == FEATURES  # sorted
    got = distances(result)
    # label/smile: no_smile 40/100 = 0.40 -> 20/80 = 0.25, smile 0.60 -> 0.75: max |diff| = 0.15
    assert got["label/smile"] == pytest.approx(0.15, abs=1e-12)
    # examples: g/smile 100/140 = 0.7143 -> 80/120 = 0.6667, w/gender 40/140 = 0.2857 -> 40/120 = 0.3333:
    # both move by 5/7 - 2/3 = 1/21 = 0.047619
    assert got["examples"] == pytest.approx(1 / 21, abs=1e-12)
    # image_size/g: 96x96 0.50 -> 0.75, 64x64 0.50 -> 0.25: 0.25
    assert got["image_size/g"] == pytest.approx(0.25, abs=1e-12)
    # rejection/g: written 100/100 = 1.0 -> 80/100 = 0.8, rejected 0 -> 0.2: 0.2
    assert got["rejection/g"] == pytest.approx(0.2, abs=1e-12)
    # unchanged: w's every feature, g's format (all JPEG), gender (all from w)
    for f in ("image_format/g", "image_format/w", "image_size/w", "label/gender", "rejection/w"):
        assert got[f] == 0.0
    r = result["label/smile"]
    assert r["previous"] == {"no_smile": 0.4, "smile": 0.6} and r["new"] == {"no_smile": 0.25, "smile": 0.75}
    assert (r["threshold"], r["comparator"], r["passed"]) == (0.5, "infinity_norm", True)
    assert result["rejection/g"]["previous"] == {"written": 1.0}  # a zero count is no value
    assert result["examples"]["new"] == {"g/smile": 80 / 120, "w/gender": 40 / 120}
    json.dumps(result)  # plain data: DriftGate writes it to drift.json


def test_jensen_shannon_by_hand():
    result = measure_drift(PREVIOUS, NEW, LOOSE, comparator="jensen_shannon_divergence")
    got = distances(result)
    # label/smile: p = (0.40, 0.60), q = (0.25, 0.75), m = (0.325, 0.675);
    # KL(p||m) = 0.40 log2(0.40/0.325) + 0.60 log2(0.60/0.675) = 0.119824 - 0.101955 = 0.017869
    # KL(q||m) = 0.25 log2(0.25/0.325) + 0.75 log2(0.75/0.675) = -0.094628 + 0.114002 = 0.019374
    # JS = (0.017869 + 0.019374) / 2 = 0.018622 bits
    assert js_bits([0.40, 0.60], [0.25, 0.75]) == pytest.approx(0.018622, abs=1e-6)
    assert got["label/smile"] == pytest.approx(js_bits([0.40, 0.60], [0.25, 0.75]), abs=1e-9)
    # rejection/g: p = (1, 0), q = (0.8, 0.2), m = (0.9, 0.1);
    # KL(p||m) = log2(1/0.9) = 0.152003; KL(q||m) = 0.8 log2(0.8/0.9) + 0.2 log2(0.2/0.1) = -0.135940 + 0.2
    # JS = (0.152003 + 0.064060) / 2 = 0.108032 bits (0.108032, not 0.2: JS is not the L-infinity norm)
    assert js_bits([1.0, 0.0], [0.8, 0.2]) == pytest.approx(0.108032, abs=1e-6)
    assert got["rejection/g"] == pytest.approx(js_bits([1.0, 0.0], [0.8, 0.2]), abs=1e-9)
    # image_size/g: p = (0.5, 0.5), q = (0.75, 0.25), m = (0.625, 0.375)
    assert got["image_size/g"] == pytest.approx(js_bits([0.5, 0.5], [0.75, 0.25]), abs=1e-9)
    assert got["examples"] == pytest.approx(js_bits([5 / 7, 2 / 7], [2 / 3, 1 / 3]), abs=1e-9)
    assert got["label/gender"] == got["image_size/w"] == 0.0
    assert {r["comparator"] for r in result.values()} == {"jensen_shannon_divergence"}


@pytest.mark.parametrize("threshold,passed", [(0.25, True), (0.2499, False), (0.26, True), (0.0, False)])
def test_pass_and_fail_at_the_threshold(threshold, passed):
    """TFDV's rule: a breach is a distance above the threshold; equal passes."""
    result = measure_drift(PREVIOUS, NEW, dict(LOOSE, image_size=threshold))
    assert result["image_size/g"]["distance"] == 0.25  # 0.75 - 0.5, exact in floating point
    assert result["image_size/g"]["passed"] is passed
    assert result["image_size/w"]["passed"] is True  # distance 0 passes even threshold 0
    assert [line.split()[1] for line in breaches(result)] == ([] if passed else ["image_size/g"])


def test_each_kind_takes_its_threshold():
    thresholds = {"label_distribution": 0.1, "examples_share": 0.05, "image_size": 0.3, "image_format": 0.0,
                  "rejection_rate": 0.19}
    result = measure_drift(PREVIOUS, NEW, thresholds)
    assert {f: r["threshold"] for f, r in result.items()} == {
        "examples": 0.05, "image_format/g": 0.0, "image_format/w": 0.0, "image_size/g": 0.3, "image_size/w": 0.3,
        "label/gender": 0.1, "label/smile": 0.1, "rejection/g": 0.19, "rejection/w": 0.19}
    # 0.15 > 0.1, 0.2 > 0.19; examples 0.0476 <= 0.05, image_size/g 0.25 <= 0.3
    assert sorted(f for f, r in result.items() if not r["passed"]) == ["label/smile", "rejection/g"]
    assert breaches(result) == [
        "drift: label/smile infinity_norm distance 0.150 > threshold 0.100 "
        "(previous {no_smile: 0.400, smile: 0.600} -> new {no_smile: 0.250, smile: 0.750})",
        "drift: rejection/g infinity_norm distance 0.200 > threshold 0.190 "
        "(previous {rejected: 0.000, written: 1.000} -> new {rejected: 0.200, written: 0.800})"]


def test_identical_spans_are_at_distance_0():
    for comparator in ("infinity_norm", "jensen_shannon_divergence"):
        result = measure_drift(PREVIOUS, copy.deepcopy(PREVIOUS), dict.fromkeys(THRESHOLD_KEYS, 0.0), comparator)
        assert list(result) == FEATURES
        assert all(r["distance"] == 0.0 and r["passed"] and r["previous"] == r["new"] for r in result.values())
        assert breaches(result) == []


def test_a_new_source():
    """A source of the new span only: its own features against nothing, distance 1.0; where it joins
    the others (examples, a task's labels) TFDV measures the shift it brings."""
    new = dict(copy.deepcopy(NEW), u={"read": 10, "written": 10, "rejected": 0, "examples_by_task": {"gender": 10},
                                        "labels_by_task": {"gender": {"male": 10}},
                                        "image_formats": {"PNG": 10}, "image_sizes": {"200x200": 10}})
    result = measure_drift(PREVIOUS, new, LOOSE)
    for f in ("image_format/u", "image_size/u", "rejection/u"):
        assert result[f]["distance"] == 1.0 and result[f]["passed"] is False and result[f]["previous"] == {}
    assert result["image_size/u"]["new"] == {"200x200": 1.0}
    # label/gender: female 20/40 = 0.5 -> 20/50 = 0.4, male 0.5 -> 30/50 = 0.6: 0.1
    assert result["label/gender"]["distance"] == pytest.approx(0.1, abs=1e-12)
    # examples: g/smile 100/140 -> 80/130, w/gender 40/140 -> 40/130, u/gender 0 -> 10/130: largest 5/7 - 8/13
    assert result["examples"]["distance"] == pytest.approx(5 / 7 - 8 / 13, abs=1e-12)
    assert "drift: image_size/u infinity_norm distance 1.000 > threshold 0.500 (previous {} -> new " \
           "{200x200: 1.000})" in breaches(result)


def test_a_source_that_vanished():
    result = measure_drift(PREVIOUS, {"g": NEW["g"]}, LOOSE, comparator="jensen_shannon_divergence")
    for f in ("image_format/w", "image_size/w", "rejection/w", "label/gender"):  # gender: only w labels it
        assert result[f]["distance"] == 1.0 and result[f]["passed"] is False and result[f]["new"] == {}
    # examples: w/gender's share 40/140 -> 0, g/smile 100/140 -> 1; JS of (5/7, 2/7) and (1, 0)
    assert result["examples"]["distance"] == pytest.approx(js_bits([5 / 7, 2 / 7], [1.0, 0.0]), abs=1e-9)
    assert "drift: label/gender jensen_shannon_divergence distance 1.000 > threshold 0.500 " \
           "(previous {female: 0.500, male: 0.500} -> new {})" in breaches(result)
    # a one-sided feature passes only a threshold of 1 (the largest distance there is)
    assert measure_drift(PREVIOUS, {"g": NEW["g"]}, dict.fromkeys(THRESHOLD_KEYS, 1.0))["label/gender"]["passed"]


def test_feature_counts():
    assert feature_counts(PREVIOUS) == {
        "label/smile": {"no_smile": 40, "smile": 60}, "label/gender": {"female": 20, "male": 20},
        "examples": {"g/smile": 100, "w/gender": 40},
        "image_size/g": {"96x96": 50, "64x64": 50}, "image_size/w": {"96x96": 40},
        "image_format/g": {"JPEG": 100}, "image_format/w": {"JPEG": 30, "PNG": 10},
        "rejection/g": {"written": 100}, "rejection/w": {"written": 40, "rejected": 10}}
    two = {"a": dict(W), "b": dict(W, labels_by_task={"gender": {"female": 5}})}
    assert feature_counts(two)["label/gender"] == {"female": 25, "male": 20}  # summed over sources


def test_breach_lines_show_the_values_that_moved_most():
    prev = copy.deepcopy(PREVIOUS)
    new = copy.deepcopy(PREVIOUS)
    prev["g"]["image_sizes"] = {f"{k}x{k}": 10 for k in range(1, 11)}
    new["g"]["image_sizes"] = dict({f"{k}x{k}": 10 for k in range(1, 11)}, **{"3x3": 40})
    line = breaches(measure_drift(prev, new, dict(LOOSE, image_size=0.01)))
    assert line == ["drift: image_size/g infinity_norm distance 0.208 > threshold 0.010 "
                    "(previous {3x3: 0.100, 10x10: 0.100, 1x1: 0.100, 2x2: 0.100, 4x4: 0.100, 5x5: 0.100} -> "
                    "new {3x3: 0.308, 10x10: 0.077, 1x1: 0.077, 2x2: 0.077, 4x4: 0.077, 5x5: 0.077}) "
                    "(+4 more values)"]


@pytest.mark.parametrize("kwargs,match", [
    ({"comparator": "l2"}, "comparator must be one of infinity_norm, jensen_shannon_divergence, received 'l2'"),
    ({"thresholds": {"label_distribution": 0.1}}, "missing examples_share, image_size, image_format, rejection_rate"),
    ({"thresholds": dict(LOOSE, colour=0.1)}, "unknown colour"),
    ({"thresholds": dict(LOOSE, image_size=1.5)}, r"thresholds.image_size: expected a distance in \[0, 1\], "
                                                  "received 1.5"),
    ({"previous": {"g": {"read": 1, "written": 1, "rejected": 0, "examples_by_task": {"smile": 1}}}},
     r"previous\['g'\] has no labels_by_task, image_formats, image_sizes: prep_stats.json of a conversion from "
     "before these counts"),
    ({"previous": dict(PREVIOUS, g=dict(PREVIOUS["g"], written=-1))},
     r"previous\['g'\].written: expected a count \(an integer >= 0\), received -1"),
])
def test_bad_input_is_named(kwargs, match):
    args = {"previous": PREVIOUS, "thresholds": LOOSE, "comparator": "infinity_norm", **kwargs}
    with pytest.raises(ValueError, match=match):
        measure_drift(args["previous"], NEW, args["thresholds"], args["comparator"])
