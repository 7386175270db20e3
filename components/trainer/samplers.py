"""How often the training stream draws from each source: the sampling shares.

`sampling_weights(config, counts)` turns `train.sampling` into one share per
source (normalised to sum 1, sources with share 0 left out), used as the
probabilities of the source index the input pipeline draws for each example
(components/trainer/input_pipeline.py, `choose_from_datasets`). Pure Python, no TensorFlow.

  natural      share ∝ records in the source (what concatenating would give)
  uniform      every task gets 1 / n_tasks, split equally over the sources
               labelling it; a source's share is the sum over its tasks
  temperature  share ∝ records ** (1 / T): T = 1 is natural, large T tends
               to equal shares per source
  weights      share ∝ train.sampling.weights[source]; 0 or absent = not sampled
"""
from __future__ import annotations

from typing import Mapping

from config import SAMPLERS, Config


def _normalise(raw: Mapping[str, float], what: str) -> dict[str, float]:
    kept = {s: float(w) for s, w in raw.items() if w > 0}
    total = sum(kept.values())
    if not kept or total <= 0:
        raise ValueError(f"sampling: every source has share 0 ({what}); received {dict(raw)!r}")
    return {s: w / total for s, w in kept.items()}


def sampling_weights(config: Config, counts: Mapping[str, int] | None = None) -> dict[str, float]:
    """Share of each source in the training stream, {source: share}, summing to 1.

    `counts` (records per source) is needed by `natural` and `temperature`;
    when given, sources with no records are left out of every sampler (an
    empty source cannot be drawn from) and the rest renormalised.
    """
    sampling = config.train.sampling
    sources = [s.name for s in config.sources]
    if counts is not None:
        unknown = sorted(set(counts) - set(sources))
        missing = sorted(set(sources) - set(counts))
        if unknown or missing:
            raise ValueError(f"sampling: counts must name exactly the sources {sources}; "
                             f"received {dict(counts)!r}")
        if any(c < 0 for c in counts.values()):
            raise ValueError(f"sampling: record counts must be >= 0, received {dict(counts)!r}")
    empty = {s for s in sources if counts is not None and counts[s] == 0}

    if sampling.type in ("natural", "temperature"):
        if counts is None:
            raise ValueError(f"sampling type {sampling.type!r} needs the record count of every source; "
                             "received counts=None")
        power = 1.0 if sampling.type == "natural" else 1.0 / sampling.temperature
        raw = {s: float(counts[s]) ** power if counts[s] > 0 else 0.0 for s in sources}
    elif sampling.type == "uniform":
        raw = {s: 0.0 for s in sources}
        for task in config.tasks:
            labelling = [s.name for s in config.sources if task.name in s.tasks and s.name not in empty]
            for s in labelling:
                raw[s] += 1.0 / len(config.tasks) / len(labelling)
    elif sampling.type == "weights":
        raw = {s: 0.0 if s in empty else float(sampling.weights.get(s, 0.0)) for s in sources}
    else:
        raise ValueError(f"unknown sampling type {sampling.type!r}; valid: {', '.join(SAMPLERS)}")
    return _normalise(raw, f"sampling type {sampling.type!r}, empty sources: {sorted(empty)}")
