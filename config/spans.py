"""Spans: deliveries of one source's data, numbered, in folders or files named by a pattern.

A source's `path` holds spans when it contains the token `{SPAN}`, which
stands for a number in one path component, as in TFX's ExampleGen input
patterns: `data/faces/span-{SPAN}` matches `data/faces/span-1`,
`data/faces/span-02`, ... (leading zeros allowed; the number is the span).
A path without the token is one span, number 0, as TFX counts a source
without spans.

`sources[i].spans` chooses which of the spans found a run trains on:

    latest    the newest span only (the default)
    all       every span found
    last N    the N newest spans (N >= 1)

Evaluation always uses the newest span's eval split (docs/spans.md). This
module holds the pure rules (pattern, window); listing the spans on a
filesystem is data_prep.spans's, which also reads URLs.
"""
from __future__ import annotations

import re

from config.errors import fail, show

SPAN_TOKEN = "{SPAN}"
WINDOWS = ("latest", "all", "last N")
_LAST = re.compile(r"^last\s+([0-9]+)$")


def has_spans(path: str) -> bool:
    return SPAN_TOKEN in path


def check_pattern(where: str, path: str) -> None:
    """A `path` may hold the token once, inside one path component; ConfigError otherwise."""
    count = path.count(SPAN_TOKEN)
    if count == 0:
        if "{VERSION}" in path or re.search(r"\{SPAN[^}]*\}", path):
            fail(where, f"received {show(path)}: the only pattern token is {SPAN_TOKEN} "
                        "(a span's number); {VERSION} and formatted tokens are not supported")
        return
    if count > 1:
        fail(where, f"received {show(path)}: {SPAN_TOKEN} may appear once")
    if "*" in path or "?" in path or "[" in path:
        fail(where, f"received {show(path)}: a span pattern takes no glob characters besides {SPAN_TOKEN}")


def glob_pattern(path: str) -> str:
    """The glob that lists a pattern's candidates: the token as `*`."""
    return path.replace(SPAN_TOKEN, "*")


def span_of(path: str, candidate: str) -> int | None:
    """The span number a listed candidate stands for, None if the token's place is not all digits."""
    before, after = path.split(SPAN_TOKEN)
    match = re.fullmatch(re.escape(before) + r"([0-9]+)" + re.escape(after), candidate.rstrip("/"))
    return int(match.group(1)) if match else None


def spans_found(where: str, path: str, candidates: list[str]) -> dict[int, str]:
    """{span: its path} of a pattern's listed candidates (those with digits in the token's place);
    ConfigError when two name one span (`span-1` and `span-01`) or none matches."""
    found: dict[int, str] = {}
    for candidate in sorted(candidates):
        span = span_of(path, candidate)
        if span is None:
            continue
        if span in found:
            fail(where, f"span {span} is both {found[span]} and {candidate.rstrip('/')}; rename one")
        found[span] = candidate.rstrip("/")
    if not found:
        fail(where, f"the span pattern {path} matches nothing (looked for {glob_pattern(path)} "
                    f"with a number in place of {SPAN_TOKEN})")
    return found


def parse_window(where: str, raw) -> str:
    """`latest`, `all` or `last N` (N >= 1), normalised (`last 1` stays `last 1`)."""
    if raw is None:
        return "latest"
    if isinstance(raw, str):
        text = " ".join(raw.split())
        if text in ("latest", "all"):
            return text
        m = _LAST.match(text)
        if m and int(m.group(1)) >= 1:
            return f"last {int(m.group(1))}"
    fail(where, f"received {show(raw)}; valid: latest, all, or last N with N >= 1 (e.g. 'last 3')")


def select(available: list[int], window: str) -> list[int]:
    """The spans of `available` a window keeps, oldest first."""
    spans = sorted(set(available))
    if window == "all":
        return spans
    n = 1 if window == "latest" else int(window.split()[1])
    return spans[-n:]
