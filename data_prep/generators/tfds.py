"""A prepared TFDS dataset, written offline by a small GeneratorBasedBuilder defined here.

`write_dataset` prepares `<data_dir>/<name>/1.0.0/` exactly as `tfds build`
does (dataset_info.json, features.json, TFRecord shards) with features
`image` (tfds.features.Image, JPEG) and `label` (ClassLabel). `generate`
(the `sample:` generator) draws `count` faces, split evenly over
options.splits, whose class is drawn as for the folder format; the class
names are the task's, or the options.class_map keys that map to them.
The builder class is not registered, so reading the dataset back goes
through the format's `tfds.builder(name, data_dir=...)` like any prepared
dataset whose code is not installed.
"""
from __future__ import annotations

import contextlib
import io
import random
import tempfile

import numpy as np

from config import Config, SourceConfig
from data_prep.generators.faces import LABEL_NOISE, MAX_WRINKLES, Ambiguity, draw_face, ordinal_cue


def write_dataset(data_dir: str, name: str, class_names: list[str], splits: dict[str, list[tuple]],
                  num_shards: int | None = None) -> str:
    """Prepares dataset `name` in `data_dir`; splits = {split: [(image, label), ...]} with images
    as HxWx3 uint8 arrays or raw bytes (stored as they are: tests store broken files this way).
    Returns the dataset's version directory."""
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()

    class _Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                "label": tfds.features.ClassLabel(names=class_names)})
            return tfds.core.DatasetInfo(builder=self, supervised_keys=("image", "label"), features=features)

        def _split_generators(self, dl_manager):
            return {split: self._generate_examples(split) for split in splits}

        def _generate_examples(self, split):
            for i, (image, label) in enumerate(splits[split]):
                yield i, {"image": io.BytesIO(image) if isinstance(image, bytes) else image, "label": label}

    _Builder.name = name
    builder = _Builder(data_dir=data_dir)
    # Nothing is downloaded: the temporary download_dir keeps data_dir clean, and TFDS's
    # "Downloading and preparing dataset..." lines on stdout would say otherwise.
    with tempfile.TemporaryDirectory() as downloads, contextlib.redirect_stdout(io.StringIO()):
        builder.download_and_prepare(download_dir=downloads,
                                     download_config=tfds.download.DownloadConfig(num_shards=num_shards))
    return str(builder.data_dir)


def generate(source: SourceConfig, config: Config, *, count: int, seed: int = 0, size: int = 96,
             shards: int | None = None, label_noise: float = LABEL_NOISE) -> None:
    name = source.options["name"]
    if not name.isidentifier():
        raise ValueError(f"the sample generator writes plain dataset names; options.name is {name!r}")
    task = config.task(source.tasks[0])
    inverse = {v: k for k, v in reversed(list((source.options.get("class_map") or {}).items()))}
    class_names = [inverse.get(c, c) for c in task.classes]
    rng, ambiguity = random.Random(seed), Ambiguity(seed, label_noise)
    split_names = source.options.get("splits") or ["train"]
    splits = {s: [] for s in split_names}
    for i in range(count):
        c = rng.randrange(task.width)
        shown = ambiguity.shown(c, task.width)
        cue = dict(smile=shown == 1, wrinkles=rng.randint(0, MAX_WRINKLES)) if task.width == 2 else \
            dict(smile=rng.random() < 0.5, wrinkles=ordinal_cue(shown, task.width))
        img, _ = draw_face(rng, long_hair=rng.random() < 0.5, size=size, **cue)
        splits[split_names[i % len(split_names)]].append((np.asarray(img), c))
    write_dataset(source.path, name, class_names, splits, num_shards=shards)
