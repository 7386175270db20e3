"""Real faults on the whole DAG: a full disk, and SIGKILL at the start, middle and end of each
component in turn; after each, a rerun on the same output dir must complete with the figures
of an uninterrupted run and leave nothing RUNNING in ML Metadata.

`make test` runs the full-disk case and one kill (the Evaluator, mid-way; the Trainer kill is
in test_local_dag.py); the whole sweep is `slow` (`make test-all`)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.helpers import ROOT, figures, mlmd_executions, states, write_config

pytestmark = pytest.mark.e2e

# Components that run long enough to be killed at a chosen point (the others take ~0.1 s).
SWEPT = ("DataPrepExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator", "Pusher", "ReportGen")
POINTS = {"start": 0.0, "middle": 0.5, "end": 0.9}
FAST = {("Evaluator", "middle")}


def _cmd(config, out):
    return [sys.executable, "run_local.py", "--config", str(config), "--output-dir", str(out)]


def _rerun(config, out):
    proc = subprocess.run(_cmd(config, out), cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def _nothing_running(out):
    left = [e.id for e in mlmd_executions(out / "tfx" / "tiny_e2e" / "metadata.sqlite")
            if e.last_known_state in (1, 2)]  # NEW, RUNNING
    assert left == []


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: its figures and each component's wall time."""
    tmp = tmp_path_factory.mktemp("faults")
    config = write_config(tmp / "tiny.yaml", tmp / "data")
    out = tmp / "reference"
    _rerun(config, out)
    seconds = {c["component"]: c["seconds"] for c in json.loads((out / "last_run.json").read_text())["components"]}
    return config, figures(out), seconds


def _kill_during(config, out, component, fraction, seconds) -> str:
    """Starts a run, SIGKILLs its process group `fraction` of the way through `component`
    (as long as the reference run took for it); returns the component's last printed state."""
    proc = subprocess.Popen(_cmd(config, out), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    state = None
    try:
        for line in proc.stdout:  # progress lines: "  <component>: running|complete in ...|cached"
            name, _, rest = line.strip().partition(": ")
            if name == component:
                state = rest.split(" ", 1)[0]
                break
        assert state is not None, f"{component} never started"
        time.sleep(fraction * seconds[component] if state == "running" else 0.0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return state


@pytest.mark.parametrize("component,point", [
    pytest.param(c, p, marks=() if (c, p) in FAST else pytest.mark.slow) for c in SWEPT for p in POINTS])
def test_kill_then_rerun_gives_the_same_figures(reference, tmp_path, component, point):
    config, expected, seconds = reference
    out = tmp_path / "out"
    seen = _kill_during(config, out, component, POINTS[point], seconds)
    rerun = _rerun(config, out)
    assert figures(out) == expected
    _nothing_running(out)
    ran = states(out)
    assert "FAILED" not in ran.values(), ran
    if seen == "running" and ran.get(component) == "COMPLETE":
        assert f"cleaned up {component} (execution " in rerun.stdout, rerun.stdout


def _mount_tmpfs(path, size):
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True).returncode == 0


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"),
                    reason="mounting a small tmpfs (a real full disk) needs root")
def test_a_full_disk_is_one_line_and_a_rerun_after_freeing_space_completes(reference, tmp_path):
    config, expected, _ = reference
    out = tmp_path / "out"
    out.mkdir()
    if not _mount_tmpfs(out, "6m"):  # the Trainer's checkpoints and model need ~16 MB
        pytest.skip("mount -t tmpfs refused (a container without CAP_SYS_ADMIN)")
    try:
        proc = subprocess.run(_cmd(config, out), cwd=ROOT, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr[-3000:]
        assert lines[0].startswith("error: ") and "the disk is full: free space where" in lines[0], lines[0]
        log = lines[0].rsplit("(full traceback: ", 1)[1].rstrip(")")
        assert "Traceback" in open(log).read()  # under out/logs, or /tmp when the disk cannot take it

        # more space, the same command: it completes, reusing what finished, with the same figures
        assert subprocess.run(["mount", "-o", "remount,size=400m", str(out)]).returncode == 0
        _rerun(config, out)
        assert figures(out) == expected
        _nothing_running(out)
        assert "CACHED" in states(out).values()
    finally:
        subprocess.run(["umount", "-l", str(out)])
