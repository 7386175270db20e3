"""Predict every task for a folder of new, unlabelled images, into one table.

    python -m serving.batch_predict IMAGES_DIR --output predictions.csv [--model outputs/serving_model]

The folder is walked recursively, in sorted order (names compared as strings,
each folder's entries in turn), one folder listing at a time. Files ending in
.jpg, .jpeg, .png, .gif or .bmp (any case) are predicted; files with an image
extension the serving signature cannot decode (.tif, .tiff, .webp, ...) are
dead-lettered; other files (labels.txt, .DS_Store) are counted as ignored.

`--model` is what `serving.predict` takes and resolves the same way
(`serving.predict.resolve_model_dir`): a SavedModel directory, or the Pusher's
folder of numbered versions, of which the one serving now is used. Images go
through the model's `serving_image` signature (encoded bytes in, the one shared
preprocessing function, see components/trainer/signatures.py), BATCH_SIZE
files a call.

Output (`--output`; `.parquet` writes Parquet, anything else CSV): one row per
predicted image, in listing order, columns (task names and class names from
the model directory's assets.extra/multitask.json):

  path                         the file's path relative to IMAGES_DIR, '/'-separated
  <task>                       binary / multiclass: the most probable class
  <task>_probability           ... and its probability
  <task>                       multilabel: the classes over 0.5, ';'-separated ('' for none)
  <task>_probability_<class>   ... and every class's probability
  <task>                       regression: the value

Every file that could not be predicted is a row of `<output>.dead_letter.csv`
(path, reason, detail; written on every run, header only when none), reason
one of: unreadable, unreadable_folder, empty, not_an_image,
unsupported_format, undecodable, too_many_pixels.

Both files are written under temporary names next to the output and renamed
when the run ends, the output last, so a killed run never leaves a file at
`--output` that looks complete. The last line printed counts what happened.

Exit status: 0 every image predicted; 1 the output is complete but some files
were dead-lettered (so a script that runs it notices them); 2 nothing written:
the folder does not exist or holds no image files, the model directory holds
no model of this project, or the output cannot be written (one `error:` line).
"""
from __future__ import annotations

import argparse
import collections
import csv
import os
import re
import signal
import sys
import tempfile
from typing import Any, Iterator, Sequence

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from serving import read_metadata
from serving.image_files import IMAGE_EXTENSIONS, read_image, walk
from serving.predict import MULTILABEL_THRESHOLD, PredictError, describe, resolve_model_dir

BATCH_SIZE = 64
MAX_PENDING = 4  # batches' worth of files held before the next signature call, dead-lettered ones included
DEAD_LETTER_SUFFIX = ".dead_letter.csv"
DEAD_LETTER_COLUMNS = ("path", "reason", "detail")
MULTILABEL_SEPARATOR = ";"


class BatchError(Exception):
    """Nothing can be predicted; the message says why, in one line."""


# --- the model ---------------------------------------------------------------------------------

class Model:
    """The resolved model's serving signature and task metadata."""

    def __init__(self, model: str):
        import tensorflow as tf

        try:
            self.dir = resolve_model_dir(model)
            metadata = read_metadata(self.dir)
        except (PredictError, FileNotFoundError) as e:
            raise BatchError(str(e)) from e
        self.tasks: list[dict[str, Any]] = metadata["tasks"]
        self.signature_name = metadata["signature"]
        try:
            self._loaded = tf.saved_model.load(self.dir)  # kept: the signature uses its variables
        except (OSError, ValueError, tf.errors.OpError) as e:
            raise BatchError(f"--model {self.dir}: cannot be loaded as a SavedModel ({_first_line(e)})") from e
        if self.signature_name not in self._loaded.signatures:
            raise BatchError(f"--model {self.dir}: no {self.signature_name!r} signature "
                             f"(it has {', '.join(sorted(self._loaded.signatures)) or 'none'})")
        self.signature = self._loaded.signatures[self.signature_name]

    def _call(self, images: list[bytes]) -> dict[str, Any]:
        import tensorflow as tf

        out = self.signature(image_bytes=tf.constant(images))
        return {t["name"]: out[t["name"]].numpy() for t in self.tasks}

    def predict(self, batch: list[tuple[str, bytes]]) -> tuple[list[str], dict[str, Any], list[tuple[str, str, str]]]:
        """(paths predicted, {task: scores [n, width]}, dead letters) for one batch.

        The batch goes through the signature in one call. A file it cannot decode fails the whole
        call, so then each file is tried alone to find which, and the others go through again
        together: a row's scores are always those of one call over exactly the predicted files."""
        import tensorflow as tf

        from models.image_decode import PIXEL_LIMIT_MESSAGE

        try:
            return [p for p, _ in batch], self._call([d for _, d in batch]), []
        except tf.errors.InvalidArgumentError as e:
            batch_error = e
        good, dead = [], []
        for path, data in batch:
            try:
                self._call([data])
            except tf.errors.InvalidArgumentError as e:
                message = _first_line(e)
                reason = "too_many_pixels" if PIXEL_LIMIT_MESSAGE in message else "undecodable"
                dead.append((path, reason, f"the {self.signature_name} signature refused it: {message}"))
            else:
                good.append((path, data))
        if not dead:  # not an image's fault: a model that cannot run at all, say
            raise BatchError(f"the model's {self.signature_name} signature failed: {_first_line(batch_error)}")
        if not good:
            return [], {}, dead
        return [p for p, _ in good], self._call([d for _, d in good]), dead


def _first_line(e: Exception) -> str:
    """The line of a TensorFlow error that says what failed: its last that is not the
    "Graph execution error" frame around it (node names, stack traces)."""
    text = getattr(e, "message", None) or str(e)
    frame = ("Graph execution error", "Detected at node", "<stack traces", "\t", "  File ")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(frame)]
    if not lines:
        return text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return re.sub(r"\s*\[Op:[^\]]*\]$", "", lines[-1].strip())


# --- the table ---------------------------------------------------------------------------------

def columns(tasks: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(column name, "string" | "float") for the output, in order."""
    out = [("path", "string")]
    for t in tasks:
        name = t["name"]
        if t["type"] == "regression":
            out.append((name, "float"))
        elif t["type"] == "multilabel":
            out.append((name, "string"))
            out.extend((f"{name}_probability_{c}", "float") for c in t["classes"])
        else:
            out.extend([(name, "string"), (f"{name}_probability", "float")])
    return out


def row(path: str, tasks: Sequence[dict[str, Any]], scores: dict[str, Any], i: int) -> list[Any]:
    """One image's values in `columns` order (probabilities as the model's float32, widened exactly)."""
    values: list[Any] = [path]
    for t in tasks:
        s = [float(v) for v in scores[t["name"]][i]]
        if t["type"] == "regression":
            values.append(s[0])
        elif t["type"] == "multilabel":
            values.append(MULTILABEL_SEPARATOR.join(c for c, p in zip(t["classes"], s) if p > MULTILABEL_THRESHOLD))
            values.extend(s)
        else:
            best = describe(t, s)
            values.extend([best["class"], best["probability"]])
    return values


class CsvTable:
    def __init__(self, path: str, header: Sequence[str]):
        self._f = open(path, "w", newline="", encoding="utf-8")
        self._w = csv.writer(self._f)
        self._w.writerow(header)

    def write(self, rows: list[list[Any]]) -> None:
        self._w.writerows(rows)
        self._f.flush()  # rows as they come: progress shows, memory does not grow

    def close(self) -> None:
        self._f.close()


class ParquetTable:
    """Rows buffered to row groups of ROW_GROUP rows (a row group per batch would make files
    slow to read), so memory holds at most one row group."""

    ROW_GROUP = 8192

    def __init__(self, path: str, cols: Sequence[tuple[str, str]]):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._schema = pa.schema([(name, pa.string() if kind == "string" else pa.float32()) for name, kind in cols])
        self._writer = pq.ParquetWriter(path, self._schema)
        self._rows: list[list[Any]] = []

    def write(self, rows: list[list[Any]]) -> None:
        self._rows.extend(rows)
        if len(self._rows) >= self.ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            arrays = [self._pa.array([r[i] for r in self._rows], type=f.type) for i, f in enumerate(self._schema)]
            self._writer.write_table(self._pa.Table.from_arrays(arrays, schema=self._schema))
            self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()


def _temp_next_to(path: str) -> str:
    """A new empty file in `path`'s folder (so the final rename is atomic), readable as a plain
    new file would be (mkstemp's are owner-only)."""
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".partial",
                               dir=os.path.dirname(path) or ".")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp


# --- the run -----------------------------------------------------------------------------------

def dead_letter_path(output: str) -> str:
    return output + DEAD_LETTER_SUFFIX


def _check_output(output: str) -> None:
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise BatchError(f"--output {output}: the folder {folder} does not exist")
    if os.path.isdir(output):
        raise BatchError(f"--output {output}: is a folder; name a file (.csv or .parquet)")


def _listing(images_dir: str) -> Iterator[tuple[str, str, str]]:
    """walk(images_dir), refusing a folder that is missing or holds no image file before anything
    is loaded or written; entries before the first image file are held until then (other files
    are only counted later, so this holds at most the unreadable folders met on the way)."""
    if not os.path.isdir(images_dir):
        raise BatchError(f"{images_dir}: no such folder")
    try:
        os.scandir(images_dir).close()
    except OSError as e:
        raise BatchError(f"{images_dir}: cannot list the folder ({e.strerror or e})") from e
    entries = walk(images_dir)
    held, others = [], 0
    for kind, rel, detail in entries:
        if kind in ("image", "unsupported"):
            held.append((kind, rel, detail))
            break
        if kind == "other":
            others += 1
        else:
            held.append((kind, rel, detail))
    else:
        raise BatchError(f"{images_dir} holds no image files ({', '.join(IMAGE_EXTENSIONS)}) in any folder"
                         + (f"; {others} other file(s)" if others else ""))

    def stream():
        yield from (("other", "", "") for _ in range(others))
        yield from held
        yield from entries

    return stream()


def batch_predict(images_dir: str, output: str, model: str = "outputs/serving_model",
                  batch_size: int = BATCH_SIZE) -> dict[str, Any]:
    """Writes `output` and its dead letter; returns {predicted, dead_lettered: {reason: n}, ignored,
    model_dir}. BatchError (nothing written) for a bad folder, model or output path."""
    _check_output(output)
    listing = _listing(images_dir)
    net = Model(model)
    cols = columns(net.tasks)
    dead_path = dead_letter_path(output)
    tmp_out, tmp_dead = _temp_next_to(output), _temp_next_to(dead_path)
    counts: dict[str, Any] = {"predicted": 0, "dead_lettered": collections.Counter(), "ignored": 0,
                              "model_dir": net.dir}
    try:
        table = (ParquetTable(tmp_out, cols) if output.lower().endswith(".parquet")
                 else CsvTable(tmp_out, [c for c, _ in cols]))
        with open(tmp_dead, "w", newline="", encoding="utf-8") as dead_file:
            dead = csv.writer(dead_file)
            dead.writerow(DEAD_LETTER_COLUMNS)

            def dead_letter(rows):
                dead.writerows(rows)
                dead_file.flush()
                counts["dead_lettered"].update(reason for _, reason, _ in rows)

            def run(pending):
                """Predicts the pending images; the batch's dead letters in listing order, read
                failures and the signature's refusals interleaved as their files are."""
                batch = [(rel, data) for rel, data, _, _ in pending if data is not None]
                paths, scores, refused = net.predict(batch) if batch else ([], {}, [])
                table.write([row(p, net.tasks, scores, i) for i, p in enumerate(paths)])
                counts["predicted"] += len(paths)
                refused_why = {rel: (reason, why) for rel, reason, why in refused}
                dead_letter([(rel, *refused_why[rel]) if data is not None else (rel, reason, why)
                             for rel, data, reason, why in pending if data is None or rel in refused_why])

            # Dead letters wait with the batch they fall in (at most MAX_PENDING of them), so the
            # dead letter is in listing order like the output.
            pending: list[tuple[str, bytes | None, str, str]] = []
            n_images = 0
            for kind, rel, detail in listing:
                if kind == "other":
                    counts["ignored"] += 1
                    continue
                if kind == "linked_folder":
                    pending.append((rel, None, kind, "a link to a folder, not followed; predict its target "
                                                     "folder instead"))
                elif kind == "unreadable_folder":
                    pending.append((rel, None, kind, detail))
                else:
                    data, reason, why = read_image(images_dir, kind, rel)
                    pending.append((rel, data, reason, why))
                    n_images += data is not None
                if n_images >= batch_size or len(pending) >= MAX_PENDING * batch_size:
                    run(pending)
                    pending, n_images = [], 0
            if pending:
                run(pending)
        table.close()
        # The output last: its presence says the run finished (the dead letter's alone does not).
        os.replace(tmp_dead, dead_path)
        os.replace(tmp_out, output)
    finally:
        for tmp in (tmp_out, tmp_dead):
            if os.path.exists(tmp):
                os.remove(tmp)
    return counts


def summary(counts: dict[str, Any], output: str) -> str:
    dead = counts["dead_lettered"]
    n_dead = sum(dead.values())
    reasons = f" ({', '.join(f'{k} {v}' for k, v in sorted(dead.items()))})" if n_dead else ""
    return (f"{counts['predicted']} images predicted, {n_dead} dead-lettered{reasons}, "
            f"{counts['ignored']} other files ignored; model {counts['model_dir']}; "
            f"wrote {output} and {dead_letter_path(output)}")


def _terminate(signum, frame):
    # SIGTERM (kill, a scheduler's timeout) as an exception, so the temporary files are removed.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.batch_predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", metavar="IMAGES_DIR", help="folder of images, walked recursively")
    parser.add_argument("--output", required=True, help="the table to write: .csv, or .parquet")
    parser.add_argument("--model", default="outputs/serving_model",
                        help="SavedModel dir, or a folder of numbered versions (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="images a signature call")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        counts = batch_predict(args.images, args.output, args.model, args.batch_size)
    except BatchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(summary(counts, args.output))
    return 1 if counts["dead_lettered"] else 0


if __name__ == "__main__":
    sys.exit(main())
