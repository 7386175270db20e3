"""IMDB-WIKI: `<path>/<mat_file>` (wiki.mat or imdb.mat) plus the images it lists.

The .mat holds one struct named after the file stem (`wiki`, `imdb`) whose
fields are 1xN arrays: `dob` (MATLAB datenum of birth), `photo_taken` (year),
`full_path` (cell of paths relative to `<path>`), `gender` (1 male, 0 female,
NaN unknown), `name` (cell), `face_location` (cell of [x1 y1 x2 y2]),
`face_score` (-inf: no face found) and `second_face_score` (NaN: none).

age = photo_taken - year of birth, birth = fromordinal(dob) - 366 days
(MATLAB counts from year 0, Python from year 1; e.g. datenum 719529 ->
fromordinal(719529) = 1971-01-02, minus 366 days = 1970-01-01).
Group id = `name`, so one person's photos never straddle train and eval.
With `prep.face_crop` the image is cropped to `face_location`.
"""
from __future__ import annotations

import datetime
import io
import math
import os
from typing import Any, Iterable, Iterator

from config import Config, SourceConfig
from data_prep import fileio
from data_prep.formats._labels import age_label, gender_index, is_number, validate_age_task, validate_gender_task
from data_prep.formats._options import check_option_keys, fail, require_mapped
from data_prep.records import Parsed, RawRecord, Reject, SourceError

OPTIONS = ("mat_file", "age_task", "gender_task", "age_bins", "age_range", "min_face_score",
           "drop_second_face")
DEFAULTS = {"mat_file": "wiki.mat", "age_range": [0, 100], "min_face_score": None,
            "drop_second_face": False}


def face_boxes(source: SourceConfig) -> bool:
    """Every row has a face_location, so prep.face_crop works."""
    return True
FIELDS = ("dob", "photo_taken", "full_path", "gender", "name", "face_location", "face_score",
          "second_face_score")


def option(source: SourceConfig, key: str) -> Any:
    return source.options.get(key, DEFAULTS.get(key))


def validate_options(source: SourceConfig, config: Config) -> None:
    if "crop_face" in source.options:
        fail(source, config, "options.crop_face", "moved to the source's prep: `prep: {face_crop: true}`")
    check_option_keys(source, config, OPTIONS)
    mat = option(source, "mat_file")
    if not isinstance(mat, str) or not mat.endswith(".mat") or "/" in mat:
        fail(source, config, "options.mat_file", f"expected a file name like wiki.mat or imdb.mat, received {mat!r}")
    age_task = source.options.get("age_task")
    gender_task = source.options.get("gender_task")
    if age_task is None and gender_task is None:
        fail(source, config, "options.age_task",
             "set age_task and/or gender_task to the task(s) this source labels")
    if gender_task is not None:
        validate_gender_task(source, config, gender_task)
    if age_task is not None:
        validate_age_task(source, config, age_task)
    require_mapped(source, config, (age_task, gender_task), "map them with options.age_task / options.gender_task")
    rng = option(source, "age_range")
    if not (isinstance(rng, list) and len(rng) == 2 and all(is_number(v) for v in rng) and rng[0] <= rng[1]):
        fail(source, config, "options.age_range", f"expected [min_age, max_age] (inclusive), received {rng!r}")
    score = option(source, "min_face_score")
    if score is not None and not is_number(score):
        fail(source, config, "options.min_face_score", f"expected a number or null, received {score!r}")
    if not isinstance(option(source, "drop_second_face"), bool):
        fail(source, config, "options.drop_second_face",
             f"expected true or false, received {option(source, 'drop_second_face')!r}")


def layout(source: SourceConfig) -> tuple[str, ...]:
    """What the source's path holds (config.validate checks it before a run)."""
    return (option(source, "mat_file"),)


def _cell_str(cell: Any) -> str:
    """A MATLAB cell entry holding a string: loadmat gives array(['x']) or an empty array."""
    return str(cell[0]) if len(cell) else ""


NUMBER_FIELDS = ("dob", "photo_taken", "gender", "face_score", "second_face_score")


class FaceBoxes:
    """The face_location column: row i -> its numbers as a list of floats; kept as an n x 4 array
    plus the rows that do not hold 4 numbers (prep.face_crop rejects those)."""

    def __init__(self, rows: Iterable[list[float]], n: int):
        import numpy as np

        self._boxes = np.zeros((n, 4))
        self._odd = {}
        for i, row in enumerate(rows):
            if len(row) == 4:
                self._boxes[i] = row
            else:
                self._odd[i] = row

    def __len__(self) -> int:
        return len(self._boxes)

    def __getitem__(self, i: int) -> list[float]:
        return self._odd[i] if i in self._odd else [float(v) for v in self._boxes[i]]


def read_mat(mat_path: str) -> dict[str, Any]:
    """The struct's fields, one entry per row: full_path and name as lists of str, the numbers as
    float64 arrays, face_location as FaceBoxes (row_fields gives a row as plain Python values)."""
    import numpy as np
    import scipy.io

    stem = os.path.splitext(os.path.basename(mat_path))[0]
    try:
        mat = scipy.io.loadmat(io.BytesIO(fileio.read_bytes(mat_path)))
    except Exception as e:
        raise SourceError(f"{mat_path} is not a readable MATLAB file: {type(e).__name__}: {e}") from e
    if stem not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise SourceError(f"{mat_path} has no struct {stem!r} (named after the file); it holds: {keys}")
    meta = mat[stem][0, 0]
    missing = [f for f in FIELDS if f not in meta.dtype.names]
    if missing:
        raise SourceError(f"{mat_path}: struct {stem!r} lacks field(s) {missing}; has {list(meta.dtype.names)}")
    n = meta["full_path"].size

    def numbers(field: str, values) -> list:
        # A field of strings (or cells of them) where numbers belong is the file's fault,
        # not a crash: one line naming the field and what it held.
        try:
            return [float(v) for v in values]
        except (TypeError, ValueError) as e:
            raise SourceError(f"{mat_path}: field {field!r} must hold numbers; received {type(e).__name__}: {e}") from e

    # Compact columns (what iter_records holds while the job lists the rows): numbers as float64
    # arrays (8 bytes a value; a list of floats takes 32), face boxes as one n x 4 array.
    cols = {
        **{f: np.array(numbers(f, np.ravel(meta[f])), dtype=np.float64) for f in NUMBER_FIELDS},
        "full_path": [_cell_str(c) for c in np.ravel(meta["full_path"])],
        "name": [_cell_str(c) for c in np.ravel(meta["name"])],
        "face_location": FaceBoxes((numbers("face_location", np.ravel(c)) for c in np.ravel(meta["face_location"])),
                                   meta["face_location"].size),
    }
    bad = {k: len(v) for k, v in cols.items() if len(v) != n}
    if bad:
        raise SourceError(f"{mat_path}: fields must all have {n} entries (as full_path), received lengths {bad}")
    return cols


def row_fields(cols: dict[str, Any], i: int) -> dict[str, Any]:
    """Row i's fields but full_path, as Python floats / str / a list of floats, in FIELDS order."""
    return {k: float(cols[k][i]) if k in NUMBER_FIELDS else cols[k][i] for k in FIELDS if k != "full_path"}


def iter_records(source: SourceConfig, config: Config) -> Iterator[RawRecord]:
    """One record per row, as a stream: what stays in memory is the .mat's columns (scipy reads
    the file whole), not a RawRecord per row."""
    mat_path = os.path.join(source.path, option(source, "mat_file"))
    if not fileio.exists(mat_path):
        raise SourceError(f"source {source.name!r} (imdb_wiki): {mat_path} does not exist "
                          f"(options.mat_file = {option(source, 'mat_file')!r})")
    cols = read_mat(mat_path)
    for i, rel in enumerate(cols["full_path"]):
        fields = row_fields(cols, i)
        yield RawRecord(raw_id=rel or f"row{i}", path=os.path.join(source.path, rel) if rel else "", fields=fields)


def list_records(source: SourceConfig, config: Config) -> list[RawRecord]:
    return list(iter_records(source, config))


def age_of(dob: float, photo_taken: float) -> int:
    """photo_taken - birth year; raises ValueError for NaN / out-of-calendar datenums."""
    if math.isnan(dob) or math.isnan(photo_taken):
        raise ValueError("dob or photo_taken is NaN")
    birth = datetime.datetime.fromordinal(int(dob)) - datetime.timedelta(days=366)
    return int(photo_taken) - birth.year


def parse_record(record: RawRecord, source: SourceConfig, config: Config) -> Parsed:
    f = record.fields
    if not record.path:
        raise Reject("missing_image", "full_path is empty")
    if f["face_score"] == -math.inf:
        raise Reject("no_face", "face_score is -inf (no face detected)")
    min_score = option(source, "min_face_score")
    if min_score is not None and not f["face_score"] >= min_score:  # `not >=` also rejects NaN
        raise Reject("low_face_score", f"face_score {f['face_score']:.3f} < min_face_score {min_score}")
    if option(source, "drop_second_face") and not math.isnan(f["second_face_score"]):
        raise Reject("second_face", f"second_face_score {f['second_face_score']:.3f} (another face in the photo)")

    labels, missing = {}, {}
    gender_task = source.options.get("gender_task")
    if gender_task is not None:
        g = f["gender"]
        if g in (0.0, 1.0):
            labels[gender_task] = gender_index(config.task(gender_task), male=g == 1.0)
        else:
            missing[gender_task] = "missing_gender"
    age_task = source.options.get("age_task")
    if age_task is not None:
        lo, hi = option(source, "age_range")
        try:
            age = age_of(f["dob"], f["photo_taken"])
        except (ValueError, OverflowError):
            age = None
        if age is None or not lo <= age <= hi:
            missing[age_task] = "bad_age"
        else:
            labels[age_task] = age_label(config.task(age_task), age, source.options.get("age_bins"))
    if not labels:
        reasons = sorted(set(missing.values()))
        detail = f"gender={f['gender']!r}, dob={f['dob']!r}, photo_taken={f['photo_taken']!r}"
        raise Reject(reasons[0] if len(reasons) == 1 else "no_labels", detail)

    crop = None
    if source.prep.face_crop:
        loc = f["face_location"]
        if len(loc) != 4:
            raise Reject("bad_face_location", f"prep.face_crop needs face_location [x1, y1, x2, y2], "
                                              f"received {loc!r}")
        crop = tuple(loc)
    return Parsed(group_id=f["name"] or record.raw_id, labels=labels, missing=missing, crop_box=crop)
