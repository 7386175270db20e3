"""The bottom of the house: the run config's types, parsing, validation, errors
and the name registry. Imports nothing else of the project (import-linter's
`layers` contract in pyproject.toml), so every package can depend on it.

    from config import load
    config = load("configs/default.yaml")   # ConfigError naming the key on a bad value
"""
from config.errors import ConfigError
from config.parse import load, parse
from config.types import (
    TASK_TYPES, SAMPLERS, NORMALIZATIONS, TASK_LOSSES, LOSS_WEIGHTINGS, STRATEGIES, LR_DECAYS,
    KEEPS, label_key, weight_key, TaskConfig, PREP_COLORS, PREP_RESIZE, PrepConfig,
    SourceConfig, ImageConfig, SplitsConfig, SamplingConfig, LossWeightingConfig, AugmentConfig,
    TrainConfig, ModelConfig, SliceConfig, EvaluationConfig, TFRecordsConfig, BeamConfig,
    Config, split_name, split_names, data_view, train_view
)

__all__ = [
    "ConfigError", "load", "parse", "TASK_TYPES", "SAMPLERS", "NORMALIZATIONS", "TASK_LOSSES",
    "LOSS_WEIGHTINGS", "STRATEGIES", "LR_DECAYS", "KEEPS", "label_key", "weight_key",
    "TaskConfig", "PREP_COLORS", "PREP_RESIZE", "PrepConfig", "SourceConfig", "ImageConfig",
    "SplitsConfig", "SamplingConfig", "LossWeightingConfig", "AugmentConfig", "TrainConfig",
    "ModelConfig", "SliceConfig", "EvaluationConfig", "TFRecordsConfig", "BeamConfig", "Config",
    "split_name", "split_names", "data_view", "train_view",
]
