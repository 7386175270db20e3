"""benchmarks/evaluation.py's plumbing at tiny size: its numpy reference
agrees with TFMA on every metric value of the shared run (so the benchmark's
agreement figures mean something), and its data and model round-trip."""
import numpy as np

from benchmarks import evaluation as bench
from components.report.component import load_tfma_metrics
from tests.components.evaluator import helpers as fx


def test_numpy_reference_equals_tfma_on_every_value(run):
    got = load_tfma_metrics(run.eval_output)["candidate"]
    ref = bench.numpy_metrics(run.config, run.label.astype(np.float64), run.task_index, run.source, run.predictions)
    # overall + 3 sources + 5 task_index + 2 + 2 + 5 + 3 class slices, each task where it has examples
    assert len(ref) > 300
    worst = bench.compare(ref, got)
    assert set(worst) >= {"accuracy", "precision", "recall", "f1", "auc", "calibration", "subset_accuracy",
                          "mean_absolute_error", "root_mean_squared_error", "within_tolerance", "binary_accuracy"}
    assert max(worst.values()) < 1e-6, worst


def test_tiny_measure_round_trip(tmp_path):
    """Writes transformed examples, saves a small model with both signatures, runs both
    evaluations; they agree. (BKNet itself is what `run()` uses.)"""
    import tf_keras as keras

    config = fx.make_config()

    def build(cfg):
        image = keras.Input((fx.SIZE, fx.SIZE, 1), name="image")
        x = keras.layers.Dense(4, activation="tanh")(keras.layers.Flatten()(image))
        act = {"binary": "softmax", "multiclass": "softmax", "multilabel": "sigmoid", "regression": None}
        init = keras.initializers.RandomNormal(stddev=2.0)
        heads = {t.name: keras.layers.Dense(t.width, activation=act[t.type], name=t.name, kernel_initializer=init)(x)
                 for t in cfg.tasks}
        return keras.Model({"image": image}, heads)

    r = bench.measure(config, 60, str(tmp_path), build=build)
    assert r["tfma_s"] > 0 and r["numpy_s"] > 0
    auc = r["max_abs_diff"].pop("auc")
    assert auc < 1e-3 and max(r["max_abs_diff"].values()) < 1e-6, r
