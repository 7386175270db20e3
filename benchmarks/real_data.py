"""Real images shipped inside Debian packages, written as folder-per-class sources.

The training-parity benchmark (benchmarks/train_parity.py) needs images that
no one here generated. Two Debian packages carry some, under licences that
allow redistribution:

  fashion_mnist   `dataset-fashion-mnist`: Zalando's Fashion-MNIST (28x28
                  grayscale product photos, 10 classes), IDX files under
                  /usr/share/datasets/fashion-mnist/; the 10,000 test images
                  are used.
  opencv_digits   `opencv-doc`: OpenCV's samples/data/digits.png, 5,000
                  handwritten digits (20x20 grayscale, 500 a digit, in one
                  2000x1000 sheet: each digit fills 5 rows of 100 cells).

A package's file is read where it is installed; otherwise the package is
fetched with `apt-get download` (no root needed) into the cache folder and
the one file extracted with `dpkg-deb`. Each dataset becomes two
folder-per-class sources, shaped like the case that showed the pipeline
training worse than a plain loop: one 10-class source (~1,800 training
images) and a disjoint 2-class source of a few hundred, one task each; half
of each source is held out for evaluation.
"""
from __future__ import annotations

import dataclasses
import gzip
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

SUBSET_SEED = 20261130  # which images of a package's set each source holds


@dataclass(frozen=True)
class RealDataset:
    name: str
    package: str
    multiclass_task: str
    classes: tuple[str, ...]
    binary_task: str
    binary_classes: tuple[int, int]  # indices into `classes`
    multiclass_images: int = 3600
    binary_images: int = 1000
    # Half of each source is evaluated: ~1,800 training images for the 10-class task as in the
    # case above, and eval sets large enough that one image moves accuracy by <= 0.5 points.
    eval_fraction: float = 0.5


DATASETS = {
    "fashion_mnist": RealDataset(
        "fashion_mnist", "dataset-fashion-mnist", "garment",
        ("t_shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"),
        "shirt_or_tshirt", (0, 6)),  # 1,000 images each in the 10,000 test images
    "opencv_digits": RealDataset(
        "opencv_digits", "opencv-doc", "digit",
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
        "four_or_nine", (4, 9), multiclass_images=3000, binary_images=400),  # 500 images a digit
}

_FILES = {
    "dataset-fashion-mnist": ("usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                              "usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"),
    "opencv-doc": ("usr/share/doc/opencv-doc/examples/data/digits.png",),
}


class MissingPackageData(RuntimeError):
    pass


def package_file(package: str, member: str, cache_dir: str) -> str:
    """Path of `member` (a path inside the package, no leading /): the installed file,
    else the one extracted from the package into cache_dir (fetched there by apt-get)."""
    installed = "/" + member
    if os.path.isfile(installed):
        return installed
    extracted = os.path.join(cache_dir, "root", member)
    if os.path.isfile(extracted):
        return extracted
    os.makedirs(cache_dir, exist_ok=True)

    def debs() -> list[str]:
        return sorted(f for f in os.listdir(cache_dir) if f.startswith(package + "_") and f.endswith(".deb"))

    if not debs():
        try:
            subprocess.run(["apt-get", "download", package], cwd=cache_dir, check=True,
                           capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as e:
            detail = getattr(e, "stderr", "") or str(e)
            raise MissingPackageData(
                f"{member} is not installed and `apt-get download {package}` failed ({detail.strip()}); "
                f"install it with `apt-get install {package}` or place the .deb in {cache_dir}") from e
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        subprocess.run(["dpkg-deb", "-x", os.path.join(cache_dir, debs()[-1]), tmp], check=True)
        if not os.path.isfile(os.path.join(tmp, member)):
            raise MissingPackageData(f"package {package} holds no {member}")
        os.makedirs(os.path.dirname(extracted), exist_ok=True)
        shutil.move(os.path.join(tmp, member), extracted)
    return extracted


def read_idx(path: str) -> np.ndarray:
    """An IDX file (MNIST's format: magic, dims as big-endian int32, then uint8 data)."""
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_images(dataset: RealDataset, cache_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images [N, H, W], int labels [N]) of a dataset's package."""
    files = [package_file(dataset.package, m, cache_dir) for m in _FILES[dataset.package]]
    if dataset.package == "dataset-fashion-mnist":
        return read_idx(files[0]), read_idx(files[1]).astype(np.int64)
    from PIL import Image

    sheet = np.asarray(Image.open(files[0]).convert("L"))  # 1000 rows x 2000 columns
    cells = sheet.reshape(50, 20, 100, 20).transpose(0, 2, 1, 3).reshape(5000, 20, 20)
    labels = np.repeat(np.arange(10), 500)
    return cells, labels


def write_sources(dataset: RealDataset, out_dir: str, cache_dir: str) -> dict[str, str]:
    """Writes the dataset's two folder-per-class sources under out_dir (once; kept after);
    returns {source name: path}. The binary source holds other images than the multiclass one."""
    paths = {dataset.multiclass_task: os.path.join(out_dir, dataset.multiclass_task),
             dataset.binary_task: os.path.join(out_dir, dataset.binary_task)}
    spec = json.dumps({**dataclasses.asdict(dataset), "subset_seed": SUBSET_SEED}, sort_keys=True)
    spec_path = os.path.join(out_dir, "subset.json")
    if all(os.path.isdir(p) for p in paths.values()) and os.path.isfile(spec_path):
        with open(spec_path) as f:
            if f.read() == spec:
                return paths
    images, labels = load_images(dataset, cache_dir)
    order = np.random.default_rng(SUBSET_SEED).permutation(len(labels))
    multi, rest = order[:dataset.multiclass_images], order[dataset.multiclass_images:]
    a, b = dataset.binary_classes
    binary = [i for i in rest if labels[i] in (a, b)][:dataset.binary_images]
    from PIL import Image

    # Written beside the final folders, then renamed: a rename across filesystems would fail.
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=out_dir)
    for task, picked, names in ((dataset.multiclass_task, multi, dataset.classes),
                                (dataset.binary_task, binary, {a: dataset.classes[a], b: dataset.classes[b]})):
        for i in picked:
            folder = os.path.join(tmp, task, names[int(labels[i])])
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(images[i], "L").save(os.path.join(folder, f"{dataset.name}_{int(i):05d}.png"))
    for task, path in paths.items():
        shutil.rmtree(path, ignore_errors=True)
        os.rename(os.path.join(tmp, task), path)
    shutil.rmtree(tmp, ignore_errors=True)
    with open(spec_path, "w") as f:  # last: a run killed before this rewrites the sources
        f.write(spec)
    return paths


def config_dict(dataset: RealDataset, paths: dict[str, str], steps: int = 600, batch_size: int = 32) -> dict:
    """The run config a new user would write for these sources: 32x32 grayscale, the
    budget given, half of the images evaluated, every other key at its default."""
    a, b = dataset.binary_classes
    return {
        "name": f"parity_{dataset.name}",
        "image": {"size": [32, 32], "channels": 1},
        "tasks": [
            {"name": dataset.multiclass_task, "type": "multiclass", "classes": list(dataset.classes)},
            {"name": dataset.binary_task, "type": "binary",
             "classes": [dataset.classes[a], dataset.classes[b]]},
        ],
        "sources": [
            {"name": task, "format": "folder", "path": path, "tasks": [task]} for task, path in paths.items()
        ],
        "splits": {"eval": dataset.eval_fraction},
        "train": {"steps": steps, "batch_size": batch_size},
    }
