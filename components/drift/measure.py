"""Drift distances between two spans (deliveries) of the same sources, by TFDV's own comparators.

Input: two prep_stats.json `sources` dicts ({source: {read, written, rejected,
examples_by_task, labels_by_task, image_formats, image_sizes, ...}},
docs/data_prep.md "Counting rules"), the previous span's and the new one's.
From each, one categorical feature per distribution that can drift:

| feature | values, counted | threshold key |
|---|---|---|
| `label/<task>` | the task's class names, examples summed over sources | `label_distribution` |
| `examples` | `<source>/<task>`, examples (`examples_by_task`) | `examples_share` |
| `image_size/<source>` | `"WxH"` of the raw images, written records | `image_size` |
| `image_format/<source>` | `JPEG`, `PNG`, ... of the raw images, written records | `image_format` |
| `rejection/<source>` | `written` / `rejected`, records | `rejection_rate` |

Each side becomes a tensorflow_metadata DatasetFeatureStatisticsList of one
dataset whose features are STRING features with the counts in
`string_stats.rank_histogram` (and `top_values`); the schema gives every
feature a `drift_comparator` (`infinity_norm` or `jensen_shannon_divergence`,
one for all) with the threshold of its kind; and
`tfdv.validate_statistics(new, schema, previous_statistics=previous)`
measures them. The features count different things (examples, records), so
the dataset's `num_examples` is the largest feature total and each feature is
"present" on `num_non_missing` = its own total of them; TFDV's comparators
normalise each feature's rank histogram by the histogram's own sum (checked:
changing num_non_missing or num_examples does not move a distance), so only
the counts enter a distance.

Why TFDV's comparators on statistics built from the conversion's counts, not
TFX's DistributionValidator (or ExampleValidator's drift) on the statistics
StatisticsGen computes from the examples: the examples cannot show these
distributions.
- The label is one padded float vector, `label`, shared by all tasks (one-hot
  at the class index, docs/data_contract.md): TFDV's statistics of the
  examples hold a numeric histogram of all its floats over all tasks, no
  class histogram per task, so a task's class shares cannot drift there.
- The raw image sizes and formats are gone after the prep: every example's
  `image` is `image.size` in `image.encoding`.
- Rejected records are not examples: the rejection rate is in no statistics
  of the examples.
The conversion counts all of them exactly (prep_stats.json), and TFDV's
comparators take statistics protos from anywhere, so the distances are
TFDV's own, computed on those counts.

Distances of passing features: TFDV's `drift_skew_info` holds a measurement
for every compared feature, passing or not (validate_statistics documents it,
"the raw skew/drift measurements for each feature that is compared"; checked
on tensorflow-data-validation 1.16.1: a feature at distance 0 has its
measurement), so every distance is read from there; no threshold trick is
needed. `passed` is TFDV's verdict: the feature has no COMPARATOR_*_HIGH
anomaly, which TFDV raises when distance > threshold (a distance equal to its
threshold passes; a threshold of 0 flags any change). `infinity_norm` is the
largest absolute difference of one value's share; `jensen_shannon_divergence`
is TFDV's Jensen-Shannon divergence in bits (log base 2, so in [0, 1]; not its
square root, the JS distance). Both are 1.0 for disjoint supports.

A feature with counts on one side only (a new source, a vanished one, a task
no source labelled before) is not handed to TFDV, which measures nothing
useful there (absent from the previous statistics: a
COMPARATOR_CONTROL_DATA_MISSING anomaly and no measurement; absent or without
values in the new ones: no measurement at all; without values in the previous
ones: the largest share of the new side, not a distance to an empty
distribution). Its distance is 1.0, the largest either comparator gives, as if
compared with a distribution of disjoint support, so it fails every threshold
under 1: a source that appears or disappears is a change for a person to
look at. A feature with counts on neither side is left out. Values with a
zero count are dropped (TFDV treats them as absent, and so do the shares).
"""
from __future__ import annotations

from typing import Any, Mapping

COMPARATORS = ("infinity_norm", "jensen_shannon_divergence")
THRESHOLD_KEYS = ("label_distribution", "examples_share", "image_size", "image_format", "rejection_rate")
# The distance of a feature counted on one side only (module docstring).
ONE_SIDED_DISTANCE = 1.0
# Feature name prefix -> its threshold key (`examples` has no prefix: one feature).
_KINDS = {"label": "label_distribution", "image_size": "image_size", "image_format": "image_format",
          "rejection": "rejection_rate"}
_REQUIRED = ("written", "rejected", "examples_by_task", "labels_by_task", "image_formats", "image_sizes")
_HIGH = ("COMPARATOR_L_INFTY_HIGH", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH")
_SHOWN = 6  # values a breach line lists, the ones that moved most


def threshold_key(feature: str) -> str:
    """The thresholds key of a feature (`label/smile` -> `label_distribution`)."""
    return "examples_share" if feature == "examples" else _KINDS[feature.split("/", 1)[0]]


def _count(where: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{where}: expected a count (an integer >= 0), received {n!r}")
    return n


def feature_counts(sources: Mapping[str, Mapping[str, Any]], side: str = "sources") -> dict[str, dict[str, int]]:
    """{feature: {value: count}} of one side's prep_stats `sources` (module docstring's table);
    zero counts are dropped and features without a count left out. ValueError for stats without
    the counts (a prep_stats.json from before labels_by_task / image_formats / image_sizes)."""
    out: dict[str, dict[str, int]] = {}

    def add(feature: str, value: str, n: Any, where: str) -> None:
        if _count(where, n):
            out.setdefault(feature, {})
            out[feature][value] = out[feature].get(value, 0) + n

    for source in sorted(sources):
        st = sources[source]
        where = f"{side}[{source!r}]"
        missing = [k for k in _REQUIRED if k not in st]
        if missing:
            raise ValueError(f"{where} has no {', '.join(missing)}: prep_stats.json of a conversion from before "
                             f"these counts existed; convert that span again (docs/drift.md)")
        for task, classes in sorted(st["labels_by_task"].items()):
            for name, n in classes.items():
                add(f"label/{task}", name, n, f"{where}.labels_by_task.{task}.{name}")
        for task, n in st["examples_by_task"].items():
            add("examples", f"{source}/{task}", n, f"{where}.examples_by_task.{task}")
        for size, n in st["image_sizes"].items():
            add(f"image_size/{source}", size, n, f"{where}.image_sizes.{size}")
        for fmt, n in st["image_formats"].items():
            add(f"image_format/{source}", fmt, n, f"{where}.image_formats.{fmt}")
        for key in ("written", "rejected"):
            add(f"rejection/{source}", key, st[key], f"{where}.{key}")
    return out


def statistics(counts: Mapping[str, Mapping[str, int]]):
    """A DatasetFeatureStatisticsList of one dataset: each feature a STRING feature whose
    rank_histogram and top_values hold its value counts, largest first (ties by value)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    out = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = out.datasets.add()
    totals = {f: sum(c.values()) for f, c in counts.items()}
    dataset.num_examples = max(totals.values(), default=0)
    for name in sorted(counts):
        feature = dataset.features.add()
        feature.path.step.append(name)
        feature.type = statistics_pb2.FeatureNameStatistics.STRING
        string_stats, total = feature.string_stats, totals[name]
        common = string_stats.common_stats
        common.num_non_missing = total
        common.num_missing = dataset.num_examples - total
        common.min_num_values = common.max_num_values = 1
        common.avg_num_values = 1.0
        common.tot_num_values = total
        string_stats.unique = len(counts[name])
        string_stats.avg_length = sum(len(v) * n for v, n in counts[name].items()) / total
        for rank, (value, n) in enumerate(sorted(counts[name].items(), key=lambda vn: (-vn[1], vn[0]))):
            bucket = string_stats.rank_histogram.buckets.add()
            bucket.low_rank = bucket.high_rank = rank
            bucket.label = value
            bucket.sample_count = n
            top = string_stats.top_values.add()
            top.value = value
            top.frequency = n
    return out


def schema(features: list[str], comparator: str, thresholds: Mapping[str, float]):
    """A Schema with each feature as BYTES and a drift_comparator of `comparator` at its threshold."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    out = schema_pb2.Schema()
    for name in sorted(features):
        feature = out.feature.add()
        feature.name = name
        feature.type = schema_pb2.BYTES
        getattr(feature.drift_comparator, comparator).threshold = thresholds[threshold_key(name)]
    return out


def _checked(thresholds: Mapping[str, float], comparator: str) -> dict[str, float]:
    if comparator not in COMPARATORS:
        raise ValueError(f"comparator must be one of {', '.join(COMPARATORS)}, received {comparator!r}")
    keys = set(thresholds)
    if keys != set(THRESHOLD_KEYS):
        missing = [k for k in THRESHOLD_KEYS if k not in keys]
        unknown = sorted(map(str, keys - set(THRESHOLD_KEYS)))
        raise ValueError(f"thresholds need exactly the keys {', '.join(THRESHOLD_KEYS)}"
                         + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; unknown {', '.join(unknown)}" if unknown else ""))
    out = {}
    for key in THRESHOLD_KEYS:
        v = thresholds[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ValueError(f"thresholds.{key}: expected a distance in [0, 1], received {v!r}")
        out[key] = float(v)
    return out


def _shares(counts: Mapping[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {v: counts[v] / total for v in sorted(counts)}


def measure_drift(previous_sources: dict, new_sources: dict, thresholds: Mapping[str, float],
                  comparator: str = "infinity_norm") -> dict[str, dict]:
    """{feature: {"distance", "threshold", "passed", "comparator", "previous", "new"}}, features
    sorted; "previous" / "new" are {value: share} ({} on the side without counts). Distances and
    verdicts are TFDV's (tfdv.validate_statistics with previous_statistics); a feature counted on
    one side only has distance 1.0 (module docstring). `thresholds`: the five THRESHOLD_KEYS, each
    a distance in [0, 1]; `comparator`: one of COMPARATORS."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    limits = _checked(thresholds, comparator)
    previous, new = feature_counts(previous_sources, "previous"), feature_counts(new_sources, "new")
    both = sorted(set(previous) & set(new))
    measured: dict[str, float] = {}
    failed: set[str] = set()
    if both:
        anomalies = tfdv.validate_statistics(
            statistics({f: new[f] for f in both}), schema(both, comparator, limits),
            previous_statistics=statistics({f: previous[f] for f in both}))
        for info in anomalies.drift_skew_info:
            name = "/".join(info.path.step)  # one step: the feature's name
            values = [m.value for m in info.drift_measurements]
            if len(values) != 1:
                raise RuntimeError(f"TFDV gave {len(values)} drift measurements for {name!r}, expected 1")
            measured[name] = float(values[0])
        high = {anomalies_pb2.AnomalyInfo.Type.Value(t) for t in _HIGH}
        failed = {name for name, info in anomalies.anomaly_info.items() if any(r.type in high for r in info.reason)}
        unmeasured = sorted(set(both) - set(measured))
        if unmeasured:
            raise RuntimeError(f"TFDV measured no drift for {', '.join(unmeasured)}")
    result = {}
    for name in sorted(set(previous) | set(new)):
        threshold = limits[threshold_key(name)]
        if name in measured:
            distance, passed = measured[name], name not in failed
        else:
            distance = ONE_SIDED_DISTANCE
            passed = distance <= threshold  # TFDV's rule: a breach is a distance above the threshold
        result[name] = {"distance": distance, "threshold": threshold, "passed": passed, "comparator": comparator,
                        "previous": _shares(previous.get(name, {})), "new": _shares(new.get(name, {}))}
    return result


def _shown(shares: Mapping[str, float], values: list[str]) -> str:
    if not shares:  # the side without counts
        return "{}"
    return "{" + ", ".join(f"{v}: {shares.get(v, 0.0):.3f}" for v in values) + "}"


def breaches(result: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per failed feature of a measure_drift result, in feature order:
    `drift: <feature> <comparator> distance 0.312 > threshold 0.100 (previous {...} -> new {...})`,
    the shares of the values that moved most (up to 6, then how many more)."""
    lines = []
    for name in sorted(result):
        r = result[name]
        if r["passed"]:
            continue
        prev, new = r["previous"], r["new"]
        values = sorted(set(prev) | set(new), key=lambda v: (-abs(new.get(v, 0.0) - prev.get(v, 0.0)), v))
        more = f" (+{len(values) - _SHOWN} more values)" if len(values) > _SHOWN else ""
        values = values[:_SHOWN]
        lines.append(f"drift: {name} {r['comparator']} distance {r['distance']:.3f} > threshold "
                     f"{r['threshold']:.3f} (previous {_shown(prev, values)} -> new {_shown(new, values)}){more}")
    return lines
