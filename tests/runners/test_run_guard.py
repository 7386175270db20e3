"""One run per output dir, one config per output dir, and one line per failure: with real
processes holding real locks, real kills and real OS errors."""
import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from config import errors
from runners import run_guard

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOLD = ("import sys, time\nfrom runners import run_guard\n"
        "with run_guard.hold_output_dir(sys.argv[1], sys.argv[2]):\n"
        "    print('held', flush=True)\n    time.sleep(float(sys.argv[3]))\n")


def _holder(out, config="default", seconds=60):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out), config, str(seconds)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.stdout.readline().strip() == "held"
    return proc


def _config(tmp_path, name):
    with open(os.path.join(ROOT, "configs", "default.yaml")) as f:
        raw = yaml.safe_load(f)
    raw["name"] = name
    for src in raw["sources"]:
        src["path"] = str(tmp_path / "data" / src["name"])
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run_local(*args):
    return subprocess.run([sys.executable, "run_local.py", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_a_second_run_is_refused_with_the_first_runs_pid(tmp_path):
    out = tmp_path / "out"
    holder = _holder(out, "default")
    try:
        proc = _run_local("--config", _config(tmp_path, "default"), "--output-dir", out)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: output dir {out} is in use by run PID {holder.pid} (config 'default', started ")
    assert "--wait" in line


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "out"
    holder = _holder(out)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with run_guard.hold_output_dir(str(out), "default", log=pytest.fail) as held:  # no waiting
        assert json.loads((out / run_guard.LOCK_FILE).read_text())["pid"] == os.getpid()
        assert held.log_path.startswith(str(out / "logs" / "run-"))


def test_wait_waits_for_the_holder_to_finish(tmp_path):
    out = tmp_path / "out"
    holder = _holder(out, seconds=3)
    said, asked = [], time.monotonic()
    with run_guard.hold_output_dir(str(out), "default", wait=True, log=said.append):
        waited = time.monotonic() - asked
    assert holder.wait(timeout=30) == 0
    assert waited > 2.0  # held until the holder's 3 s were up
    assert said and f"run PID {holder.pid}" in said[0]


def test_another_config_is_refused(tmp_path):
    out = tmp_path / "out"
    with run_guard.hold_output_dir(str(out), "default"):
        pass
    assert json.loads((out / run_guard.OWNER_FILE).read_text()) == {"config": "default"}
    with run_guard.hold_output_dir(str(out), "default"):  # the same config again: fine
        pass
    proc = _run_local("--config", _config(tmp_path, "other"), "--output-dir", out)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line == (f"error: output dir {out} holds the outputs of config 'default' (its report, serving "
                    "model and last_run.json); this config is 'other': use another --output-dir")


def _raised(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return e
    raise AssertionError("did not raise")


def _write_dev_full():
    with open("/dev/full", "wb") as f:
        f.write(b"x" * 1_000_000)
        f.flush()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_a_full_disk_is_one_line_with_what_to_do(tmp_path):
    e = _raised(_write_dev_full)  # a real ENOSPC from the kernel
    assert isinstance(e, OSError) and e.errno == errno.ENOSPC
    line = errors.failure_line(e, "DataPrepExampleGen", str(tmp_path), "/x/run.log")
    assert line.startswith("error: DataPrepExampleGen failed: No space left on device; the disk is full: "
                           f"free space where {tmp_path} is (")
    assert line.endswith("(full traceback: /x/run.log)") and "\n" not in line

    # Beam re-raises a worker's error as text inside a RuntimeError
    def beam():
        try:
            _write_dev_full()
        except OSError as inner:
            raise RuntimeError(f"{inner!r} [while running 'Write[train_wiki]/Write/WriteImpl']") from None
    line = errors.failure_line(_raised(beam), "DataPrepExampleGen", str(tmp_path), "/x/run.log")
    assert "failed: No space left on device; the disk is full" in line


def test_missing_and_forbidden_paths_name_the_path(tmp_path):
    gone = tmp_path / "gone" / "x.jpg"
    e = _raised(lambda: open(gone, "rb"))
    assert errors.failure_line(e, "Transform", str(tmp_path), "L") == (
        f"error: Transform failed: No such file or directory; {gone} does not exist (moved or deleted during "
        "the run?): restore it and run the same command again (full traceback: L)")
    e = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "ro"))
    assert "permission denied on " + str(tmp_path / "ro") in errors.failure_line(e, None, str(tmp_path), "L")


def test_other_failures_name_the_component_and_the_first_line():
    e = _raised(lambda: (_ for _ in ()).throw(ValueError("bad thing\nsecond line")))
    assert errors.failure_line(e, "Trainer", "/o", "L") == \
        "error: Trainer failed: ValueError: bad thing (full traceback: L)"
    assert errors.classify(e) == (None, None, "ValueError: bad thing")


def test_run_local_failure_is_one_line_and_a_log(tmp_path):
    """A real runtime failure inside the DAG: a source folder holding no images at all."""
    config = _config(tmp_path, "default")
    raw = yaml.safe_load(config.read_text())
    for src in raw["sources"]:
        os.makedirs(src["path"], exist_ok=True)  # exists, so nothing is generated; holds no files
    config.write_text(yaml.safe_dump(raw))
    proc = _run_local("--config", config, "--output-dir", tmp_path / "out")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    log = lines[0].rsplit("full traceback: ", 1)[-1].rstrip(")") if "full traceback" in lines[0] else None
    if log:  # failures inside the DAG keep their traceback in the run's log
        assert os.path.exists(log) and "Traceback" in open(log).read()
