"""Helpers shared by the data_prep tests (a uniquely named module, like dp_config)."""
from __future__ import annotations

import glob

from data_prep.records import Reject


def outcome(module, record, source, config):
    """(group id, labels, missing, crop box) of a parsed record, or its reject reason."""
    try:
        p = module.parse_record(record, source, config)
        return (p.group_id, dict(p.labels), dict(p.missing), p.crop_box)
    except Reject as r:
        return r.reason


def read_examples(pattern: str) -> list:
    import tensorflow as tf

    files = sorted(glob.glob(pattern))
    assert files, pattern
    return [tf.train.Example.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def feature(ex, key):
    f = ex.features.feature[key]
    return list(getattr(f, f.WhichOneof("kind")).value)


def dead_letters(out: str, source: str) -> list[dict]:
    import json

    return [json.loads(line) for p in sorted(glob.glob(f"{out}/dead_letter/{source}-*.jsonl")) for line in open(p)]
