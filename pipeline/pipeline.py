"""The one pipeline definition; runners (local, Kubeflow) only configure it."""
from __future__ import annotations

import dataclasses
import json
import posixpath
from dataclasses import dataclass

from tfx import v1 as tfx

from config import Config, data_view, split_names, train_view
from data_prep.beam_args import complete as complete_beam_args

# Code the components call, referenced as importable functions so that the
# same definition compiles for Kubeflow without building wheels of local files.
PREPROCESSING_FN = "components.transform.preprocessing.preprocessing_fn"
RUN_FN = "components.trainer.run_fn.run_fn"


@dataclass(frozen=True)
class PipelinePaths:
    """Where a run reads and writes; runners work these out."""

    pipeline_root: str
    schema_file: str  # written by schemas.contract.write_schema
    serving_model_dir: str  # the Pusher's destination
    report_dir: str  # the per-task report a person opens
    metadata_path: str | None = None  # sqlite file for local runs
    span_store: str = ""  # converted spans, kept across runs; "" = <pipeline_root>/span_store


@dataclass(frozen=True)
class RunOptions:
    beam_args: tuple[str, ...] = ()
    enable_cache: bool = True
    source_fingerprint: str = ""


def span_store_dir(pipeline_root: str) -> str:
    """Where converted spans are kept: beside the runs' artifacts, under the pipeline root."""
    return posixpath.join(pipeline_root, "span_store")


def create_components(config: Config, paths: PipelinePaths, options: RunOptions) -> list:
    # Imported here: they pull in TFMA/TFT, which the config-only callers
    # (validation, docs) do not need.
    import tensorflow_data_validation as tfdv

    from components.anomaly_gate import AnomalyGate
    from components.baseline import PushedModelBaseline
    from components.common.eval_config import build_eval_config
    from components.drift.component import DriftGate
    from components.evaluator.executor import Evaluator
    from components.example_gen.component import DataPrepExampleGen
    from components.report.component import ReportGen
    from components.trainer.warm_start import trainer_custom_config as warm_start_config

    config_json = config.to_json()
    data_json = data_view(config).to_json()  # conversion and Transform: see data_view
    train_splits = split_names(config, "train")
    eval_splits = split_names(config, "eval")

    example_gen = DataPrepExampleGen(
        config_json=data_json,
        source_fingerprint=options.source_fingerprint,
        beam_args_json=json.dumps(list(options.beam_args)),
        # converted spans, kept across runs so that a span is converted once (data_prep/spans.py)
        span_store=paths.span_store or span_store_dir(paths.pipeline_root),
    )
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"],
        # Top values and unique counts from bounded sketches (Misra-Gries, KMV), exact below
        # ~1,000 distinct values (every categorical feature of the contract): TFDV's exact
        # generator groups every distinct string, here every image's bytes and example id,
        # in memory (the DirectRunner's), so StatisticsGen's RSS grew with the data
        # (docs/results.md#cost-curve-to-real-sizes).
        stats_options=tfdv.StatsOptions(use_sketch_based_topk_uniques=True),
    )
    schema_gen = tfx.components.ImportSchemaGen(schema_file=paths.schema_file)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    anomaly_gate = AnomalyGate(anomalies=example_validator.outputs["anomalies"])
    # The newest span against the previous one (docs/drift.md): a breach under action `fail`
    # stops the run here, before Transform and the Trainer.
    drift_gate = DriftGate(prep_report=example_gen.outputs["prep_report"],
                           drift_json=json.dumps(dataclasses.asdict(config.validation.drift), sort_keys=True))

    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        splits_config=tfx.proto.SplitsConfig(analyze=train_splits, transform=train_splits + eval_splits),
        custom_config={"config": data_json},
        # No TFDV statistics before / after the transform: nothing reads them (StatisticsGen
        # already has the raw data's), and the post-transform ones wait on the write through a
        # side input, so the DirectRunner held every transformed example in memory for them:
        # Transform's peak RSS grew with the data (docs/results.md#cost-curve-to-real-sizes).
        disable_statistics=True,
    )
    transform.add_upstream_node(anomaly_gate)
    transform.add_upstream_node(drift_gate)

    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=train_splits, num_steps=config.train.steps),
        eval_args=tfx.proto.EvalArgs(splits=eval_splits, num_steps=config.train.eval_steps),
        custom_config={"config": train_view(config).to_json(),  # see train_view
                       # train.warm_start: where the served model is and, on a local run, which version
                       # serves now, so that a new push changes the cache key (docs/warm_start.md)
                       **warm_start_config(config, paths.serving_model_dir, pin_version=bool(paths.metadata_path))},
    )

    # The baseline is the model serving now, picked by a container task, not a
    # Resolver: open-source Kubeflow Pipelines runs no resolver tasks, and the
    # same DAG runs locally (components/baseline.py, docs/kubeflow.md).
    baseline = PushedModelBaseline(candidate=trainer.outputs["model"],
                                   push_destination=paths.serving_model_dir)

    # gate_on lower_bound: TFMA gates only on the point value; the gate on the
    # interval's bound is applied to the Evaluator's blessing (components/evaluator/interval_gate.py).
    evaluator_class = Evaluator
    if config.evaluation.gate_on == "lower_bound":
        from components.evaluator.interval_gate import IntervalGatedEvaluator as evaluator_class
    evaluator = evaluator_class(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["baseline"],
        eval_config=build_eval_config(config),
        example_splits=eval_splits,
    ).with_id("Evaluator")  # the same node id with either class

    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=paths.serving_model_dir)),
    )

    report = ReportGen(
        evaluation=evaluator.outputs["evaluation"],
        model=trainer.outputs["model"],
        model_run=trainer.outputs["model_run"],
        examples=example_gen.outputs["examples"],
        prep_report=example_gen.outputs["prep_report"],
        blessing=evaluator.outputs["blessing"],
        config_json=config_json,
        report_dir=paths.report_dir,
        # what was pushed and against which served version: the serving history (serving/versions.py)
        pushed_model=pusher.outputs["pushed_model"],
        baseline_model=baseline.outputs["baseline"],
        drift=drift_gate.outputs["drift"],
    )

    return [example_gen, statistics_gen, schema_gen, example_validator, anomaly_gate, drift_gate, transform,
            trainer, baseline, evaluator, pusher, report]


def create_pipeline(config: Config, paths: PipelinePaths, options: RunOptions = RunOptions(),
                    metadata_connection_config=None) -> tfx.dsl.Pipeline:
    """Builds the whole DAG for one config.

    Local runs pass a sqlite `metadata_connection_config`; Kubeflow leaves it
    None (the cluster's MLMD is used).
    """
    if metadata_connection_config is None and paths.metadata_path:
        metadata_connection_config = tfx.orchestration.metadata.sqlite_metadata_connection_config(
            paths.metadata_path)
    return tfx.dsl.Pipeline(
        pipeline_name=config.name,
        pipeline_root=paths.pipeline_root,
        components=create_components(config, paths, options),
        enable_cache=options.enable_cache,
        metadata_connection_config=metadata_connection_config,
        # + what a portable runner needs (data_prep/beam_args.py)
        beam_pipeline_args=complete_beam_args(options.beam_args),
    )
