"""The bottom of the house: the run config's types, parsing, validation, errors
and the name registry. Imports nothing else of the project (import-linter's
`layers` contract in pyproject.toml), so every package can depend on it.

    from config import load
    config = load("configs/default.yaml")   # ConfigError naming the key on a bad value
    validate(config)                         # format options, face boxes, sample, data layout
    config_from_json(config.to_json())       # as a component receives it (config/codec.py)

Every ConfigError reads `config key '<path>': <what was received and what is valid>`;
entry points print `error_line(e)` on stderr and exit with status 2.
"""
from config.codec import config_from_custom_config, config_from_json
from config.errors import ConfigError, error_line, fail
from config.parse import load, parse
from config.types import (
    KEEPS,
    LOSS_WEIGHTINGS,
    LR_DECAYS,
    MAX_NAME_LENGTH,
    MTL_GRAD_ON,
    MTL_METHODS,
    MTL_PARAMS,
    NORMALIZATIONS,
    PRECISIONS,
    PREP_COLORS,
    PREP_RESIZE,
    PRIMARY_METRIC,
    SAMPLERS,
    SHARINGS,
    STRATEGIES,
    TASK_LOSSES,
    TASK_TYPES,
    THRESHOLD_METRICS,
    AugmentConfig,
    BeamConfig,
    CompareConfig,
    Config,
    EvaluationConfig,
    ImageConfig,
    LossWeightingConfig,
    ModelConfig,
    MtlConfig,
    PrepConfig,
    SamplingConfig,
    SharingConfig,
    SliceConfig,
    SourceConfig,
    SplitsConfig,
    TaskConfig,
    TFRecordsConfig,
    TrainConfig,
    data_view,
    label_key,
    slice_key,
    split_dir,
    split_name,
    split_names,
    train_view,
    weight_key,
)
from config.validate import validate

__all__ = [
    "ConfigError", "error_line", "fail", "load", "parse", "validate", "config_from_json",
    "config_from_custom_config", "MAX_NAME_LENGTH", "PRIMARY_METRIC",
    "THRESHOLD_METRICS", "TASK_TYPES", "SAMPLERS", "NORMALIZATIONS", "TASK_LOSSES",
    "LOSS_WEIGHTINGS", "STRATEGIES", "LR_DECAYS", "KEEPS", "PRECISIONS", "label_key", "weight_key", "slice_key",
    "TaskConfig", "PREP_COLORS", "PREP_RESIZE", "PrepConfig", "SourceConfig", "ImageConfig",
    "SplitsConfig", "SamplingConfig", "LossWeightingConfig", "MtlConfig", "MTL_METHODS", "MTL_GRAD_ON",
    "MTL_PARAMS", "SHARINGS", "SharingConfig", "AugmentConfig", "TrainConfig",
    "ModelConfig", "SliceConfig", "EvaluationConfig", "TFRecordsConfig", "BeamConfig", "CompareConfig", "Config",
    "split_dir", "split_name", "split_names", "data_view", "train_view",
]
