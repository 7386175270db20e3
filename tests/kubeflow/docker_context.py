"""What `docker build .` would send and copy, worked out without a Docker daemon.

A small model of .dockerignore: a path is left out when a pattern matches it
or one of its parent folders (`*` and `?` as in fnmatch, a leading `**/`
also matches at the top level, `!pattern` re-includes). Enough for the plain
patterns this repo uses; not a full implementation of Docker's rules.
"""
from __future__ import annotations

import fnmatch
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ignore_patterns(root: str = ROOT) -> list[str]:
    with open(os.path.join(root, ".dockerignore")) as f:
        lines = [line.strip() for line in f]
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def _matches(path: str, pattern: str) -> bool:
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]  # the path and its parents
    pats = [pattern.lstrip("/")]
    if pattern.startswith("**/"):
        pats.append(pattern[3:])
    return any(fnmatch.fnmatchcase(c, p) for c in candidates for p in pats)


def is_ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:  # later patterns win, as in Docker
        if pattern.startswith("!"):
            if _matches(path, pattern[1:]):
                ignored = False
        elif _matches(path, pattern):
            ignored = True
    return ignored


def context_files(root: str = ROOT) -> set[str]:
    """Repo-relative paths of the files the build context holds."""
    patterns = ignore_patterns(root)
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not is_ignored(rel_dir + d, patterns)]
        out.update(rel_dir + f for f in filenames if not is_ignored(rel_dir + f, patterns))
    return out


def module_file(dotted: str) -> str:
    """`components.trainer.run_fn.run_fn` -> the repo file that defines it (module or package)."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        base = "/".join(parts[:n])
        for cand in (base + ".py", base + "/__init__.py"):
            if os.path.isfile(os.path.join(ROOT, cand)):
                return cand
    raise AssertionError(f"{dotted!r} names no module in the repo")
