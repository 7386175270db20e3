import pytest

from benchmarks import pipeline_run


def test_run_order_alternates_which_side_goes_first():
    assert pipeline_run.run_order(1) == ["B", "A"]
    assert pipeline_run.run_order(3) == ["B", "A", "A", "B", "B", "A"]


def test_run_order_needs_a_pair():
    with pytest.raises(ValueError, match="BENCH_RUN_PAIRS must be >= 1, received 0"):
        pipeline_run.run_order(0)


def test_baseline_without_run_local_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_BASELINE_CHECKOUT", str(tmp_path))
    with pytest.raises(ValueError, match="no run_local.py in"):
        pipeline_run.run()


def test_component_seconds_read_from_last_run(tmp_path):
    path = tmp_path / "last_run.json"
    assert pipeline_run.component_seconds(str(path)) == {}
    path.write_text('{"pipeline_s": 9, "components": [{"component": "Trainer", "seconds": 86.84, '
                    '"state": "COMPLETE"}, {"component": "Pusher", "seconds": 0.03, "state": "COMPLETE"}]}')
    assert pipeline_run.component_seconds(str(path)) == {"Trainer": 86.8, "Pusher": 0.0}


def test_each_checkout_runs_on_its_own_venv(tmp_path):
    """A checkout with a .venv is timed on that venv's Python (what its `make run` uses), so each
    side runs as its own `make setup` installed it; one without runs on this Python."""
    import sys

    assert pipeline_run.python_of(str(tmp_path)) == sys.executable
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    assert pipeline_run.python_of(str(tmp_path)) == str(python)
