"""Errors and how every entry point reports them: one line on the console, the traceback in a log.

`ConfigError` is a wrong config value (its message names the key). The rest
turns any exception that ends a run into one `error:` line that says what
happened and what to do (`failure_line`), writes the traceback to a log file
(`write_traceback`) and keeps tracebacks out of console log lines
(`OneLineFormatter`). run_local.py, runners.compare and `python -m
data_prep` all report through here.
"""
from __future__ import annotations

import datetime
import errno as errno_codes
import logging
import os
import re
import shutil
import time


class ConfigError(ValueError):
    """A config value is wrong. The message names the key path:
    `config key '<path>': <what was received and what is valid>`."""


def one_line(text: str) -> str:
    """`text` with its line breaks folded, so an error stays one console line."""
    return " ".join(str(text).split())


def show(value, limit: int = 80) -> str:
    """repr() of a received value, cut to `limit` characters (a 300-character name stays short)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    if text[0] in "'\"":  # a string: keep it quoted
        return text[:limit - 5] + "..." + text[0]
    return text[:limit - 3] + "..."


def fail(key: str, msg: str) -> "NoReturn":  # noqa: F821
    """Raises the ConfigError of one key: `config key '<key>': <msg>` (one line)."""
    raise ConfigError(f"config key '{key}': {one_line(msg)}")


def error_line(exc: BaseException) -> str:
    """The one stderr line an entry point prints for a ConfigError (exit status 2)."""
    return "error: " + one_line(str(exc))


def now_text(t: float | None = None) -> str:
    return datetime.datetime.fromtimestamp(t or time.time()).strftime("%Y-%m-%d %H:%M:%S")


# ----------------------------------------------------------------- failures
# errno -> what the user can do about it; {path} is the file or folder concerned.
ADVICE = {
    errno_codes.ENOSPC: "the disk is full: free space where {path} is ({free} free now) and run the same "
                        "command again",
    errno_codes.EDQUOT: "the disk quota is used up: free space where {path} is and run the same command again",
    errno_codes.EACCES: "permission denied on {path}: make it readable (inputs) or writable (outputs) by this "
                        "user, or use another --output-dir",
    errno_codes.EPERM: "operation not permitted on {path}: check its owner and permissions",
    errno_codes.EROFS: "{path} is on a read-only filesystem: use another --output-dir",
    errno_codes.ENOENT: "{path} does not exist (moved or deleted during the run?): restore it and run the "
                        "same command again",
}
_ERRNO_TEXT = re.compile(r"\[Errno (\d+)\] ([^\[\]\n]*?)(?:: '([^']+)')?(?: \[while running|$|\n)")
_MESSAGES = [  # errors that carry no errno: the text is all there is
    (re.compile(r"database or disk is full|No space left on device", re.I), errno_codes.ENOSPC),
    (re.compile(r"Permission denied", re.I), errno_codes.EACCES),
    (re.compile(r"No such file or directory|NotFoundError", re.I), errno_codes.ENOENT),
]


def _causes(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def classify(exc: BaseException) -> tuple[int | None, str | None, str]:
    """(errno, path, message) of the deepest cause that says what went wrong."""
    chain = _causes(exc)
    for e in reversed(chain):  # the root cause first
        if isinstance(e, OSError) and e.errno in ADVICE:
            return e.errno, e.filename, e.strerror or str(e)
    for e in chain:
        m = _ERRNO_TEXT.search(str(e))
        if m and int(m.group(1)) in ADVICE:
            return int(m.group(1)), m.group(3), m.group(2).strip()
    for e in chain:
        for pattern, code in _MESSAGES:
            if pattern.search(str(e)):
                return code, None, _first_line(e)
    return None, None, _first_line(chain[-1])


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300]}" if text else type(e).__name__


def failure_line(exc: BaseException, component: str | None, output_dir: str, log_path: str) -> str:
    """One line: which component, what happened, what to do, where the traceback is."""
    code, path, message = classify(exc)
    where = component or "the pipeline"
    if code is None:
        return f"error: {where} failed: {message} (full traceback: {log_path})"
    path = path or output_dir
    try:
        free = f"{shutil.disk_usage(_existing(path)).free / 2**20:.0f} MiB"
    except OSError:
        free = "unknown"
    advice = ADVICE[code].format(path=path, free=free)
    return f"error: {where} failed: {message}; {advice} (full traceback: {log_path})"


def _existing(path: str) -> str:
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    return path or "/"


def write_traceback(log_path: str, exc: BaseException) -> str:
    """Appends the traceback to the run's log; returns where it went (a temporary file when the
    log cannot take it: a full disk is the usual reason the run failed)."""
    import tempfile
    import traceback

    text = f"\n--- {now_text()} the run failed:\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__))
    for path in (log_path, os.path.join(tempfile.gettempdir(), os.path.basename(log_path))):
        try:
            with open(path, "a") as f:
                f.write(text)
            return path
        except OSError:
            continue
    return log_path


class OneLineFormatter(logging.Formatter):
    """Log records as one line each: an exception's traceback stays out (it goes to the log file)."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
