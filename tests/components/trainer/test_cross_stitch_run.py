"""run_fn with a cross-stitched multibranch model, a gradient method on the parameters and
train.sampling.min_per_task: it trains, the probe records the mixing weights, and the saved
model serves and loads as the Evaluator loads it (a fresh process that never imports models/)."""
import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from components.common.probe_file import read_probe
from components.trainer.run_fn import run_fn
from config import parse
from tests.components.trainer.helpers import config_dict, fn_args_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LOAD = """
import sys, numpy as np, tensorflow as tf, tf_keras as keras
model = keras.models.load_model(sys.argv[1])
out = model(tf.zeros((2, 48, 48, 1)), training=False)
np.save(sys.argv[2], np.concatenate([out[t].numpy() for t in ("smile", "gender", "age")], axis=1))
print(sorted(m for m in sys.modules if m == "models" or m.startswith("models.")))
"""


def test_run_fn_trains_and_exports_a_cross_stitched_model(transformed_data, tmp_path):
    raw = config_dict(size=(48, 48), batch_size=8, sampling={"type": "natural", "min_per_task": 2})
    raw["model"] = {"name": "multibranch", "params": {"filters": [4, 8], "dense": [8]},
                    "sharing": {"type": "cross_stitch"}}
    raw["train"]["mtl"] = {"method": "pcgrad", "grad_on": "params"}
    config = parse(raw, base_dir=None)
    fn_args = fn_args_for(transformed_data, config, tmp_path, train_steps=10, eval_steps=1)
    run_fn(fn_args)

    probe = read_probe(fn_args.model_run_dir)
    units = probe["probes"][-1]["cross_stitch"]
    assert list(units) == ["cross_stitch_block1", "cross_stitch_block2", "cross_stitch_dense1"]
    row = units["cross_stitch_block1"]["smile"]
    assert set(row) == {"smile", "gender", "age"} and row["smile"] != 0.9  # trained away from the start

    loaded = tf.saved_model.load(fn_args.serving_model_dir)
    rows = transformed_data["splits"]["eval_genki4k"]
    out = loaded.signatures["serving_default"](examples=tf.constant([r[0] for r in rows]))
    assert {k: v.shape[1] for k, v in out.items()} == {"smile": 2, "gender": 2, "age": 5}

    import tf_keras as keras
    here = keras.models.load_model(fn_args.serving_model_dir)
    expected = here(tf.zeros((2, 48, 48, 1)), training=False)
    env = dict(os.environ, PYTHONPATH=ROOT, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    res = subprocess.run([sys.executable, "-c", LOAD, fn_args.serving_model_dir, str(tmp_path / "out.npy")],
                         cwd=str(tmp_path), env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout.strip().splitlines()[-1].replace("'", '"')) == []  # no project model code
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), np.concatenate(
        [expected[t].numpy() for t in ("smile", "gender", "age")], axis=1), rtol=1e-5, atol=1e-6)
