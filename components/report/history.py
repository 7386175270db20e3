"""Training curves for the report, read from the Trainer's TensorBoard events.

The Trainer's `keras.callbacks.TensorBoard(log_dir=<ModelRun uri>,
update_freq="epoch")` writes `<dir>/train/events.out.tfevents.*` and
`<dir>/validation/...` with one scalar per epoch per compiled name:
`epoch_loss` (the weighted total), `epoch_<task>_loss` and
`epoch_<task>_<metric>` (`accuracy`, `mae`, ...), and with a learned or
dynamic loss weighting `epoch_loss_weight_<task>` (`log_variance_<task>`);
`epoch_learning_rate` (train only) is the optimizer's schedule at the end of
each epoch (components/trainer/optimizer.py).
"""
from __future__ import annotations

import os

import tensorflow as tf

from config import Config

RUNS = ("train", "validation")
_PREFIX = "epoch_"


def _scalar(value) -> float | None:
    """The value of a scalar summary; None for the rest (the model graph, text)."""
    if value.HasField("tensor"):
        a = tf.make_ndarray(value.tensor)
        return float(a.reshape(-1)[0]) if a.size == 1 and a.dtype.kind in "fiu" else None
    if value.HasField("simple_value"):
        return float(value.simple_value)
    return None


def read_scalars(run_dir: str) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} from every event file in one run directory.

    Files are read in name order (their names start with the creation time),
    so a Trainer restarted by BackupAndRestore overwrites repeated steps with
    its later values.
    """
    out: dict[str, dict[int, float]] = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(run_dir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                x = _scalar(v)
                if x is not None:
                    out.setdefault(v.tag, {})[int(event.step)] = x
    return out


# Per-task values the Trainer's LogLossWeights callback adds (components/trainer/loss_weighting.py).
_TASK_SUFFIXED = ("loss_weight", "log_variance")


def _split_tag(tag: str, task_names: list[str]) -> tuple[str, str] | None:
    """'epoch_age_group_loss' -> ('age_group', 'loss'); the longest task name wins.
    'epoch_loss_weight_age' -> ('age', 'loss_weight')."""
    if not tag.startswith(_PREFIX):
        return None
    rest = tag[len(_PREFIX):]
    for metric in _TASK_SUFFIXED:
        if rest.startswith(metric + "_") and rest[len(metric) + 1:] in task_names:
            return rest[len(metric) + 1:], metric
    for name in sorted(task_names, key=len, reverse=True):
        if rest.startswith(name + "_") and len(rest) > len(name) + 1:
            return name, rest[len(name) + 1:]
    return ("", rest) if rest in ("loss", "learning_rate") else None


def training_curves(model_run_dir: str | None, config: Config) -> dict[str, dict]:
    """{task or '' (total): {metric: {'train'|'validation': [[epoch, value], ...]}}}.

    Empty when there is no directory or no events in it.
    """
    if not model_run_dir or not tf.io.gfile.isdir(model_run_dir):
        return {}
    out: dict[str, dict] = {}
    names = list(config.task_names)
    for run in RUNS:
        for tag, by_step in read_scalars(os.path.join(model_run_dir, run)).items():
            split = _split_tag(tag, names)
            if split is None:
                continue
            task, metric = split
            out.setdefault(task, {}).setdefault(metric, {})[run] = [[s, by_step[s]] for s in sorted(by_step)]
    return out


FALLBACK_TAG = _PREFIX + "mtl_fallback_share"
FALLBACK_WARN = 0.05


def mtl_fallback_share(model_run_dir: str | None) -> float:
    """The share of training steps whose gradient method's solver failed (Nash-MTL keeps its previous
    solution then), as the Trainer logged it at the end of training; 0 for methods without a solver."""
    if not model_run_dir or not tf.io.gfile.isdir(model_run_dir):
        return 0.0
    by_step = read_scalars(os.path.join(model_run_dir, "train")).get(FALLBACK_TAG, {})
    return by_step[max(by_step)] if by_step else 0.0
