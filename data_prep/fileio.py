"""File access through tf.io.gfile (local paths, gs://, s3://), imported lazily.

Importing TensorFlow costs seconds; config checks and the CLI's error paths
must not pay it, so every helper imports it on first use.
"""
from __future__ import annotations

import os


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def _is_local(path: str) -> bool:
    return "://" not in path


# Existence checks on local paths skip TensorFlow, so a CLI run with a missing
# source fails in a second, with nothing but its own error on stderr.
def exists(path: str) -> bool:
    return os.path.exists(path) if _is_local(path) else _gfile().exists(path)


def isdir(path: str) -> bool:
    return os.path.isdir(path) if _is_local(path) else _gfile().isdir(path)


def listdir(path: str) -> list[str]:
    """Sorted entry names (directory names without the trailing '/' some filesystems add)."""
    return sorted(name.rstrip("/") for name in _gfile().listdir(path))


def walk_files(root: str) -> list[str]:
    """Sorted paths of all files under `root`, relative to it, with '/' separators."""
    out = []
    # Local trees skip GFile too: its walk costs ~30 us a file (0.4 s for 12,000 images).
    for dirpath, _, files in (os.walk(root) if _is_local(root) else _gfile().walk(root)):
        rel = dirpath[len(root):].strip("/")
        out.extend(f"{rel}/{f}" if rel else f for f in files)
    return sorted(out)


def read_bytes(path: str) -> bytes:
    # Local files skip GFile: its per-call checks cost ~0.15 ms, 7% of an image's whole prep.
    with (open(path, "rb") if _is_local(path) else _gfile().GFile(path, "rb")) as f:
        return f.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def write_bytes(path: str, data: bytes) -> None:
    if os.path.dirname(path):
        _gfile().makedirs(os.path.dirname(path))
    with _gfile().GFile(path, "wb") as f:
        f.write(data)


def makedirs(path: str) -> None:
    _gfile().makedirs(path)


def glob(pattern: str) -> list[str]:
    return sorted(_gfile().glob(pattern))


def rmtree(path: str) -> None:
    if _gfile().exists(path):
        if _gfile().isdir(path):
            _gfile().rmtree(path)
        else:
            _gfile().remove(path)

