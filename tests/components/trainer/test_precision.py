"""train.precision (components/trainer/precision.py): what `auto` picks on given hardware, the
global policy put back, a Trainer run under mixed_bfloat16 whose saved model has the float32
model's interface, and the gradient methods' step under mixed policies."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.trainer.precision import cpu_flags, policy_scope, resolve
from config import parse
from serving import trained_precision
from tests.components.trainer.test_mtl_step import W, X, Y, tiny, two_unit_trunk


# ------------------------------------------------------------ auto, as a pure function
@pytest.mark.parametrize("flags, gpus, policy", [
    ((), (), "float32"),
    (("avx512f", "avx512_vnni", "fma"), (), "float32"),       # AVX-512 without its bfloat16 part
    (("avx512f", "avx512_bf16"), (), "mixed_bfloat16"),
    (("amx_tile", "amx_bf16", "amx_int8"), (), "mixed_bfloat16"),
    (("amx_tile", "amx_int8"), (), "float32"),                # AMX without bfloat16 tiles
    ((), [(8, 0)], "mixed_bfloat16"),                         # A100
    ((), [(9, 0)], "mixed_bfloat16"),                         # H100
    ((), [(7, 5)], "mixed_float16"),                          # T4
    ((), [(7, 0)], "mixed_float16"),                          # V100
    ((), [(6, 1)], "float32"),                                # P4: no float16 tensor cores
    ((), [(8, 6), (7, 5)], "mixed_float16"),                  # the slowest GPU decides
    (("avx512_bf16",), [(7, 0)], "mixed_float16"),            # with a GPU, the GPU decides
    (("avx512_bf16",), [(6, 0)], "float32"),
])
def test_auto_picks_from_the_hardware(flags, gpus, policy):
    chosen = resolve("auto", flags, gpus)
    assert (chosen.setting, chosen.policy) == ("auto", policy)
    assert chosen.reason


@pytest.mark.parametrize("setting", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_an_explicit_setting_ignores_the_hardware(setting):
    for flags, gpus in (((), ()), (("avx512_bf16",), ()), ((), [(9, 0)]), ((), [(6, 1)])):
        assert resolve(setting, flags, gpus) == (setting, setting, "set in the config")


def test_an_unknown_setting_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown train.precision 'bf16'; valid: float32, mixed_bfloat16, "
                                         "mixed_float16, auto"):
        resolve("bf16")


def test_cpu_flags_reads_every_processors_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f\nbogomips\t: 1.0\n\n"
                    "processor\t: 1\nflags\t\t: fpu sse avx512f avx512_bf16\n")
    assert cpu_flags(str(info)) == {"fpu", "sse", "avx512f", "avx512_bf16"}
    assert cpu_flags(str(tmp_path / "absent")) == frozenset()


def test_policy_scope_puts_the_policy_back_also_after_an_error():
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(RuntimeError):
        with policy_scope("mixed_bfloat16"):
            assert keras.layers.Dense(1).compute_dtype == "bfloat16"
            raise RuntimeError("training failed")
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(ValueError, match="unknown dtype policy 'auto'"):
        with policy_scope("auto"):  # resolve first: auto is no Keras policy
            pass


# ------------------------------------------------------------ the Trainer under mixed_bfloat16
def _interface(loaded) -> dict:
    """Each signature's inputs and outputs as (dtype, shape), by name."""
    out = {}
    for name, fn in loaded.signatures.items():
        _, inputs = fn.structured_input_signature
        out[name] = ({k: (s.dtype, tuple(s.shape)) for k, s in inputs.items()},
                     {k: (s.dtype, tuple(s.shape)) for k, s in fn.structured_outputs.items()})
    return out


def test_a_mixed_bfloat16_run_serves_the_float32_models_interface(trained, transformed_data, tmp_path):
    from components.trainer.run_fn import run_fn
    from tests.components.trainer import helpers

    config32, fn_args32, loaded32, rows = trained
    raw = helpers.config_dict(size=(48, 48), batch_size=8)
    raw["train"]["precision"] = "mixed_bfloat16"
    config = parse(raw, base_dir=None)
    fn_args = helpers.fn_args_for(transformed_data, config, tmp_path, 3)
    run_fn(fn_args)
    assert keras.mixed_precision.global_policy().name == "float32"  # put back after the Trainer

    loaded = tf.saved_model.load(fn_args.serving_model_dir)
    assert _interface(loaded) == _interface(loaded32)
    assert _interface(loaded)["serving_default"][1] == {t: (tf.float32, (None, w)) for t, w in
                                                       (("smile", 2), ("gender", 2), ("age", 5))}
    out = loaded.signatures["serving_default"](examples=tf.constant([r[0] for r in rows]))
    for v in out.values():
        assert v.dtype == tf.float32
        assert np.all(np.isfinite(v.numpy()))
        np.testing.assert_allclose(v.numpy().sum(axis=1), 1.0, rtol=1e-5)  # softmax in float32
    # TFMA's call: Transform's graph takes and gives float32 whatever the training policy
    examples = tf.constant([r[0] for r in rows])
    got, want = (m.signatures["transform_features"](examples=examples) for m in (loaded, loaded32))
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k].dtype == want[k].dtype
        np.testing.assert_array_equal(got[k].numpy(), want[k].numpy())
    # it did train in bfloat16, with float32 heads, and says so
    model = keras.models.load_model(fn_args.serving_model_dir)
    assert model.get_layer("block1_conv1").compute_dtype == "bfloat16"
    assert {model.get_layer(t).compute_dtype for t in config.task_names} == {"float32"}
    assert trained_precision(fn_args.serving_model_dir) == {
        "setting": "mixed_bfloat16", "policy": "mixed_bfloat16", "reason": "set in the config"}
    assert trained_precision(fn_args32.serving_model_dir)["policy"] == "float32"


# ------------------------------------------------------------ the gradient methods' step
@pytest.mark.parametrize("method, grad_on", [("pcgrad", "params"), ("nash_mtl", "params"),
                                             ("nash_mtl", "representation")])
def test_a_gradient_method_step_under_mixed_bfloat16(method, grad_on):
    # the tiny model's every layer, heads too, computes in bfloat16: the step casts for it
    with policy_scope("mixed_bfloat16"):
        _, _, training = tiny(method, grad_on)
    assert training.get_layer("a").compute_dtype == "bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    training.fit(X, Y, sample_weight=W, batch_size=4, epochs=1, verbose=0, shuffle=False)
    weights = training.mtl_state.last_weights
    assert weights.dtype == tf.float32
    assert np.all(np.isfinite(weights.numpy())) and np.all(weights.numpy() > 0)
    assert float(training.mtl_state.steps.numpy()) == 1.0
    # the conflict on the shared weight (-4 against 2, exact in bfloat16) cancels as in float32
    if method == "pcgrad":
        assert float(training.get_layer("trunk").kernel.numpy()[0, 0]) == pytest.approx(0.0, abs=1e-6)


def _one_step(build, policy: str, initial_scale: float | None = None):
    """One step of `build()`'s model (SGD(1): a weight moves by its gradient) under `policy`."""
    with policy_scope(policy):
        training = build()
        if initial_scale is not None:
            opt = keras.mixed_precision.LossScaleOptimizer(keras.optimizers.SGD(1.0), initial_scale=initial_scale)
            training.compile(optimizer=opt, weighted_metrics={"a": [], "b": []})
    history = training.fit(X, Y, sample_weight=W, batch_size=4, epochs=1, verbose=0, shuffle=False)
    return training, history.history["loss"][0]


def test_a_gradient_method_under_mixed_float16_unscales_the_task_gradients():
    # scale 2^8, no overflow: the step is float32's (left scaled, it would be 256 times as long)
    build = lambda: two_unit_trunk("pcgrad", "params")  # noqa: E731
    reference, _ = _one_step(build, "float32")
    training, loss = _one_step(build, "mixed_float16", 2.0 ** 8)
    assert training.get_layer("a").compute_dtype == "float16" and np.isfinite(loss)
    step = training.get_layer("trunk").kernel.numpy()
    assert np.abs(step).max() > 0.5
    np.testing.assert_allclose(step, reference.get_layer("trunk").kernel.numpy(), rtol=1e-2)
    np.testing.assert_allclose(training.mtl_state.last_weights.numpy(), reference.mtl_state.last_weights.numpy(),
                               rtol=1e-2)


def test_a_gradient_method_under_mixed_float16_skips_an_overflow_and_keeps_its_state():
    # scale 2^15: dL/dy = -2 x 2^15 overflows float16; the optimizer skips the step and halves the
    # scale, and nash_mtl's state is put back as before the step (no NaN kept for the next one)
    training, loss = _one_step(lambda: tiny("nash_mtl")[2], "mixed_float16", 2.0 ** 15)
    assert float(training.optimizer.loss_scale.numpy()) == 2.0 ** 14
    np.testing.assert_array_equal(training.mtl_state.last_weights.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(training.mtl_state.nash_beta.numpy(), [1.0, 1.0])
    assert float(training.mtl_state.steps.numpy()) == 0.0
    assert float(training.get_layer("trunk").kernel.numpy()[0, 0]) == 0.0
    assert np.isfinite(loss)
