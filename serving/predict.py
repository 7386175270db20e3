"""Predict every task for image files with a pushed model.

    python -m serving.predict --model outputs/serving_model IMAGE [IMAGE ...] [--json]

`--model` is a SavedModel directory written by the Trainer, or a folder of
numbered versions (the Pusher's `serving_model/`), whose highest version is
used. Images go through the model's `serving_image` signature (encoded bytes
in, the same preprocessing as training), in batches; that signature decodes
as the conversion does (EXIF orientation, GIF first frame, palette, CMYK,
alpha, 16-bit PNG; see docs/models.md), so PNG, JPEG, GIF and BMP files of
any mode predict. Printed per image and
task: the predicted class and its probability (binary, multiclass), every
label above 0.5 with its probability (multilabel), or the value
(regression). Class names come from the model directory itself
(`assets.extra/multitask.json`, see serving/__init__.py).

Exit status: 0, or 2 when the model or an image cannot be read, is not a
decodable image, or has more pixels than the conversion's limit
(data_prep.image_prep.MAX_PIXELS, read from the header, nothing decoded):
an `error:` line names every bad image, nothing is predicted.
"""
from __future__ import annotations

import argparse
import json
import os
import posixpath
import sys
from typing import Any, Sequence

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from serving import read_metadata

BATCH = 32
MULTILABEL_THRESHOLD = 0.5


class PredictError(Exception):
    """A model or image that cannot be used; the message says which and why."""


def pushed_versions(path: str) -> list[str]:
    """The numbered version folders under `path` (the Pusher's destination) that hold a whole
    SavedModel (saved_model.pb), oldest first; [] when `path` is no folder. Local or object store.

    The one rule for "the model serving now" (the newest of these): `resolve_model_dir` and the
    Evaluator's baseline (components/baseline.py) and `python -m serving.versions` take it from here.
    """
    if "://" in path:
        import tensorflow as tf  # an object store: only TF's filesystems reach it

        isdir, listdir, exists = tf.io.gfile.isdir, tf.io.gfile.listdir, tf.io.gfile.exists
    else:  # no TensorFlow import (seconds, and lines on stderr) to list a local folder
        isdir, listdir, exists = os.path.isdir, os.listdir, os.path.exists
    if not isdir(path):
        return []
    names = [name.rstrip("/") for name in listdir(path)]
    return sorted((v for v in names if v.isdigit() and exists(posixpath.join(path, v, "saved_model.pb"))), key=int)


def resolve_model_dir(path: str) -> str:
    """`path` itself when it holds saved_model.pb, else its highest numbered version."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if not os.path.isdir(path):
        raise PredictError(f"--model {path!r}: no such directory")
    versions = pushed_versions(path)
    if not versions:
        raise PredictError(f"--model {path!r}: holds neither saved_model.pb nor numbered versions with one")
    return os.path.join(path, versions[-1])


def read_images(paths: Sequence[str], channels: int) -> list[bytes]:
    """The files' bytes; every missing, unreadable, undecodable or over-limit file is named in one error.

    Each file goes through the decode the serving_image signature runs (models.preprocess.
    decode_pixels: the conversion's pixels, its pixel limit checked from the header first), so a
    file that passes here decodes there, and one that fails is named instead of failing the batch.
    """
    import tensorflow as tf

    from models.image_decode import MAX_PIXELS, decode_pixels, image_header_size

    images, problems = [], []
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            problems.append(f"{path}: no such file")
            continue
        except OSError as e:
            problems.append(f"{path}: cannot be read ({e.strerror or e})")
            continue
        try:
            height, width = (int(v) for v in image_header_size(tf.constant(data)).numpy())
        except tf.errors.InvalidArgumentError:  # a JPEG header that does not parse
            height = width = 0
        if height * width > MAX_PIXELS:
            problems.append(f"{path}: {width} x {height} = {width * height} pixels, over the pixel limit of "
                            f"{MAX_PIXELS} (the conversion's); not decoded")
            continue
        try:
            decode_pixels(tf.constant(data), channels)
        except (tf.errors.InvalidArgumentError, ValueError):
            problems.append(f"{path}: not a decodable image (PNG, JPEG, GIF or BMP expected)")
            continue
        images.append(data)
    if len(problems) == 1:
        raise PredictError(f"cannot predict; bad image file {problems[0]}")
    if problems:
        raise PredictError("cannot predict; bad image file(s):\n  " + "\n  ".join(problems))
    return images


def describe(task: dict[str, Any], scores: Sequence[float]) -> dict[str, Any]:
    """One task's output row as a readable result."""
    scores = [float(s) for s in scores]
    if task["type"] == "regression":
        return {"value": scores[0]}
    if task["type"] == "multilabel":
        return {"labels": [{"class": c, "probability": s} for c, s in zip(task["classes"], scores)
                           if s > MULTILABEL_THRESHOLD]}
    best = max(range(len(scores)), key=scores.__getitem__)
    return {"class": task["classes"][best], "probability": scores[best]}


def predict(model_dir: str, image_paths: Sequence[str]) -> list[dict[str, Any]]:
    """[{"image": path, "tasks": {task: result}}] for every image, in order."""
    model_dir = resolve_model_dir(model_dir)
    try:
        metadata = read_metadata(model_dir)
    except FileNotFoundError as e:
        raise PredictError(str(e)) from e
    images = read_images(image_paths, int(metadata["image"]["channels"]))
    import tensorflow as tf

    signature = tf.saved_model.load(model_dir).signatures[metadata["signature"]]
    results = []
    for start in range(0, len(images), BATCH):
        try:
            out = signature(image_bytes=tf.constant(images[start:start + BATCH]))
        except tf.errors.InvalidArgumentError as e:  # checked above; a model saved by older code, say
            first = (e.message or str(e)).strip().splitlines()[0]
            raise PredictError(f"the model's {metadata['signature']} signature failed: {first}") from e
        out = {k: v.numpy() for k, v in out.items()}
        for i, path in enumerate(image_paths[start:start + BATCH]):
            results.append({"image": path,
                            "tasks": {t["name"]: describe(t, out[t["name"]][i]) for t in metadata["tasks"]}})
    return results


def format_text(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines.append(r["image"])
        for task, res in r["tasks"].items():
            if "value" in res:
                text = f"{res['value']:.4g}"
            elif "labels" in res:
                text = (", ".join(f"{x['class']} {x['probability']:.3f}" for x in res["labels"])
                        or "(no label above 0.5)")
            else:
                text = f"{res['class']} {res['probability']:.3f}"
            lines.append(f"  {task}: {text}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="SavedModel dir, or a folder of numbered versions")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, GIF, BMP)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    try:
        results = predict(args.model, args.images)
    except PredictError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(results, indent=1) if args.json else format_text(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
