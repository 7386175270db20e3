"""CSV manifest layout: `<manifest>` (header + one row per image) and `images/p<person>_<n>.jpg` beside it.

Columns: options.path_column, one per task (options.columns), and
options.group_column (`p<person>`, about 3 images per person) and
options.bbox_column (the drawn face box, `x1 y1 x2 y2`) when set. Cells:
a class name (binary / multiclass), class names joined by options.separator
(multilabel, each class with p = 0.4, at least one), an age 1-80 with one
decimal (regression). With two or more tasks, row i % 10 == 3 leaves task
(i // 10) % #tasks empty (not labelled). The first task is drawn: smile for
2 classes, else forehead lines for the class (or the age group).
With `drawing: apparel` (seed 003) the images are garments instead: the
first task must be multilabel with colour and garment classes
(generators/apparel.py); each row gets one colour and one garment, drawn.
"""
from __future__ import annotations

import csv
import io
import os
import random

from config import Config, SourceConfig
from data_prep import fileio
from data_prep.formats._labels import age_class
from data_prep.formats._options import fail
from data_prep.formats.csv_manifest import option, task_columns
from data_prep.generators.apparel import draw_garment, split_labels
from data_prep.generators.faces import LABEL_NOISE, MAX_WRINKLES, Ambiguity, draw_face, jpeg_bytes, ordinal_cue

_AGE_BINS = [20, 30, 40, 55]


def generate(source: SourceConfig, config: Config, *, count: int, seed: int = 0, size: int = 96,
             drawing: str = "faces", label_noise: float = LABEL_NOISE) -> None:
    rng, ambiguity = random.Random(seed), Ambiguity(seed, label_noise)
    manifest = os.path.join(source.path, option(source, "manifest"))
    columns = task_columns(source)
    apparel_split = None
    if drawing == "apparel":
        first = config.task(source.tasks[0])
        try:
            if first.type != "multilabel":
                raise ValueError(f"task {first.name!r} is {first.type}, not multilabel")
            apparel_split = split_labels(first.classes)
        except ValueError as e:
            fail(source, config, "sample.drawing", f"apparel draws the first task's colour + garment: {e}")
    elif drawing != "faces":
        fail(source, config, "sample.drawing", f"received {drawing!r}; valid: faces, apparel")
    header = [option(source, "path_column"), *columns.values()]
    header += [option(source, k) for k in ("group_column", "bbox_column") if option(source, k) is not None]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=option(source, "delimiter"), lineterminator="\n")
    writer.writerow(header)
    persons = max(1, count // 3)
    for i in range(count):
        cells, cue = {}, dict(smile=rng.random() < 0.5, wrinkles=rng.randint(0, MAX_WRINKLES))
        for k, (task_name, column) in enumerate(columns.items()):
            task = config.task(task_name)
            if task.type == "regression":
                value = round(rng.uniform(1, 80), 1)
                cells[column], level, levels = str(value), age_class(value, _AGE_BINS), len(_AGE_BINS) + 1
            elif task.type == "multilabel":
                on = [c for c in task.classes if rng.random() < 0.4] or [rng.choice(task.classes)]
                cells[column], level, levels = option(source, "separator").join(on), len(on) - 1, task.width
            else:
                c = rng.randrange(task.width)
                cells[column], level, levels = task.classes[c], c, task.width
            if k == 0:
                level = ambiguity.shown(min(level, levels - 1), levels)
                cue = dict(smile=level == 1, wrinkles=cue["wrinkles"]) if levels == 2 else \
                    dict(smile=cue["smile"], wrinkles=ordinal_cue(min(level, levels - 1), levels))
        if len(columns) > 1 and i % 10 == 3:
            cells[list(columns.values())[(i // 10) % len(columns)]] = ""
        if apparel_split is not None:  # one colour and one garment, drawn; replaces the first task's cell
            color, garment = rng.choice(apparel_split[0]), rng.choice(apparel_split[1])
            cells[columns[source.tasks[0]]] = option(source, "separator").join([color, garment])
            colors, garments = apparel_split
            shown_color = colors[ambiguity.shown(colors.index(color), len(colors))]
            img = draw_garment(rng, garments[ambiguity.shown(garments.index(garment), len(garments))],
                               shown_color, size)
            box = (0.0, 0.0, float(size), float(size))
        else:
            img, box = draw_face(rng, long_hair=rng.random() < 0.5, size=size, **cue)
        person = rng.randrange(persons)
        rel = f"images/p{person:03d}_{i:04d}.jpg"
        fileio.write_bytes(os.path.join(os.path.dirname(manifest), rel), jpeg_bytes(img))
        row = [rel, *cells.values()]
        if option(source, "group_column") is not None:
            row.append(f"p{person:03d}")
        if option(source, "bbox_column") is not None:
            row.append(" ".join(f"{v:.1f}" for v in box))
        writer.writerow(row)
    fileio.write_bytes(manifest, out.getvalue().encode())
