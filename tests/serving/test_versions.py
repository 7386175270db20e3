"""serving/versions.py: the serving history written for a push (through ReportGen), listed,
and a rollback that makes an earlier version serve as a new highest one, on real folders."""
import json
import os
import signal
import subprocess
import sys

import pytest

from serving import METADATA_FILE
from serving import versions as sv
from serving.predict import pushed_versions, resolve_model_dir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "PYTHONPATH": ROOT, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def fake_version(serving, version, tag, config_name="cfg"):
    """A pushed version's layout with contents unique to `tag` (what the copy must preserve)."""
    d = serving / version
    (d / "variables").mkdir(parents=True)
    (d / "assets.extra").mkdir()
    (d / "saved_model.pb").write_bytes(b"graph " + tag.encode())
    (d / "fingerprint.pb").write_bytes(b"fp " + tag.encode())
    (d / "variables" / "variables.index").write_bytes(b"index " + tag.encode())
    (d / "variables" / "variables.data-00000-of-00001").write_bytes(os.urandom(4096))
    (d / METADATA_FILE).write_text(json.dumps({"config": {"name": config_name}}))
    return d


def tree(path):
    """{relative path: bytes} of every file under `path`."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            out[os.path.relpath(p, path)] = open(p, "rb").read()
    return out


def listing(path):
    return sorted(os.path.relpath(os.path.join(r, f), path) for r, ds, fs in os.walk(path) for f in fs + ds)


def report_content(smile=0.9, gender=0.8):
    return {"blessed": True, "spans": None,
            "tasks": {"smile": {"primary_metric": "accuracy", "metrics": {"accuracy": smile, "auc": 0.95}},
                      "gender": {"primary_metric": "accuracy", "metrics": {"accuracy": gender}}}}


@pytest.fixture
def serving(tmp_path):
    """Three pushes: 1700000000 before records existed, then two recorded ones."""
    s = tmp_path / "serving_model"
    fake_version(s, "1700000000", "a", config_name="old")
    fake_version(s, "1700000100", "b")
    fake_version(s, "1700000200", "c")
    config = {"name": "cfg", "train": {"steps": 10}}
    sv.record_push(str(s / "1700000100"), "1700000100", config, report_content(0.9), blessed_against="1700000000")
    sv.record_push(str(s / "1700000200"), "1700000200", config, report_content(0.7), blessed_against="1700000100")
    return s


def test_lists_every_version_with_its_record_or_what_can_be_read(serving, capsys):
    rows = sv.list_versions(str(serving))
    assert [r["version"] for r in rows] == ["1700000000", "1700000100", "1700000200"]
    assert [r["serving"] for r in rows] == [False, False, True]
    old, b, _ = rows
    # pushed before records: the version's own metadata and its timestamp
    assert old["recorded"] is False and old["source"] is None and old["config"]["name"] == "old"
    assert old["created"] == "2023-11-14T22:13:20+00:00"
    assert b["source"] == "push" and b["blessed_against"] == "1700000000" and b["blessed"] is True
    assert b["metrics"] == {"smile": {"metric": "accuracy", "value": 0.9},
                            "gender": {"metric": "accuracy", "value": 0.8}}
    assert "spans" in b and b["spans"] is None  # the key is there before spans exist
    assert b["config"] == {"name": "cfg", "fingerprint": sv.config_fingerprint({"name": "cfg", "train": {"steps": 10}})}
    # the history sidecar is invisible to the one rule (and to TF Serving: not a number)
    assert sorted(os.listdir(serving)) == ["1700000000", "1700000100", "1700000200", "_history"]

    assert sv.main(["--serving-dir", str(serving)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["version", "created", "source", "config", "blessed", "against", "primary", "metrics"]
    assert out[1].split()[:3] == ["1700000000", "2023-11-14T22:13:20+00:00", "push"]
    assert "(no record)" in out[1] and out[1].rstrip().endswith("-")
    assert out[3].startswith("*") and "1700000200" in out[3] and "smile accuracy 0.700" in out[3]
    assert "gender accuracy 0.800" in out[2] and "1700000000" in out[2]
    assert sv.main(["--output-dir", str(serving.parent), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(rows))


def test_rollback_publishes_the_chosen_files_as_the_new_highest_version(serving, tmp_path, capsys):
    from tfx.types import standard_artifacts

    from components.baseline import pick_baseline

    before = tree(serving / "1700000100")
    assert sv.main(["--serving-dir", str(serving), "--rollback", "1700000100", "--reason", "c misclassifies"]) == 0
    out = capsys.readouterr().out
    versions = pushed_versions(str(serving))
    new = versions[-1]
    assert versions[:3] == ["1700000000", "1700000100", "1700000200"] and len(versions) == 4
    assert out.startswith(f"rolled back: version 1700000100 serves again as version {new} (was 1700000200)")
    assert tree(serving / new) == before == tree(serving / "1700000100")  # every file, byte for byte
    # the one rule, and everyone who uses it, now picks the restored model
    assert resolve_model_dir(str(serving)) == str(serving / new)
    baseline = standard_artifacts.Model()
    baseline.uri = str(tmp_path / "baseline")
    assert pick_baseline(str(serving), baseline) == new
    assert tree(tmp_path / "baseline" / "Format-Serving") == before
    rec = json.load(open(serving / "_history" / f"{new}.json"))
    assert rec["source"] == "rollback" and rec["restores"] == "1700000100"
    assert rec["rolled_back_from"] == "1700000200" and rec["reason"] == "c misclassifies"
    assert rec["metrics"]["smile"]["value"] == 0.9 and rec["blessed_against"] == "1700000000"  # its own figures
    row = sv.list_versions(str(serving))[-1]
    assert row["serving"] and sv._source(row) == "rollback of 1700000100"
    # rolling back to the one that serves changes nothing
    snapshot = listing(serving)
    assert sv.main(["--serving-dir", str(serving), "--rollback", new]) == 0
    assert "serves already" in capsys.readouterr().out and listing(serving) == snapshot
    # a rollback of a version without a record still works, and can itself be undone
    assert sv.rollback(str(serving), "1700000000")["config"]["name"] == "old"
    assert tree(resolve_model_dir(str(serving))) == tree(serving / "1700000000")


@pytest.mark.parametrize("version", ["1600000000", "latest", "_history"])
def test_rollback_to_a_missing_version_is_one_line_exit_2_and_changes_nothing(serving, version):
    snapshot = {**tree(serving), "": listing(serving)}
    p = subprocess.run([sys.executable, "-m", "serving.versions", "--serving-dir", str(serving),
                        "--rollback", version], capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.splitlines() == [f"error: cannot roll back: no version {version} under {serving}; "
                                     "versions: 1700000000, 1700000100, 1700000200"]
    assert {**tree(serving), "": listing(serving)} == snapshot


def test_no_versions_is_one_line_exit_2(tmp_path, capsys):
    assert sv.main(["--output-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: no pushed versions under {tmp_path / 'serving_model'}\n"
    assert sv.main(["--output-dir", str(tmp_path), "--rollback", "1"]) == 2
    assert not os.path.exists(tmp_path / "serving_model")


def test_a_failed_copy_leaves_nothing(serving, capsys):
    """A file that cannot be read midway (a dangling link: root reads through any chmod) fails the
    rollback; the partial copy and the record are removed, nothing else changed."""
    os.symlink(serving / "nowhere", serving / "1700000100" / "variables" / "zz.broken")
    snapshot = listing(serving)
    with pytest.raises(Exception, match="nowhere|zz.broken|No such file"):
        sv.rollback(str(serving), "1700000100")
    assert listing(serving) == snapshot and pushed_versions(str(serving))[-1] == "1700000200"
    assert sv.main(["--serving-dir", str(serving), "--rollback", "1700000100"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: rollback to 1700000100 failed, nothing changed: FileNotFoundError")
    assert listing(serving) == snapshot


KILL_MIDWAY = """
import os, signal, sys
from serving import versions as sv
copied = []
real = sv._copy_file
def copy_then_die(src, dst):
    real(src, dst)
    copied.append(dst)
    if len(copied) == 3:  # some files are there, saved_model.pb (copied last) is not
        os.kill(os.getpid(), signal.SIGKILL)
sv._copy_file = copy_then_die
sv.main(["--serving-dir", sys.argv[1], "--rollback", "1700000100"])
"""


def test_a_rollback_killed_midway_leaves_no_version_that_would_serve(serving, capsys):
    before = pushed_versions(str(serving))
    p = subprocess.run([sys.executable, "-c", KILL_MIDWAY, str(serving)], env=ENV, cwd=ROOT)
    assert p.returncode == -signal.SIGKILL
    (left,) = sv.leftovers(str(serving))
    assert left.startswith(sv.TMP_PREFIX) and len(tree(serving / left)) == 3
    assert "saved_model.pb" not in tree(serving / left)
    assert pushed_versions(str(serving)) == before and resolve_model_dir(str(serving)) == str(serving / "1700000200")
    assert [r["version"] for r in sv.list_versions(str(serving))] == before  # its early record names no version
    assert sv.main(["--serving-dir", str(serving)]) == 0
    assert f"never served, safe to delete: {left}" in capsys.readouterr().out
    # the next rollback goes through
    assert sv.main(["--serving-dir", str(serving), "--rollback", "1700000100"]) == 0
    assert tree(resolve_model_dir(str(serving))) == tree(serving / "1700000100")


def test_report_gen_records_the_push_against_the_served_baseline(run, tmp_path):
    """ReportGen's executor, wired as the pipeline wires it (the Pusher's pushed_model, the
    baseline picker's artifact), writes the version's record; a run that did not push writes none."""
    from tfx.types import standard_artifacts

    from components.report.component import Report, ReportGen

    def art(cls, uri, **props):
        a = cls()
        a.uri = str(uri)
        for k, v in props.items():
            (a.set_int_custom_property if isinstance(v, int) else a.set_string_custom_property)(k, v)
        return a

    serving = tmp_path / "serving_model"
    fake_version(serving, "1700000000", "a")
    fake_version(serving, "1700000300", "d")

    def do(pushed, **pushed_props):
        inputs = {"evaluation": [art(standard_artifacts.ModelEvaluation, run.eval_output)],
                  "model": [art(standard_artifacts.Model, tmp_path / "model")],
                  "examples": [art(standard_artifacts.Examples, os.path.join(run.root, "examples"))],
                  "pushed_model": [art(standard_artifacts.PushedModel, tmp_path / "pushed", pushed=pushed,
                                       **pushed_props)],
                  "baseline_model": [art(standard_artifacts.Model, tmp_path / "baseline",
                                         pushed_version="1700000000", found=1)]}
        ReportGen.EXECUTOR_SPEC.executor_class().Do(
            inputs, {"report": [art(Report, tmp_path / "report")]},
            {"config_json": run.config.to_json(), "report_dir": str(tmp_path / "user_report")})
        return json.load(open(tmp_path / "report" / "report.json"))

    do(0)
    assert not (serving / "_history").exists()
    report = do(1, pushed_destination=str(serving / "1700000300"), pushed_version="1700000300")
    rec = json.load(open(serving / "_history" / "1700000300.json"))
    assert rec["source"] == "push" and rec["blessed_against"] == "1700000000"
    assert rec["blessed"] == report["blessed"] and rec["report_dir"] == str(tmp_path / "user_report")
    assert rec["config"] == {"name": run.config.name,
                             "fingerprint": sv.config_fingerprint(json.loads(run.config.to_json()))}
    assert rec["metrics"] == {t: {"metric": e["primary_metric"], "value": e["metrics"].get(e["primary_metric"])}
                              for t, e in report["tasks"].items()}
    assert rec["metrics"]["age"] == {"metric": "accuracy", "value": report["tasks"]["age"]["metrics"]["accuracy"]}
    assert "spans" in rec and ReportGen.SPEC_CLASS.INPUTS["pushed_model"].optional
    assert [r["source"] for r in sv.list_versions(str(serving))] == [None, "push"]
