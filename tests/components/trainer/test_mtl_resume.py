"""A gradient method's state survives a Trainer killed between epochs: BackupAndRestore (as
run_fn uses it) checkpoints the training model with its MtlState (gradnorm's weights and first
losses, FAMO's logits and Adam moments, the step count), so a run interrupted after epoch 2 and
resumed ends exactly where an uninterrupted run does."""
import numpy as np
import pytest
import tf_keras as keras

from components.trainer.mtl_step import LogMtl
from components.trainer.training_model import make_training_model
from tests.components.trainer.test_mtl_step import tiny

EPOCHS, KILLED_AFTER = 4, 2


class Killed(Exception):
    pass


class KillAfter(keras.callbacks.Callback):
    """Stands for a SIGKILL after `epoch` epochs (their backup written, nothing after it)."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Killed


def run(method: str, backup_dir=None, kill_after=None):
    keras.utils.set_random_seed(0)
    config, _, _ = tiny(method)
    x = keras.Input((3,), name="image")
    h = keras.layers.Dense(8, name="trunk")(x)
    model = keras.Model(x, {t: keras.layers.Dense(1, name=t)(h) for t in ("a", "b")})
    training = make_training_model(model, config, total_steps=EPOCHS * 2)
    training.compile(optimizer=keras.optimizers.Adam(0.01), weighted_metrics={"a": [], "b": []})
    inputs = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    labels = {"a": inputs.sum(1, keepdims=True), "b": 3 * (inputs[:, :1] - inputs[:, 1:2])}
    weights = {"a": (np.arange(64) % 2 == 0).astype("float32"), "b": (np.arange(64) % 2 == 1).astype("float32")}
    callbacks = [LogMtl(training.mtl_state, ["a", "b"], method)]
    if backup_dir is not None:
        callbacks.append(keras.callbacks.BackupAndRestore(backup_dir=str(backup_dir)))
    if kill_after is not None:
        callbacks.append(KillAfter(kill_after))
    training.fit(inputs, labels, sample_weight=weights, batch_size=32, epochs=EPOCHS, verbose=0,
                 callbacks=callbacks, shuffle=False)
    return training


@pytest.mark.parametrize("method", ["gradnorm", "famo", "pcgrad", "rlw"])
def test_a_killed_run_resumes_its_method_state(method, tmp_path):
    whole = run(method)
    with pytest.raises(Killed):
        run(method, tmp_path / "backup", kill_after=KILLED_AFTER)
    resumed = run(method, tmp_path / "backup")
    state, again = whole.mtl_state, resumed.mtl_state
    assert float(again.steps.numpy()) == float(state.steps.numpy()) == EPOCHS * 2
    for a, b in zip(state.weights, again.weights):  # every state variable, e.g. famo_logits
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-7, err_msg=a.name)
    for a, b in zip(whole.get_layer("trunk").weights, resumed.get_layer("trunk").weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-7, err_msg=a.name)
    if method in ("gradnorm", "famo"):  # the state did move, so restoring it mattered
        moved = state.gradnorm_weights if method == "gradnorm" else state.famo_logits
        assert np.abs(moved.numpy() - (1.0 if method == "gradnorm" else 0.0)).max() > 1e-4


def test_a_resume_that_lost_the_state_ends_elsewhere(tmp_path, monkeypatch):
    """The check above can fail: the same kill and resume, with FAMO's state set back to its start
    after the restore (what a backup without the state would give), ends elsewhere."""
    whole = run("famo")
    with pytest.raises(Killed):
        run("famo", tmp_path / "backup", kill_after=KILLED_AFTER)

    class RestoreThenForget(keras.callbacks.BackupAndRestore):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            state = self.model.mtl_state
            for v in (state.famo_logits, state.famo_m, state.famo_v):
                v.assign(np.zeros(v.shape, np.float32))

    monkeypatch.setattr(keras.callbacks, "BackupAndRestore", RestoreThenForget)
    lost = run("famo", tmp_path / "backup")
    assert float(lost.mtl_state.steps.numpy()) == EPOCHS * 2  # it did resume
    assert not np.allclose(lost.mtl_state.famo_logits.numpy(), whole.mtl_state.famo_logits.numpy(), atol=1e-6)
