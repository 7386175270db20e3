"""Typed run configuration: one YAML file chooses a run.

Every key a user can write is declared here with its default, once:
config/parse.py reads the defaults from these dataclasses and checks every
key on load, so a bad config fails in one line that names the key, what was
received and what is valid, before any heavy import or Beam job starts
(config/validate.py adds the checks that read format modules and the disk).
Components receive the config as JSON (``Config.to_json``, decoded by
``config.codec.config_from_json``) through their exec properties.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

TASK_TYPES = ("multiclass", "binary", "multilabel", "regression")
SAMPLERS = ("natural", "uniform", "temperature", "weights")
# Pixel scalings (models/preprocess.py): seed 000's, x / 255, and the two
# keras.applications modes the backbones were trained with.
NORMALIZATIONS = ("centered", "unit", "caffe", "tf")
# The losses each task type may choose (tasks[i].loss); the first is the default.
TASK_LOSSES = {"binary": ("crossentropy",), "multiclass": ("crossentropy",),
               "multilabel": ("crossentropy",), "regression": ("mse", "mae")}
LOSS_WEIGHTINGS = ("static", "uncertainty", "dwa")
STRATEGIES = ("default", "mirrored", "multi_worker_mirrored")
# Gradient methods (components/trainer/gradient_methods.py): `none` leaves the combining to
# train.loss_weighting; the others combine the task gradients in a training step of their own.
MTL_METHODS = ("none", "pcgrad", "cagrad", "imtl", "nash_mtl", "rlw", "gradnorm", "famo")
# Where the task gradients are taken: the shared parameters, or the shared representation.
MTL_GRAD_ON = ("params", "representation")
# Each method's `train.mtl.params`: name -> (default, low, high).
MTL_PARAMS = {
    "cagrad": {"c": (0.4, 0.0, 10.0)},
    "gradnorm": {"alpha": (1.5, 0.0, 10.0), "lr": (0.025, 0.0, 1.0)},
    "famo": {"lr": (0.025, 0.0, 1.0), "decay": (1e-3, 0.0, 1.0)},
}
# Learning rate after warm-up (components/trainer/optimizer.py): held, or cosine-decayed to 0 at the last step.
LR_DECAYS = ("constant", "cosine")
# Which weights the Trainer saves: the last step's, or the epoch's with the lowest validation loss.
KEEPS = ("last", "best")
# The Keras dtype policy the Trainer builds and trains the model under (components/trainer/precision.py);
# `auto` picks one from the hardware the Trainer runs on.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")

# Names (config/parse.py checks them): task and source names become feature keys
# (`label_<task>`), TFX split names (`train_<source>`) and file names, so they are
# ASCII identifiers; the pipeline `name` becomes a folder under --output-dir and the
# TFX / Kubeflow pipeline name, so it is letters, digits, '_' and '-' (Kubeflow turns
# '_' into '-'), starting with a letter and ending with a letter or digit: no path
# separator, no '..'. All at most MAX_NAME_LENGTH characters: TFX's own limit on
# pipeline names (tfx/orchestration/pipeline.py, from Argo's workflow names).
MAX_NAME_LENGTH = 63
NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
PIPELINE_NAME_PATTERN = r"[A-Za-z]([A-Za-z0-9_-]*[A-Za-z0-9])?"

# The metric a baseline comparison always gates, even without a threshold
# (components/common/eval_config.py), and the one runners.compare scores by.
PRIMARY_METRIC = {"multiclass": "accuracy", "binary": "accuracy",
                  "regression": "mean_absolute_error", "multilabel": "auc"}
# The metrics `tasks[i].thresholds` may gate, per task type: name -> "higher" (the
# threshold is a floor: a score) or "lower" (a ceiling: an error).
# The gateable MetricDefs of components/common/eval_config.py (tests/config checks
# they agree); within_tolerance also needs the task's `tolerance`.
THRESHOLD_METRICS = {
    "multiclass": {"accuracy": "higher", "precision": "higher", "recall": "higher", "f1": "higher"},
    "binary": {"accuracy": "higher", "auc": "higher", "precision": "higher", "recall": "higher",
               "f1": "higher"},
    "regression": {"mean_absolute_error": "lower", "mean_squared_error": "lower",
                   "root_mean_squared_error": "lower", "within_tolerance": "higher"},
    "multilabel": {"subset_accuracy": "higher", "auc": "higher", "binary_accuracy": "higher", "f1": "higher"},
}


def label_key(task: str) -> str:
    """Name of the transformed feature holding one task's label."""
    return f"label_{task}"


def weight_key(task: str) -> str:
    """Name of the transformed feature that is 1.0 on this task's examples, else 0.0."""
    return f"weight_{task}"


def slice_key(task: str) -> str:
    """Name of the slice-only raw feature holding a record's class of `task` on the
    examples of its other tasks (docs/data_contract.md): never a training label."""
    return f"slice_{task}"


@dataclass(frozen=True)
class TaskConfig:
    name: str
    type: str
    classes: tuple[str, ...] = ()
    loss_weight: float = 1.0
    # Blessing: metric name -> bound checked by the Evaluator on this task's
    # own examples: a lower bound for scores (accuracy, auc), an upper bound
    # for errors (mean_absolute_error, mean_squared_error).
    thresholds: Mapping[str, float] = field(default_factory=dict)
    # Regression only: |label - prediction| <= tolerance counts as right, in the
    # label's unit (the `within_tolerance` metric); None = not computed.
    tolerance: float | None = None
    # One of TASK_LOSSES[type]; "" means the type's default (filled in below).
    loss: str = ""

    def __post_init__(self):
        if not self.loss and self.type in TASK_LOSSES:
            object.__setattr__(self, "loss", TASK_LOSSES[self.type][0])

    @property
    def width(self) -> int:
        """Slots this task uses in the padded ``label`` vector."""
        return 1 if self.type == "regression" else len(self.classes)

    @property
    def is_classification(self) -> bool:
        return self.type in ("multiclass", "binary")


PREP_COLORS = ("auto", "grayscale")
PREP_RESIZE = ("stretch", "pad", "crop")


@dataclass(frozen=True)
class PrepConfig:
    """How one source's images are prepped (docs/data_prep.md); the output
    always has `image.size` and `image.channels`, the contract all share."""
    color: str = "auto"  # grayscale: desaturate first (a colour source among gray ones)
    resize: str = "stretch"  # pad / crop keep the aspect ratio (black bars / centre crop)
    face_crop: bool = False  # crop to the face box the format gives (imdb_wiki, csv bbox_column)
    face_margin: float = 0.0  # widen the face box by this fraction of its size on each side
    encoding: str | None = None  # png / jpeg; None: image.encoding
    jpeg_quality: int = 95


@dataclass(frozen=True)
class SourceConfig:
    name: str
    format: str
    path: str
    tasks: tuple[str, ...]
    # Format-specific settings, validated by the format's own module.
    options: Mapping[str, Any] = field(default_factory=dict)
    # Settings for the bundled sample-data generator; when present and `path`
    # does not exist, runners generate sample data there first.
    sample: Mapping[str, Any] | None = None
    prep: PrepConfig = PrepConfig()
    # Which spans (deliveries, a `{SPAN}` in `path`) a run trains on: latest | all | last N
    # (config/spans.py, docs/spans.md).
    spans: str = "latest"


@dataclass(frozen=True)
class ImageConfig:
    size: tuple[int, int] = (48, 48)
    channels: int = 1
    # How pixels are scaled before the model: seed 000's (x - 128) / 255
    # ("centered"), x / 255 ("unit"), or a keras.applications mode ("caffe",
    # "tf") for a pretrained backbone; one of NORMALIZATIONS.
    normalization: str = "centered"
    encoding: str = "png"


@dataclass(frozen=True)
class SplitsConfig:
    eval: float = 0.2
    salt: str = ""


@dataclass(frozen=True)
class SamplingConfig:
    type: str = "natural"
    temperature: float = 1.0
    weights: Mapping[str, float] = field(default_factory=dict)
    min_per_task: int = 0      # >= this many examples of every task in each training batch; 0 = off


@dataclass(frozen=True)
class LossWeightingConfig:
    type: str = "static"       # one of LOSS_WEIGHTINGS (components/trainer/loss_weighting.py)
    temperature: float = 2.0   # dwa only: the softmax temperature T


@dataclass(frozen=True)
class MtlConfig:
    method: str = "none"       # one of MTL_METHODS
    grad_on: str = "params"    # one of MTL_GRAD_ON
    params: Mapping[str, float] = field(default_factory=dict)  # MTL_PARAMS[method], defaults filled in


@dataclass(frozen=True)
class AugmentConfig:
    """Training-only augmentation (components/trainer/augment.py); all off by default."""
    flip: bool = False
    crop: float | int = 0      # a float in [0, 1): fraction cut off each side length; an int: pixels
    brightness: float = 0.0    # max |delta| as a fraction of the full pixel range


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 200
    batch_size: int = 32
    eval_steps: int = 10
    learning_rate: float = 5e-4  # Adam's peak; chosen with benchmarks.defaults_sweep
    seed: int = 42
    sampling: SamplingConfig = SamplingConfig()
    loss_weighting: LossWeightingConfig = LossWeightingConfig()
    mtl: MtlConfig = MtlConfig()
    augment: AugmentConfig = AugmentConfig()
    strategy: str = "default"  # one of STRATEGIES
    warmup: float = 0.1        # share of train.steps over which the learning rate rises linearly from 0
    lr_decay: str = "cosine"   # one of LR_DECAYS, after warm-up
    keep: str = "last"         # one of KEEPS
    precision: str = "auto"  # one of PRECISIONS
    warm_start: bool = False   # start from the served model's weights (components/trainer/warm_start.py)


# How the tasks share the trunk's features (models/sharing.py); a family's params module may
# list its own (SHARINGS): multibranch's towers take "hard" or "cross_stitch" (models/cross_stitch.py).
TRUNK_SHARINGS = ("hard", "mmoe", "cgc", "ple")
SHARINGS = TRUNK_SHARINGS + ("cross_stitch",)


@dataclass(frozen=True)
class SharingConfig:
    type: str = "hard"        # one of SHARINGS valid for the family
    experts: int = 4          # shared experts (mmoe; cgc and ple: per level)
    expert_units: int = 128   # width of every expert
    task_experts: int = 1     # cgc, ple: experts of each task's own, per level
    levels: int = 2           # ple: stacked CGC levels


@dataclass(frozen=True)
class ModelConfig:
    name: str = "bknet"
    params: Mapping[str, Any] = field(default_factory=dict)
    sharing: SharingConfig = SharingConfig()


@dataclass(frozen=True)
class SliceConfig:
    # by "class": slice `task`'s metrics by the class of its own label (SQL slice in TFMA);
    # by another task's name: by that task's class on the same record (the slice-only
    # feature `slice_<by>`), with false positive / negative rates and their gaps.
    task: str
    by: str = "class"


@dataclass(frozen=True)
class EvaluationConfig:
    # Largest worsening of a gated metric vs the last blessed model, in the
    # metric's own unit (absolute change threshold: accuracy 0.80 -> 0.78 passes).
    max_regression: float = 0.02
    # What a value threshold is checked against: "value" (the point estimate,
    # TFMA's own check) or "lower_bound" (the 95 % interval's worse end: the
    # lower bound of a higher-is-better metric, the upper bound of an error).
    gate_on: str = "value"
    # TFMA's 95 % confidence intervals (Poisson bootstrap) beside every metric.
    # Off by default: the bootstrap recomputes every metric 20 times, ~28x the
    # Evaluator's CPU on the test fixture (docs/report.md#confidence-intervals).
    confidence_intervals: bool = False
    # None = every binary / multiclass task by class; () = no class slices.
    slices: tuple[SliceConfig, ...] | None = None
    # Cross-task (fairness) slices with fewer of the task's examples than this are
    # reported as "too small (n=...)", not as numbers.
    min_slice_size: int = 30


@dataclass(frozen=True)
class TFRecordsConfig:
    # Deflate level of the converted examples' gzip TFRecords, 0 (stored) to 9, or "auto":
    # 6 for a source labelling several tasks (its image repeats once per task), else 0.
    gzip_level: int | str = "auto"

    def level_for(self, source: "SourceConfig") -> int:
        if self.gzip_level != "auto":
            return int(self.gzip_level)
        return 6 if len(source.tasks) > 1 else 0


@dataclass(frozen=True)
class BeamConfig:
    # Extra Beam pipeline args for every component (e.g. a distributed runner).
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompareConfig:
    """`compare:` the grid of multitask variants that `make compare` and runners.grid train.
    No methods (the default): `make compare` trains one multitask and one single-task model per task."""
    methods: tuple[str, ...] = ()    # train.mtl.method values; empty: the grid uses the config's own
    sharing: tuple[str, ...] = ()    # model.sharing.type values; empty: the config's own
    seeds: int = 3


DRIFT_ACTIONS = ("fail", "warn", "off")
DRIFT_COMPARATORS = ("infinity_norm", "jensen_shannon_divergence")
DRIFT_FEATURES = ("label_distribution", "examples_share", "image_size", "image_format", "rejection_rate")
# docs/drift.md: well above two deliveries' sampling noise, below a shifted label share.
DEFAULT_DRIFT_THRESHOLDS = {"label_distribution": 0.15, "examples_share": 0.1, "image_size": 0.2,
                            "image_format": 0.2, "rejection_rate": 0.08}


@dataclass(frozen=True)
class DriftConfig:
    """`validation.drift`: the newest span against the previous one (components/drift, docs/drift.md)."""
    action: str = "fail"              # on a breach: fail (stop before Transform and the Trainer) | warn | off
    comparator: str = "infinity_norm"  # TFDV's drift comparator; one of DRIFT_COMPARATORS
    # The largest distance each kind of feature may move between spans; DRIFT_FEATURES.
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_DRIFT_THRESHOLDS))


@dataclass(frozen=True)
class ValidationConfig:
    drift: DriftConfig = DriftConfig()


@dataclass(frozen=True)
class Config:
    name: str
    image: ImageConfig
    tasks: tuple[TaskConfig, ...]
    sources: tuple[SourceConfig, ...]
    splits: SplitsConfig = SplitsConfig()
    train: TrainConfig = TrainConfig()
    model: ModelConfig = ModelConfig()
    beam: BeamConfig = BeamConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    tfrecords: TFRecordsConfig = TFRecordsConfig()
    compare: CompareConfig = CompareConfig()
    validation: ValidationConfig = ValidationConfig()

    @property
    def label_width(self) -> int:
        """Length of the padded ``label`` vector: the widest task's width."""
        return max(t.width for t in self.tasks)

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    def task(self, name: str) -> TaskConfig:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"no task named {name!r}; tasks: {', '.join(self.task_names)}")

    def task_index(self, name: str) -> int:
        return self.task_names.index(name)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def split_name(split: str, source: str) -> str:
    """ExampleGen split holding one source's examples of one split (`train_genki4k`)."""
    return f"{split}_{source}"


def split_dir(uri: str, split: str) -> str:
    """The folder TFX keeps one split of an artifact in: `<uri>/Split-<split>`."""
    return os.path.join(uri, f"Split-{split}")


def split_names(config: Config, split: str) -> list[str]:
    """All per-source split names of one split, in source order."""
    return [split_name(split, s.name) for s in config.sources]


def data_view(config: Config) -> Config:
    """The part of a config that decides the converted and transformed data.

    Components get only the settings they depend on, because TFX's cache key
    is their exec properties: a changed training setting must rerun the
    Trainer and what follows, not the conversion or Transform. Task types,
    classes and order shape the labels; loss weights and thresholds do not;
    nor do train, model or beam settings (beam args reach components apart).
    """
    return dataclasses.replace(
        config,
        tasks=tuple(dataclasses.replace(t, loss_weight=1.0, thresholds={}, tolerance=None, loss="")
                    for t in config.tasks),
        train=TrainConfig(), model=ModelConfig(), beam=BeamConfig(), evaluation=EvaluationConfig(),
        compare=CompareConfig(), validation=ValidationConfig(),
    )


def train_view(config: Config) -> Config:
    """The part of a config the Trainer depends on (see data_view): blessing
    thresholds, tolerances and evaluation settings are left out, so changing
    them reruns the Evaluator onward without retraining."""
    return dataclasses.replace(
        config,
        tasks=tuple(dataclasses.replace(t, thresholds={}, tolerance=None) for t in config.tasks),
        beam=BeamConfig(), evaluation=EvaluationConfig(), compare=CompareConfig(), validation=ValidationConfig(),
    )
