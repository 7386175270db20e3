"""The conversion of a run: convert what is new, assemble the examples, account for it.

DataPrepExampleGen (components/example_gen) and `python -m data_prep` both call `convert_all`.

Sources without spans are converted straight into the artifact, in one Beam
job. Each span of a source with spans is converted once into the span store
(data_prep/spans.py) and linked (copied on filesystems without links) into
the artifact: the run's window of spans into the train split, the newest
span into the eval split. `prep_stats.json` then holds, besides the
per-source counts of what the artifact holds (data_prep.spans.merge_window),
`spans`: per source, the spans found, trained on, evaluated, converted by
this run and reused, and each span's own counts (the drift check's input).
"""
from __future__ import annotations

import json
import os
import posixpath
from typing import Any, Sequence

from config import Config, split_dir, split_name
from data_prep import fileio
from data_prep.spans import SpanStore, check_consistent, merge_window, plan, read_stats
from data_prep.splits import SPLITS

STATS_FILE = "prep_stats.json"
DEAD_LETTER_DIR = "dead_letter"


def _link(src: str, dst: str) -> None:
    """A hard link where both are local (no copy of the bytes), else a copy."""
    if "://" not in src and "://" not in dst:
        try:
            os.link(src, dst)
            return
        except OSError:  # another filesystem, or links refused
            pass
    import tensorflow as tf

    tf.io.gfile.copy(src, dst, overwrite=True)


def _link_split(span_dir: str, span: int, split: str, source: str, examples_uri: str) -> None:
    name = split_name(split, source)
    target = split_dir(examples_uri, name)
    fileio.makedirs(target)
    for path in sorted(fileio.glob(posixpath.join(split_dir(posixpath.join(span_dir, "examples"), name), "*"))):
        _link(path, posixpath.join(target, f"span-{span}-{posixpath.basename(path)}"))


def _link_dead_letters(span_dir: str, span: int, report_uri: str) -> None:
    target = posixpath.join(report_uri, DEAD_LETTER_DIR)
    fileio.makedirs(target)
    for path in sorted(fileio.glob(posixpath.join(span_dir, DEAD_LETTER_DIR, "*.jsonl"))):
        base = posixpath.basename(path)
        _link(path, posixpath.join(target, f"{base.split('-', 1)[0]}-span-{span}-{base.split('-', 1)[-1]}"))


def _totals(sources: dict[str, Any]) -> dict[str, int]:
    total = {k: 0 for k in ("read", "written", "rejected")} | {f"examples_{s}": 0 for s in SPLITS}
    for st in sources.values():
        for k in ("read", "written", "rejected"):
            total[k] += st.get(k, 0)
        for s in SPLITS:
            total[f"examples_{s}"] += st.get("examples", {}).get(s, 0)
    return total


def convert_all(config: Config, examples_uri: str, report_uri: str, store_root: str,
                beam_args: Sequence[str]) -> dict[str, Any]:
    """Fills the Examples artifact at `examples_uri` and writes `<report_uri>/prep_stats.json`
    and `<report_uri>/dead_letter/`; returns the stats. ConfigError (before converting
    anything) on a span pattern that matches nothing, and on spans that disagree
    (data_prep.spans.check_consistent)."""
    plans = plan(config)  # lists every span first: a pattern matching nothing fails before any work
    stats: dict[str, Any] = {"sources": {}, "spans": {}}
    direct = [p.source for p in plans if not p.spanned]
    if direct:
        from data_prep.beam_job import run_conversion  # Beam-heavy

        work = posixpath.join(report_uri, "direct.json")
        direct_stats = run_conversion(config, examples_dir=examples_uri,
                                      dead_letter_dir=posixpath.join(report_uri, DEAD_LETTER_DIR),
                                      stats_path=work, beam_args=beam_args, only=direct)
        fileio.rmtree(work)
        stats["sources"].update(direct_stats["sources"])
        for p in plans:
            if not p.spanned:
                stats["spans"][p.source] = {"pattern": p.pattern, "found": [0], "train": [0], "eval": 0,
                                            "previous": None, "converted": [0], "reused": []}
    store = SpanStore(store_root)
    for i, p in enumerate(plans):
        if not p.spanned:
            continue
        per_span, converted, reused, dirs = {}, [], [], {}
        for span in p.needed:
            dirs[span], was_reused = store.get(config, p.source, span, p.paths[span], beam_args)
            (reused if was_reused else converted).append(span)
            per_span[span] = read_stats(dirs[span])["sources"][p.source]
        check_consistent(f"sources[{i}].path", per_span)
        for span in p.train:
            _link_split(dirs[span], span, "train", p.source, examples_uri)
            _link_dead_letters(dirs[span], span, report_uri)
        _link_split(dirs[p.eval], p.eval, "eval", p.source, examples_uri)
        stats["sources"][p.source] = merge_window(per_span, p.train, p.eval)
        stats["spans"][p.source] = {
            "pattern": p.pattern, "found": sorted(p.paths), "train": list(p.train), "eval": p.eval,
            "previous": p.previous, "converted": converted, "reused": reused,
            "paths": {str(s): p.paths[s] for s in p.needed},
            "per_span": {str(s): per_span[s] for s in p.needed}}
    stats["sources"] = {s.name: stats["sources"][s.name] for s in config.sources}  # config order
    stats["total"] = _totals(stats["sources"])
    fileio.write_bytes(posixpath.join(report_uri, STATS_FILE),
                       (json.dumps(stats, indent=2, sort_keys=True) + "\n").encode())
    return stats
