"""Spans on disk: which a run uses, and a store that converts each span once.

A source whose `path` holds `{SPAN}` (config/spans.py) is read span by span.
`plan` lists each source's spans and picks the run's window (`sources[i].spans`),
the newest span (whose eval split the run evaluates on) and the one before it
(the drift check's baseline, components/drift).

`SpanStore` keeps every converted (source, span) under one folder, by a key of
the data settings and the span's files (names, sizes, mtimes): a span already
converted with the same settings is reused, not converted again; a span whose
files changed, or a changed data setting, is converted anew. A conversion is
written to a `.partial` sibling and renamed when complete, and a `DONE` file is
written last, so a killed run leaves no span that looks converted:

    <store>/<source>/span-<N>/<key>/examples/Split-<split>_<source>/...   TFRecords
    <store>/<source>/span-<N>/<key>/dead_letter/<source>-*.jsonl
    <store>/<source>/span-<N>/<key>/prep_stats.json
    <store>/<source>/span-<N>/<key>/DONE

A source without `{SPAN}` is one span, number 0, and is converted as before,
straight into the run's artifact (nothing to reuse across runs but the cache's).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import posixpath
import uuid
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from config import Config, SourceConfig, data_view
from config.spans import glob_pattern, has_spans, select, spans_found
from data_prep import fileio

DONE = "DONE"


@dataclass(frozen=True)
class SpanPlan:
    """One source's spans for a run."""

    source: str
    pattern: str                   # the configured path (with `{SPAN}`, or a plain path: span 0)
    paths: Mapping[int, str]       # every span found -> its path
    train: tuple[int, ...]         # the window the run trains on, oldest first
    eval: int                      # the newest span: the run evaluates on its eval split
    previous: int | None           # the span before the newest, if any: drift's baseline

    @property
    def spanned(self) -> bool:
        return has_spans(self.pattern)

    @property
    def needed(self) -> tuple[int, ...]:
        """Every span the run converts or reuses: the window, the newest, drift's baseline."""
        return tuple(sorted({*self.train, self.eval, *(() if self.previous is None else (self.previous,))}))


def list_spans(source: SourceConfig, where: str = "path") -> dict[int, str]:
    """{span: path} of a source ({0: path} without `{SPAN}`); ConfigError if a pattern matches none."""
    if not has_spans(source.path):
        return {0: source.path}
    return spans_found(where, source.path, fileio.glob(glob_pattern(source.path)))


def plan(config: Config) -> list[SpanPlan]:
    plans = []
    for i, source in enumerate(config.sources):
        paths = list_spans(source, f"sources[{i}].path")
        spans = sorted(paths)
        newest = spans[-1]
        plans.append(SpanPlan(source=source.name, pattern=source.path, paths=paths,
                              train=tuple(select(spans, source.spans)), eval=newest,
                              previous=spans[-2] if len(spans) > 1 else None))
    return plans


def span_source(config: Config, source_name: str, path: str) -> Config:
    """The config with one source read from one span's path: what converts that span."""
    return dataclasses.replace(config, sources=tuple(
        dataclasses.replace(s, path=path) if s.name == source_name else s for s in config.sources))


def files_fingerprint(path: str) -> str:
    """Names, sizes and mtimes of every file under `path` (or of the file itself), and each
    unlistable entry's problem: a changed, added or removed file changes it."""
    import tensorflow as tf

    h = hashlib.sha256()
    if not fileio.exists(path):
        return "<missing>"
    if not fileio.isdir(path):
        entries = [(os.path.basename(path), None)]
        root = os.path.dirname(path)
    else:
        entries, root = fileio.walk_entries(path), path
    for rel, problem in entries:
        if problem:
            h.update(f"{rel}\0{problem[0]}\n".encode())
            continue
        try:
            st = tf.io.gfile.stat(os.path.join(root, rel))
            h.update(f"{rel}\0{st.length}\0{st.mtime_nsec}\n".encode())
        except tf.errors.OpError:  # vanished or unreadable: the conversion says why
            h.update(f"{rel}\0<unreadable>\n".encode())
    return h.hexdigest()


def span_key(config: Config, source_name: str, path: str) -> str:
    """What decides a span's conversion: the data settings (data_view, this source on this
    span's path) and the span's files. Sixteen hex digits of their hash."""
    settings = data_view(span_source(config, source_name, path)).to_json()
    h = hashlib.sha256(settings.encode())
    h.update(files_fingerprint(path).encode())
    return h.hexdigest()[:16]


class SpanStore:
    """Converted spans under `root` (a local folder or a URL tf.io.gfile reads)."""

    def __init__(self, root: str):
        self.root = root

    def _dir(self, source: str, span: int, key: str) -> str:
        return posixpath.join(self.root, source, f"span-{span}", key)

    def find(self, source: str, span: int, key: str) -> str | None:
        d = self._dir(source, span, key)
        return d if fileio.exists(posixpath.join(d, DONE)) else None

    def convert(self, config: Config, source: str, span: int, path: str, beam_args: Sequence[str],
                key: str | None = None) -> str:
        """Converts one span into the store; returns its folder."""
        from data_prep.beam_job import run_conversion  # Beam-heavy

        key = key or span_key(config, source, path)
        final = self._dir(source, span, key)
        local = "://" not in final
        work = f"{final}.partial-{uuid.uuid4().hex[:8]}" if local else final
        fileio.rmtree(work)
        run_conversion(span_source(config, source, path), examples_dir=posixpath.join(work, "examples"),
                       dead_letter_dir=posixpath.join(work, "dead_letter"),
                       stats_path=posixpath.join(work, "prep_stats.json"), beam_args=beam_args, only=[source])
        fileio.write_bytes(posixpath.join(work, DONE), json.dumps({"source": source, "span": span,
                                                                   "path": path}).encode())
        if local:
            fileio.rmtree(final)  # a DONE-less leftover of a killed run
            os.replace(work, final)
        return final

    def get(self, config: Config, source: str, span: int, path: str,
            beam_args: Sequence[str]) -> tuple[str, bool]:
        """(the span's folder, whether it was reused)."""
        key = span_key(config, source, path)
        found = self.find(source, span, key)
        if found:
            return found, True
        return self.convert(config, source, span, path, beam_args, key), False


def read_stats(span_dir: str) -> dict[str, Any]:
    return json.loads(fileio.read_text(posixpath.join(span_dir, "prep_stats.json")))


def _add(dst: dict, src: Mapping) -> None:
    """dst += src, key by key, through nested dicts of counts."""
    for k, v in src.items():
        if isinstance(v, Mapping):
            _add(dst.setdefault(k, {}), v)
        else:
            dst[k] = dst.get(k, 0) + v


def merge_window(per_span: Mapping[int, Mapping], train: Sequence[int], eval_span: int) -> dict[str, Any]:
    """One source's stats over a run's spans, as its artifact holds them: records, rejections,
    labels and images of every span trained on; train examples of those spans; eval examples
    of the newest span only (the only eval split the run keeps)."""
    merged: dict[str, Any] = {}
    for span in train:
        _add(merged, {k: v for k, v in per_span[span].items() if k not in ("examples", "examples_by_split_task")})
    by_split = {"train": {}, "eval": {}}
    for span in train:
        _add(by_split["train"], per_span[span].get("examples_by_split_task", {}).get("train", {}))
    _add(by_split["eval"], per_span[eval_span].get("examples_by_split_task", {}).get("eval", {}))
    merged["examples_by_split_task"] = by_split
    merged["examples"] = {split: sum(by_split[split].values()) for split in by_split}
    by_task: dict[str, int] = {}
    for split in by_split:
        _add(by_task, by_split[split])
    merged["examples_by_task"] = by_task
    return merged


def check_consistent(where: str, per_span: Mapping[int, Mapping]) -> None:
    """One source's spans must agree on what they are: the classes each task's labels take,
    and, for a source of fixed-size images (one size in every span), that size. ConfigError
    naming the spans otherwise: a delivery with another class list or another resolution is
    another dataset, not new data of this one. (Shifted shares are drift: components/drift.)"""
    from config import fail

    spans = sorted(per_span)
    if len(spans) < 2:
        return
    tasks = sorted({t for s in spans for t in per_span[s].get("labels_by_task", {})})
    for task in tasks:
        seen = {s: sorted(per_span[s].get("labels_by_task", {}).get(task, {})) for s in spans}
        if len({tuple(v) for v in seen.values()}) > 1:
            fail(where, f"its spans differ in task {task}'s classes: " +
                 "; ".join(f"span {s}: {', '.join(v) or 'none'}" for s, v in seen.items()))
    sizes = {s: sorted(per_span[s].get("image_sizes", {})) for s in spans}
    if all(len(v) == 1 for v in sizes.values()) and len({v[0] for v in sizes.values()}) > 1:
        fail(where, "its spans hold images of different sizes: " +
             "; ".join(f"span {s}: {v[0]}" for s, v in sizes.items()))
