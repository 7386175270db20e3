"""One TFMA run over the tiny fixtures, shared by every test in this folder (~15 s)."""
import dataclasses
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_analysis as tfma  # noqa: E402

from components.evaluator.eval_config import build_eval_config  # noqa: E402

from . import fixtures as fx  # noqa: E402


@dataclasses.dataclass
class Run:
    config: object
    root: str
    model_dir: str
    eval_output: str
    model_run_dir: str      # TensorBoard events like the Trainer's ModelRun
    eval_files: list
    examples: list          # raw example dicts, in file order per source
    task_index: np.ndarray  # [N]
    label: np.ndarray       # [N, label_width]
    source: np.ndarray      # [N] str
    predictions: dict       # task -> [N, width], from the saved serving_default

    def rows(self, task: str, source: str | None = None) -> np.ndarray:
        """Indices of this task's own examples (optionally of one source)."""
        keep = self.task_index == self.config.task_index(task)
        if source is not None:
            keep &= self.source == source
        return np.flatnonzero(keep)


@pytest.fixture(scope="session")
def run(tmp_path_factory) -> Run:
    """The fixtures evaluated as the default config does: no confidence intervals."""
    return _run(tmp_path_factory, fx.make_config())


@pytest.fixture(scope="session")
def run_ci(tmp_path_factory) -> Run:
    """The same with `evaluation.confidence_intervals: true` (~28x the TFMA time: slow tests only)."""
    return _run(tmp_path_factory, fx.make_config(
        evaluation={**fx.RAW_CONFIG["evaluation"], "confidence_intervals": True}))


def _run(tmp_path_factory, config) -> Run:
    root = str(tmp_path_factory.mktemp("eval"))
    examples = fx.make_examples(config)
    files = fx.write_examples_artifact(os.path.join(root, "examples"), examples)
    model_dir = os.path.join(root, "model")
    fx.save_model(config, model_dir)
    model_run_dir = os.path.join(root, "model_run")
    fx.write_training_events(config, model_run_dir)

    eval_config = build_eval_config(config)
    # rubber_stamp=True is what TFX does on a first run (no baseline yet):
    # change thresholds are dropped, value thresholds still apply.
    shared = tfma.default_eval_shared_model(model_dir, eval_config=eval_config, rubber_stamp=True)
    eval_output = os.path.join(root, "evaluation")
    tfma.run_model_analysis(shared, eval_config, data_location=os.path.join(root, "examples", "Split-eval_*", "*"),
                            file_format="tfrecords", output_path=eval_output)

    # Same order as the files: per source (sorted), in example order.
    ordered = [e for s in sorted({e["source"] for e in examples}) for e in examples if e["source"] == s]
    serving = tf.saved_model.load(model_dir).signatures["serving_default"]
    preds = serving(examples=tf.constant([fx.serialize(e) for e in ordered]))
    return Run(
        config=config, root=root, model_dir=model_dir, eval_output=eval_output, model_run_dir=model_run_dir,
        eval_files=files,
        examples=ordered,
        task_index=np.array([e["task_index"] for e in ordered]),
        label=np.stack([e["label"] for e in ordered]),
        source=np.array([e["source"] for e in ordered]),
        predictions={k: v.numpy().astype(np.float64) for k, v in preds.items()},
    )
