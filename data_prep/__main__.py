"""CLI: `python -m data_prep --config FILE --output-dir DIR [--beam-arg ARG]...`.

Writes DIR/examples, DIR/dead_letter and DIR/prep_stats.json (replacing any
previous output of this command there), after generating missing sample
data. Sources with spans (`{SPAN}`) are converted span by span into
DIR/span_store, kept across calls, so a span is converted once (docs/continuous.md).
Exit status 2, with one line on stderr, for a bad config or source.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="run config YAML (e.g. configs/default.yaml)")
    parser.add_argument("--output-dir", required=True, help="where examples/, dead_letter/, prep_stats.json go")
    parser.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                        help="extra Beam pipeline arg, repeatable (e.g. --beam-arg=--runner=DataflowRunner)")
    parser.add_argument("--no-generate", action="store_true", help="do not generate missing sample data")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from config.errors import OneLineFormatter

    for handler in logging.getLogger().handlers:  # tracebacks go to the error log, not the console
        handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))

    from config import ConfigError, error_line, load, validate
    from data_prep import fileio
    from data_prep.generate import generate_missing
    from data_prep.listing import check_source
    from data_prep.records import SourceError
    from data_prep.spans import list_spans

    try:
        config = load(args.config)
        validate(config)  # format options, face boxes, sample settings, source layouts
        if not args.no_generate:
            generate_missing(config)
        for source in config.sources:  # fail on a bad source before Beam's start-up cost (up to its
            for path in list_spans(source).values():  # first record: the job lists it, as a stream, again)
                check_source(dataclasses.replace(source, path=path), config)
    except ConfigError as e:
        print(error_line(e), file=sys.stderr)
        return 2
    except SourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from data_prep.assemble import convert_all

    out = args.output_dir
    paths = {k: os.path.join(out, k) for k in ("examples", "dead_letter", "prep_stats.json")}
    for p in paths.values():
        fileio.rmtree(p)
    fileio.makedirs(out)
    try:
        stats = convert_all(config, paths["examples"], out, os.path.join(out, "span_store"), args.beam_arg)
    except ConfigError as e:
        print(error_line(e), file=sys.stderr)
        return 2
    except SourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - a full disk, a permission, a vanished path: one line + a log
        from config.errors import failure_line, write_traceback

        log = write_traceback(os.path.join(os.path.abspath(out), "data_prep-error.log"), e)
        print(failure_line(e, "the conversion", os.path.abspath(out), log), file=sys.stderr)
        return 1
    print(f"{'source':<16}{'read':>8}{'written':>9}{'rejected':>10}{'train':>8}{'eval':>8}  rejected by reason")
    for name, st in stats["sources"].items():
        print(f"{name:<16}{st['read']:>8}{st['written']:>9}{st['rejected']:>10}"
              f"{st['examples']['train']:>8}{st['examples']['eval']:>8}  {st['rejected_by_reason']}")
    print(f"wrote {paths['examples']}, {paths['dead_letter']}, {paths['prep_stats.json']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

