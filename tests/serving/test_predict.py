"""`python -m serving.predict` on the tiny trained model (the session `trained` fixture):
class names from the model directory, the serving_image signature, clear errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from serving import METADATA_FILE
from serving.predict import describe, main, predict, resolve_model_dir
from tests.components.trainer.helpers import TASKS, png_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(5)
    paths = []
    for i, size in enumerate([(48, 48), (64, 40)]):  # any size: the signature resizes
        path = tmp_path / f"face{i}.png"
        path.write_bytes(png_bytes(rng.integers(0, 256, size=size, dtype=np.uint8)))
        paths.append(str(path))
    return paths


def test_prints_each_tasks_class_and_probability_from_the_model(trained, images, capsys):
    config, fn_args, loaded, _ = trained
    assert main(["--model", fn_args.serving_model_dir, *images]) == 0
    lines = capsys.readouterr().out.splitlines()
    # what the signature gives, named with the config's classes (read back from the model dir)
    out = loaded.signatures["serving_image"](image_bytes=tf.constant([open(p, "rb").read() for p in images]))
    expected = []
    for i, path in enumerate(images):
        expected.append(path)
        for task in TASKS:
            scores = out[task].numpy()[i]
            expected.append(f"  {task}: {config.task(task).classes[scores.argmax()]} {scores.max():.3f}")
    assert lines == expected
    assert os.path.isfile(os.path.join(fn_args.serving_model_dir, METADATA_FILE))


def test_json_output_and_versioned_model_folders(trained, images, tmp_path, capsys):
    _, fn_args, _, _ = trained
    versions = tmp_path / "serving_model"
    versions.mkdir()
    for v in ("7", "12"):  # as the Pusher lays them out; the highest wins
        os.symlink(fn_args.serving_model_dir, versions / v)
    (versions / "notes").mkdir()
    assert resolve_model_dir(str(versions)) == str(versions / "12")
    assert main(["--model", str(versions), "--json", images[0]]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == predict(fn_args.serving_model_dir, images[:1])
    assert list(result[0]["tasks"]) == list(TASKS)
    assert set(result[0]["tasks"]["age"]) == {"class", "probability"}


def test_missing_or_unreadable_images_are_named_and_nothing_is_predicted(trained, images, tmp_path, capsys):
    _, fn_args, _, _ = trained
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    assert main(["--model", fn_args.serving_model_dir, images[0], str(tmp_path / "gone.jpg"), str(text)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "error: cannot predict; bad image file(s):",
        f"  {tmp_path / 'gone.jpg'}: no such file",
        f"  {text}: not a decodable image (PNG, JPEG, GIF or BMP expected)"]
    assert main(["--model", str(tmp_path), images[0]]) == 2
    assert "holds neither saved_model.pb nor numbered versions" in capsys.readouterr().err


def test_multilabel_and_regression_rows():
    attrs = {"name": "attrs", "type": "multilabel", "classes": ["red", "blue", "hat"]}
    assert describe(attrs, [0.9, 0.2, 0.51]) == {"labels": [{"class": "red", "probability": pytest.approx(0.9)},
                                                            {"class": "hat", "probability": pytest.approx(0.51)}]}
    assert describe(attrs, [0.1, 0.2, 0.5]) == {"labels": []}  # 0.5 is not above 0.5
    assert describe({"name": "age", "type": "regression", "classes": []}, [31.5]) == {"value": 31.5}


def test_module_entry_point(trained, images):
    _, fn_args, _, _ = trained
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "serving.predict", "--model", fn_args.serving_model_dir, images[1]],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == images[1] and done.stdout.splitlines()[1].startswith("  smile: ")
