"""`python -m serving.batch_predict` on the tiny trained model (the session `trained` fixture) and
real files: rows equal to the serving_image signature's outputs, every bad file of
data_prep.generators.bad_files in the dead letter with its reason, exit codes, and no final
output from a killed run."""
import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from data_prep.generators.bad_files import good_jpeg, make_bad_files
from serving.batch_predict import DEAD_LETTER_COLUMNS, columns, main, row
from tests.components.trainer.helpers import TASKS, png_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture
def folder(tmp_path):
    """Good images (PNG of two sizes, a JPEG) in nested folders, the generator's bad files, and
    the other things a scraped folder holds. Returns (folder, good paths in listing order,
    {path: expected dead-letter reason})."""
    root = tmp_path / "images"
    (root / "b" / "deep").mkdir(parents=True)
    (root / "a").mkdir()
    rng = np.random.default_rng(3)
    good = ["a/face1.png", "b/deep/face2.PNG", "b/face3.jpg", "face0.png", "face4.png"]
    for rel, size in zip(good, [(48, 48), (64, 40), None, (30, 50), (48, 48)]):
        data = good_jpeg(seed=1) if size is None else png_bytes(rng.integers(0, 256, size=size, dtype=np.uint8))
        (root / rel).write_bytes(data)
    make_bad_files(str(root / "b"))  # b/zero.jpg, b/truncated.jpg, b/text.jpg
    (root / "b" / "photo.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    os.symlink(tmp_path / "gone.jpg", root / "a" / "moved.jpg")  # a link whose target is gone
    os.symlink(root / "b", root / "linked")  # a link to a folder
    os.symlink("loop.jpg", root / "a" / "loop.jpg")  # a link to itself: ELOOP, not a crash
    (root / "labels.txt").write_text("not an image, not predicted\n")
    dead = {"a/loop.jpg": "unreadable", "a/moved.jpg": "unreadable", "b/photo.webp": "unsupported_format",
            "b/text.jpg": "not_an_image",
            "b/truncated.jpg": "undecodable", "b/zero.jpg": "empty", "linked": "linked_folder"}
    return root, good, dead


def test_rows_are_the_signatures_outputs_and_every_bad_file_is_dead_lettered(trained, folder, tmp_path, capsys):
    config, fn_args, loaded, _ = trained
    root, good, dead = folder
    output = tmp_path / "predictions.csv"
    # batches of 2: batching, and a batch the signature refuses (truncated.jpg) retried without it
    assert main([str(root), "--output", str(output), "--model", fn_args.serving_model_dir, "--batch-size", "2"]) == 1

    out = loaded.signatures["serving_image"](image_bytes=tf.constant([(root / p).read_bytes() for p in good]))
    header, *rows = read_csv(output)
    assert header == ["path", "smile", "smile_probability", "gender", "gender_probability", "age", "age_probability"]
    assert [r[0] for r in rows] == good  # listing order: sorted by path components, all folders
    for i, r in enumerate(rows):
        for j, task in enumerate(TASKS):
            scores = out[task].numpy()[i]
            assert r[1 + 2 * j] == config.task(task).classes[int(scores.argmax())]
            assert float(r[2 + 2 * j]) == float(scores.max())  # exactly the signature's float32

    dead_rows = read_csv(f"{output}.dead_letter.csv")
    assert dead_rows[0] == list(DEAD_LETTER_COLUMNS)
    assert [(p, reason) for p, reason, _ in dead_rows[1:]] == sorted(dead.items())
    details = {p: d for p, _, d in dead_rows[1:]}
    assert details["b/zero.jpg"] == "zero-byte file"
    assert details["b/truncated.jpg"].startswith("the serving_image signature refused it: ")
    assert "Invalid JPEG data" in details["b/truncated.jpg"]
    assert "<html>" in details["b/text.jpg"]
    summary = capsys.readouterr().out.strip().splitlines()
    assert summary == [f"5 images predicted, 7 dead-lettered (empty 1, linked_folder 1, not_an_image 1, "
                       f"undecodable 1, unreadable 2, unsupported_format 1), 1 other files ignored; model "
                       f"{fn_args.serving_model_dir}; wrote {output} and {output}.dead_letter.csv"]
    assert sorted(os.listdir(tmp_path)) == ["images", "predictions.csv", "predictions.csv.dead_letter.csv"]

    # Parquet: the same table, typed; another batch size, the same bytes of CSV (deterministic)
    parquet = tmp_path / "predictions.parquet"
    assert main([str(root), "--output", str(parquet), "--model", fn_args.serving_model_dir]) == 1
    table = pq.read_table(parquet)
    assert table.column_names == header
    assert [list(r.values()) for r in table.to_pylist()] == [
        [float(v) if name.endswith("_probability") else v for name, v in zip(header, r)] for r in rows]
    again = tmp_path / "again.csv"
    main([str(root), "--output", str(again), "--model", fn_args.serving_model_dir, "--batch-size", "3"])
    assert again.read_bytes() == output.read_bytes()


def test_clean_folder_exits_0_with_the_model_serving_now(trained, folder, tmp_path, capsys):
    _, fn_args, _, _ = trained
    root, good, _ = folder
    clean = tmp_path / "clean"
    clean.mkdir()
    for p in good:
        (clean / p.replace("/", "_")).write_bytes((root / p).read_bytes())
    versions = tmp_path / "serving_model"  # as the Pusher lays it out: the highest version serves
    versions.mkdir()
    os.symlink(tmp_path / "nowhere", versions / "20")  # no saved_model.pb: not a version
    os.symlink(fn_args.serving_model_dir, versions / "12")
    output = tmp_path / "out.csv"
    assert main([str(clean), "--output", str(output), "--model", str(versions)]) == 0
    assert len(read_csv(output)) == 1 + len(good)
    assert read_csv(f"{output}.dead_letter.csv") == [list(DEAD_LETTER_COLUMNS)]  # written, empty: no stale one
    assert f"model {versions / '12'};" in capsys.readouterr().out


def test_bad_input_is_one_line_exit_2_and_nothing_written(trained, folder, tmp_path, capsys):
    _, fn_args, _, _ = trained
    root, _, _ = folder
    no_images = tmp_path / "notes"
    (no_images / "sub").mkdir(parents=True)
    (no_images / "sub" / "labels.txt").write_text("x")
    no_model = tmp_path / "no_model"
    no_model.mkdir()
    output = tmp_path / "out" / "p.csv"
    output.parent.mkdir()
    cases = {
        (str(tmp_path / "missing"), fn_args.serving_model_dir): f"error: {tmp_path / 'missing'}: no such folder",
        (str(no_images), fn_args.serving_model_dir): f"error: {no_images} holds no image files (.jpg, .jpeg, "
                                                     ".jpe, .jfif, .png, .gif, .bmp) in any folder; 1 other file(s)",
        (str(root), str(no_model)): f"error: --model {str(no_model)!r}: holds neither saved_model.pb nor "
                                    "numbered versions with one",
    }
    for (images, model), line in cases.items():
        assert main([images, "--output", str(output), "--model", model]) == 2
        captured = capsys.readouterr()
        assert (captured.out, captured.err.splitlines()) == ("", [line])
    assert main([str(root), "--output", str(tmp_path / "nope" / "p.csv"), "--model", fn_args.serving_model_dir]) == 2
    assert capsys.readouterr().err.startswith("error: --output ")
    assert os.listdir(output.parent) == []


def test_multilabel_and_regression_columns():
    tasks = [{"name": "attrs", "type": "multilabel", "classes": ["red", "blue", "hat"]},
             {"name": "age", "type": "regression", "classes": []},
             {"name": "smile", "type": "binary", "classes": ["no", "yes"]}]
    assert [c for c, _ in columns(tasks)] == ["path", "attrs", "attrs_probability_red", "attrs_probability_blue",
                                              "attrs_probability_hat", "age", "smile", "smile_probability"]
    scores = {"attrs": np.array([[0.9, 0.2, 0.51], [0.1, 0.2, 0.5]], np.float32),
              "age": np.array([[31.5], [2.25]], np.float32), "smile": np.array([[0.25, 0.75], [0.5, 0.5]], np.float32)}
    assert row("x.png", tasks, scores, 0) == ["x.png", "red;hat", float(np.float32(0.9)), float(np.float32(0.2)),
                                              float(np.float32(0.51)), 31.5, "yes", 0.75]
    # 0.5 is not over 0.5; a tie goes to the first class, as serving.predict says
    assert row("y.png", tasks, scores, 1)[1] == "" and row("y.png", tasks, scores, 1)[-2:] == ["no", 0.5]


def _started(tmp_path):
    """Whether the run has written predicted rows to its temporary output."""
    for name in os.listdir(tmp_path):
        if name.startswith("out.csv.") and name.endswith(".partial") and "dead_letter" not in name:
            with open(tmp_path / name) as f:
                if sum(1 for _ in f) > 1:
                    return True
    return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_run_leaves_no_output_that_looks_complete(trained, tmp_path, sig):
    _, fn_args, _, _ = trained
    many = tmp_path / "many"
    many.mkdir()
    data = png_bytes(np.random.default_rng(0).integers(0, 256, size=(48, 48), dtype=np.uint8))
    for i in range(4000):
        (many / f"{i:05d}.png").write_bytes(data)
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "serving.batch_predict", str(many), "--output",
                             str(tmp_path / "out.csv"), "--model", fn_args.serving_model_dir, "--batch-size", "1"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while not _started(tmp_path):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    left = sorted(os.listdir(tmp_path))
    assert "out.csv" not in left and "out.csv.dead_letter.csv" not in left
    if sig == signal.SIGTERM:  # a kill it can catch: it also removes its temporary files
        assert proc.returncode == 128 + signal.SIGTERM
        assert left == ["many"]
