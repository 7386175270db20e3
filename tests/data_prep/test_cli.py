"""`python -m data_prep`: one-line errors with exit status 2 before any Beam work."""
import os
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": REPO, "TF_USE_LEGACY_KERAS": "1"}
    return subprocess.run([sys.executable, "-m", "data_prep", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def _write(tmp_path, raw):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


BASE = {"name": "t", "tasks": [{"name": "smile", "type": "binary", "classes": ["no", "yes"]}],
        "sources": [{"name": "g", "format": "genki4k", "path": "nowhere", "tasks": ["smile"]}]}


@pytest.mark.parametrize("raw,message", [
    ({**BASE, "image": {"channels": 2}}, "error: config key 'image.channels': received 2; valid: 1, 3"),
    ({**BASE, "sources": [{**BASE["sources"][0], "options": {"smile": 1}}]},
     "error: config key 'sources[0].options.smile': unknown option; "
     "valid options for format genki4k: smile_task (source 'g', format genki4k)"),
    (BASE, "error: config key 'sources[0].path': {tmp}/nowhere does not exist; point it at the genki4k data, "
           "or add `sample: {{count: 500}}` to the source to generate sample data there"),
    ({**BASE, "sources": [{**BASE["sources"][0], "prep": {"resize": "fit"}}]},
     "error: config key 'sources[0].prep.resize': received 'fit'; valid: stretch, pad, crop"),
    ({**BASE, "sources": [{**BASE["sources"][0], "prep": {"face_crop": True}}]},
     "error: config key 'sources[0].prep.face_crop': received true, but format genki4k gives no face "
     "boxes with these options; face boxes come from imdb_wiki (face_location) and csv (options.bbox_column)"),
])
def test_exit_2_with_one_line(tmp_path, raw, message):
    res = _cli("--config", _write(tmp_path, raw), "--output-dir", str(tmp_path / "out"))
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == [message.format(tmp=tmp_path)]
    assert not (tmp_path / "out").exists()


def test_missing_config_file(tmp_path):
    res = _cli("--config", str(tmp_path / "none.yaml"), "--output-dir", str(tmp_path / "out"))
    assert (res.returncode, res.stderr.strip()) == (
        2, f"error: config key '': cannot read config file {tmp_path}/none.yaml: No such file or directory")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs (a real full disk) needs root")
def test_a_full_disk_ends_in_one_error_line_and_a_log(tmp_path):
    raw = {**BASE, "image": {"size": [48, 48], "channels": 1},
           "sources": [{**BASE["sources"][0], "path": str(tmp_path / "data"), "sample": {"count": 300, "seed": 1}}]}
    out = tmp_path / "out"
    out.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(out)]).returncode != 0:
        pytest.skip("mount -t tmpfs refused (no CAP_SYS_ADMIN)")
    try:
        res = _cli("--config", _write(tmp_path, raw), "--output-dir", str(out))
    finally:
        subprocess.run(["umount", "-l", str(out)])
    assert res.returncode == 1, res.stderr[-3000:]
    assert "Traceback" not in res.stderr  # logged one line per record; the traceback is in the log
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the conversion failed: ") and "the disk is full: free space where" in last, last
    log = last.rsplit("(full traceback: ", 1)[1].rstrip(")")
    assert "No space left on device" in open(log).read()
