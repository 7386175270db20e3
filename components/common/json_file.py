"""One JSON document in a component's folder (local or a bucket): the small files one
component writes and another reads (probe_file, warm_start_file, drift_file)."""
from __future__ import annotations

import json
import os
from typing import Any, Mapping


def write_json(folder: str, name: str, doc: Mapping[str, Any]) -> str:
    """Writes `doc` as folder/name (indented, keys sorted); returns the path."""
    import tensorflow as tf

    tf.io.gfile.makedirs(folder)
    path = os.path.join(folder, name)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(doc, indent=1, sort_keys=True))
    return path


def read_json(folder: str | None, name: str) -> Any:
    """folder/name's document, or None when there is no folder or no such file."""
    import tensorflow as tf

    if not folder:
        return None
    path = os.path.join(folder, name)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)
