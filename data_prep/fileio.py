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
    """Sorted paths of the files under `root` that can be read, relative to it, with '/' separators
    (what walk_entries lists without a problem)."""
    return [rel for rel, problem in walk_entries(root) if problem is None]


def walk_entries(root: str) -> list[tuple[str, tuple[str, str] | None]]:
    """Sorted (relative path, problem) of every file under `root`, problem None or (reason, detail).

    Local trees: the real folders under `root` are walked, and every
    symbolic link found there (to a file or a folder) is listed once, as
    `path_escapes_root` when its target lies outside `root`, as
    `duplicate_path` when its target is a file or folder inside `root` (whose
    images the walk lists under their own path), as `missing_image` when its
    target does not exist. A link is never walked into, so a loop cannot hang
    or crash the listing, no image is listed twice (once under a link and
    once under its real path, possibly in two classes or two splits), and
    nothing under `root` is skipped without a record saying why.
    """
    if not _is_local(root):
        out = []
        for dirpath, _, files in _gfile().walk(root):
            rel = dirpath[len(root):].strip("/")
            out.extend((f"{rel}/{f}" if rel else f, None) for f in files)
        return sorted(out)
    real_root = os.path.realpath(root)
    out, links, stack = [], [], [(root, "")]
    # Local trees skip GFile too: its walk costs ~30 us a file (0.4 s for 12,000 images);
    # scandir's entries know whether they are links and folders without another system call.
    while stack:
        path, rel_dir = stack.pop()
        try:
            it = os.scandir(path)
        except OSError as e:  # an unreadable folder: its files cannot be listed, say so
            out.append((rel_dir or ".", ("unreadable_image", f"cannot list the folder {rel_dir or '.'}: "
                                                             f"{e.strerror or e}")))
            continue
        with it:
            for e in it:
                rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
                if e.is_symlink():
                    links.append((rel, e.path))
                elif e.is_dir(follow_symlinks=False):
                    stack.append((e.path, rel))
                else:
                    out.append((rel, None))
    for rel, path in links:
        real = os.path.realpath(path)
        if not os.path.exists(real):
            problem = ("missing_image", f"{rel} links to {real}, which does not exist")
        elif not inside(real, real_root):
            problem = ("path_escapes_root", f"{rel} links to {real}, outside {real_root}")
        else:
            kind = "folder" if os.path.isdir(real) else "file"
            problem = ("duplicate_path", f"{rel} links to the {kind} {os.path.relpath(real, real_root)}, "
                                         "listed under its own path")
        out.append((rel, problem))
    return sorted(out)


def inside(path: str, root: str) -> bool:
    """Whether `path` is `root` or below it (both absolute and normalised)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def confined(path: str, root: str) -> bool:
    """Whether the file `path` names lies inside `root` once every symbolic link is resolved
    (lexically for remote filesystems, which have none)."""
    if not _is_local(root):
        return inside(os.path.normpath(path), os.path.normpath(root))
    return inside(os.path.realpath(path), os.path.realpath(root))


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

