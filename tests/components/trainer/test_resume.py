"""A Trainer killed mid-training resumes from its last finished epoch.

The real run_fn runs in a subprocess on conftest's tiny `transformed_data`
(40 steps of 8 = 4 epochs of 10); it is SIGKILLed as soon as BackupAndRestore's
first checkpoint exists under model_run_dir/backup, then run again with the
same fn_args (in this process, which saves a second start of TensorFlow). The
second run must train only the epochs after the checkpointed one (Keras prints
`Epoch k/4` as each epoch starts), save the model and remove the backup. Without
BackupAndRestore no backup appears; with a backup that is not restored the
second run starts at `Epoch 1/4`: either fails the test.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

from components.trainer.run_fn import run_fn
from tests.components.trainer.helpers import fn_args_for, make_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
STEPS = 40  # components.trainer.run_fn.epochs_for(40) == 4 epochs of 10 steps
EPOCHS = 4
# BackupAndRestore's CheckpointManager dir and the epoch counter it saves (tf_keras WorkerTrainingState).
CHIEF = os.path.join("backup", "chief")
SAVED_EPOCH = "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"
FN_ARGS = ("train_files", "eval_files", "train_steps", "eval_steps", "transform_output",
           "serving_model_dir", "model_run_dir", "custom_config")

RUN_FN = """
import json, sys
from tfx.components.trainer.fn_args_utils import FnArgs
from components.trainer.run_fn import run_fn
run_fn(FnArgs(**json.load(open(sys.argv[1]))))
"""


def start_run_fn(args_file, log_path):
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    log = open(log_path, "w")
    return subprocess.Popen([sys.executable, "-c", RUN_FN, str(args_file)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT), log


def epochs_started(text):
    """The 1-based epoch numbers Keras announced (`Epoch k/N`), in order."""
    return [int(k) for k, n in re.findall(r"^Epoch (\d+)/(\d+)$", text, re.M) if int(n) == EPOCHS]


def test_killed_trainer_resumes_from_its_last_epoch(transformed_data, tmp_path, capfd):
    config = make_config(size=(48, 48), batch_size=8)  # the one transformed_data was made with
    fn_args = fn_args_for(transformed_data, config, tmp_path, STEPS, eval_steps=1)
    fn_args = {k: getattr(fn_args, k) for k in FN_ARGS}
    args_file = tmp_path / "fn_args.json"
    args_file.write_text(json.dumps(fn_args))
    chief = os.path.join(fn_args["model_run_dir"], CHIEF)
    saved_model = os.path.join(fn_args["serving_model_dir"], "saved_model.pb")

    proc, log = start_run_fn(args_file, tmp_path / "run1.log")
    try:
        deadline = time.time() + 180
        while tf.train.latest_checkpoint(chief) is None and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, (f"run_fn ended (status {proc.returncode}) before any backup under {chief}:\n"
                                     + open(tmp_path / "run1.log").read()[-3000:])
        assert tf.train.latest_checkpoint(chief), f"no backup checkpoint under {chief} after 180 s"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    assert not os.path.exists(saved_model), "the first run finished before it was killed"
    # The epoch (0-based) the surviving checkpoint was taken after: the restart resumes after it.
    saved = int(tf.train.load_checkpoint(tf.train.latest_checkpoint(chief)).get_tensor(SAVED_EPOCH))
    assert 0 <= saved < EPOCHS - 1, saved
    assert epochs_started(open(tmp_path / "run1.log").read())[: saved + 1] == list(range(1, saved + 2))

    # The restart: the same fn_args, in this process (TensorFlow is already imported here).
    capfd.readouterr()
    run_fn(FnArgs(**json.loads(args_file.read_text())))
    run2 = capfd.readouterr().out
    # Only the epochs after the checkpoint: a run from scratch would start at Epoch 1/4.
    assert epochs_started(run2) == list(range(saved + 2, EPOCHS + 1)), run2[-3000:]
    assert os.path.exists(saved_model)
    assert not os.path.exists(chief), "BackupAndRestore deletes its checkpoint when fit ends"
