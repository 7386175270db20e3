"""Every gradient method on two replicas (tf.distribute.MirroredStrategy over two logical CPUs, in a
subprocess: tests/components/trainer/mtl_replicas.py) makes the update one replica makes on the same
global batches: the task gradients are the global batch's, every replica combines them into the same
coefficients, and L2's gradient, which every replica computes whole, is divided by the replicas as
in the plain step (the optimizer adds the replicas' gradients; undivided, L2 counted twice)."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
METHODS = ("pcgrad", "cagrad", "imtl", "nash_mtl", "rlw", "gradnorm", "famo")


@pytest.fixture(scope="module")
def replicas():
    env = {**os.environ, "PYTHONPATH": REPO, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tests", "components", "trainer", "mtl_replicas.py"),
                           ",".join(METHODS)], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("grad_on", ["params", "representation"])
@pytest.mark.parametrize("method", METHODS)
def test_two_replicas_update_as_one(replicas, method, grad_on):
    result = replicas[f"{method}/{grad_on}"]
    # every variable moved (the heads by their task gradients, not L2 alone), and the same way on 2 replicas
    assert min(result["moved"]) > 1e-3, result["moved"]
    assert max(result["relative"]) < 1e-4, result["relative"]
    assert max(result["state"].values()) < 1e-5, result["state"]
