"""`python -m runners.demo_continuous --quick`: two spans through the real DAG, the drift
reported and accepted under `warn`, a warm start, two versions and a rollback; then the
same span 2 refused under the default gate (`validation.drift.action: fail`)."""
import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # two whole DAG runs and a third to the gate


def test_demo_continuous_then_the_default_gate_refuses_the_same_span(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "runners.demo_continuous", "--output-dir", str(out), "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    report = json.loads((out / "report" / "report.json").read_text())
    assert report["spans"] == {"genki4k": [1, 2], "wiki": [1, 2]}
    assert report["spans_detail"]["genki4k"]["reused"] == [1]  # converted by the first run
    assert report["spans_detail"]["genki4k"]["converted"] == [2]
    smile = report["drift"]["label/smile"]
    assert smile["passed"] is False and smile["distance"] > smile["threshold"]
    assert report["drift_check"]["status"] == "accepted"
    assert report["warm_started_from"].startswith(str(out / "serving_model") + "/")
    last_run = json.loads((out / "last_run.json").read_text())
    assert last_run["spans"]["genki4k"]["train"] == [1, 2]

    listing = subprocess.run([sys.executable, "-m", "serving.versions", "--output-dir", str(out), "--json"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)
    assert [r["source"] for r in rows] == ["push", "push", "rollback"], rows
    first, second, third = rows
    assert third["restores"] == first["version"] and third["serving"]
    assert report["warm_started_from"] == str(out / "serving_model" / first["version"])
    assert second["spans"] == {"genki4k": [1, 2], "wiki": [1, 2]}

    # The same data under the default gate: refused before Transform, one line naming the feature
    raw = yaml.safe_load((out / "continuous.yaml").read_text())
    raw["validation"]["drift"]["action"] = "fail"
    (out / "continuous.yaml").write_text(yaml.safe_dump(raw))
    proc = subprocess.run([sys.executable, "run_local.py", "--config", str(out / "continuous.yaml"),
                           "--output-dir", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "drift: label/smile infinity_norm distance" in proc.stderr
    assert "DriftGate" in proc.stderr
