"""run_fn with the training options together: multibranch model, mirrored strategy
(1 replica on the CPU), dwa loss weighting and augmentation; the weights used are
checked in the TensorBoard logs against the dwa formula on the logged losses."""
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import run_fn as trainer
from components.trainer.loss_weighting import dwa_weights
from components.trainer.run_fn import make_strategy, run_fn
from config import ConfigError, parse
from tests.components.trainer.helpers import TASKS, config_dict, fn_args_for


def options_config(**train):
    d = config_dict(size=(48, 48), batch_size=8)
    d["train"].update(train)
    d["model"] = {"name": "multibranch", "params": {"filters": [8], "dense": [16]}}
    return parse(d, base_dir=None)


def scalars(event_dir):
    """{tag: [values by step]} of the epoch scalars in a TensorBoard event folder."""
    out = {}
    for path in sorted(glob.glob(os.path.join(event_dir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                if not v.tag.startswith("epoch_"):
                    continue  # the model's JSON summary, graphs
                out.setdefault(v.tag, {})[event.step] = float(tf.make_ndarray(v.tensor))
    return {tag: [by_step[s] for s in sorted(by_step)] for tag, by_step in out.items()}


@pytest.fixture(scope="module")
def options_run(transformed_data, tmp_path_factory):
    config = options_config(strategy="mirrored", loss_weighting={"type": "dwa", "temperature": 2.0},
                            augment={"flip": True, "crop": 0.1, "brightness": 0.1},
                            warmup=0.2, lr_decay="cosine", keep="best")
    # 30 steps = 3 epochs of 10: dwa moves off 1.0 in the third
    fn_args = fn_args_for(transformed_data, config, tmp_path_factory.mktemp("options"), train_steps=30)
    made = []
    with pytest.MonkeyPatch.context() as mp:  # record the strategy run_fn trains under
        mp.setattr(trainer, "make_strategy", lambda name: made.append(make_strategy(name)) or made[-1])
        run_fn(fn_args)
    assert len(made) == 1 and isinstance(made[0], tf.distribute.MirroredStrategy)
    assert made[0].num_replicas_in_sync == max(len(tf.config.list_physical_devices("GPU")), 1)
    return config, fn_args


def test_mirrored_dwa_augmented_multibranch_trains_and_logs_the_weights_used(options_run):
    config, fn_args = options_run
    logged = scalars(os.path.join(fn_args.model_run_dir, "train"))
    losses = {t: logged[f"epoch_{t}_loss"] for t in TASKS}
    weights = {t: logged[f"epoch_loss_weight_{t}"] for t in TASKS}
    assert all(len(v) == 3 for v in [*losses.values(), *weights.values()])
    # epochs 1 and 2 at 1.0; epoch 3 from the logged mean losses of epochs 2 and 1
    expected = dwa_weights([losses[t][1] for t in TASKS], [losses[t][0] for t in TASKS], 2.0)
    for i, t in enumerate(TASKS):
        assert weights[t][:2] == [1.0, 1.0]
        assert weights[t][2] == pytest.approx(expected[i], rel=1e-5)
    assert sum(weights[t][2] for t in TASKS) == pytest.approx(3.0, rel=1e-5)
    assert np.isfinite(logged["epoch_loss"]).all()


def test_learning_rate_schedule_is_logged_per_epoch(options_run):
    config, fn_args = options_run
    logged = scalars(os.path.join(fn_args.model_run_dir, "train"))
    # Keras logs the rate of the next update (after 10, 20, 30 updates): warm-up is 6 steps,
    # then cosine over 24: update k > 6 runs at peak * (1 + cos(pi * (k - 7) / 24)) / 2.
    peak = config.train.learning_rate
    assert peak == 5e-4  # the default
    expected = [peak * (1 + np.cos(np.pi * (k + 1 - 7) / 24)) / 2 for k in (10, 20, 30)]
    assert logged["epoch_learning_rate"] == pytest.approx(expected, rel=1e-5)


def test_keep_best_saves_the_epoch_with_the_lowest_validation_loss(options_run):
    import tf_keras as keras

    config, fn_args = options_run
    validation = scalars(os.path.join(fn_args.model_run_dir, "validation"))
    sums = np.sum([validation[f"epoch_{t}_loss"] for t in TASKS], axis=0)
    state = json.load(open(os.path.join(fn_args.model_run_dir, "best", "state.json")))
    assert state["epoch"] == int(np.argmin(sums)) and state["val_loss"] == pytest.approx(float(np.min(sums)), rel=1e-5)
    reader = tf.train.load_checkpoint(os.path.join(fn_args.model_run_dir, "best", "weights"))
    saved = keras.models.load_model(fn_args.serving_model_dir)
    kernel = next(v for v in saved.weights if "kernel" in v.name)
    key = next(k for k, shape in reader.get_variable_to_shape_map().items()
               if k.endswith("kernel/.ATTRIBUTES/VARIABLE_VALUE") and shape == list(kernel.shape)
               and np.array_equal(reader.get_tensor(k), kernel.numpy()))
    assert key  # the saved model carries the best epoch's weights


def test_saved_model_is_the_plain_family_model_with_its_class_names(options_run):
    import tf_keras as keras

    config, fn_args = options_run
    model = keras.models.load_model(fn_args.serving_model_dir)
    assert type(model).__name__ == "Functional" and model.name == "multibranch"
    assert sorted(model.output_names) == ["age", "gender", "smile"]
    with open(os.path.join(fn_args.serving_model_dir, "assets.extra", "multitask.json")) as f:
        meta = json.load(f)
    assert meta["tasks"][2] == {"name": "age", "type": "multiclass", "classes": ["0-19", "20-29", "30-39",
                                                                                 "40-54", "55+"]}
    assert meta["config"]["train"]["strategy"] == "mirrored"


def test_strategy_key_is_validated():
    assert isinstance(make_strategy("mirrored"), tf.distribute.MirroredStrategy)
    assert make_strategy("mirrored").num_replicas_in_sync == max(len(tf.config.list_physical_devices("GPU")), 1)
    with pytest.raises(ConfigError, match=r"'train.strategy': received 'tpu'; valid: default, mirrored, "
                                          r"multi_worker_mirrored"):
        options_config(strategy="tpu")


def test_only_the_chief_writes_in_a_cluster():
    from types import SimpleNamespace

    from components.trainer.run_fn import is_chief

    def strategy(task_type, task_id, cluster):
        spec = SimpleNamespace(as_dict=lambda: cluster)
        return SimpleNamespace(cluster_resolver=SimpleNamespace(task_type=task_type, task_id=task_id,
                                                                cluster_spec=lambda: spec))

    workers = {"worker": ["h0:1", "h1:1"]}
    assert is_chief(tf.distribute.get_strategy())  # no cluster: this process writes
    assert is_chief(strategy(None, None, {}))  # MultiWorkerMirroredStrategy without TF_CONFIG
    assert is_chief(strategy("worker", 0, workers)) and not is_chief(strategy("worker", 1, workers))
    with_chief = {"chief": ["c:1"], **workers}
    assert is_chief(strategy("chief", 0, with_chief)) and not is_chief(strategy("worker", 0, with_chief))
