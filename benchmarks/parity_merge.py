"""Merges train_parity runs over disjoint seeds into one figure per (dataset, task).

    python -m benchmarks.parity_merge A.json B.json@4-8 [--figure train_parity_float32]

Every (dataset, seed) of the parity benchmark is deterministic, so seeds 1-3 of one
run and seeds 4-8 of another (`BENCH_PARITY_SEEDS=4-8`) give the figures one 8-seed
run would. Each file is a `python -m benchmarks --output` JSON; its seeds are read
from the figure's detail (`seeds`), or given as FILE@FIRST-LAST for files written
before the detail recorded them. Prints the mean, gap and paired 95 % interval of
each task over the merged seeds, and the worst gap; refuses files whose seeds
overlap or whose precision differs.
"""
from __future__ import annotations

import argparse
import json
import sys
from types import SimpleNamespace

from benchmarks.train_parity import gap, mean_sd, paired_interval, parse_seeds

_NOT_DATASETS = ("precision", "seeds")


def load_run(arg: str, figure: str) -> tuple[tuple[int, ...], dict]:
    """(seeds, detail) of `figure` in the file `arg` (FILE or FILE@FIRST-LAST)."""
    path, _, seeds_text = arg.partition("@")
    with open(path) as f:
        results = json.load(f)
    if figure not in results:
        raise ValueError(f"{path}: no figure {figure!r}; it has {', '.join(sorted(results)) or 'none'}")
    detail = results[figure]["detail"]
    if seeds_text:
        seeds = parse_seeds(seeds_text)
    elif "seeds" in detail:
        seeds = tuple(detail["seeds"])
    else:
        raise ValueError(f"{path}: the detail does not record its seeds; write {path}@FIRST-LAST")
    return seeds, detail


def merge(runs: list[tuple[tuple[int, ...], dict]]) -> dict:
    """{seeds, precision, datasets: {dataset: {task: {type, pipeline, reference, gap, gap_ci95}}}},
    each task's lists ordered by seed."""
    seen: set[int] = set()
    # the dtype policy trained under decides; `auto` that resolved to bfloat16 and an explicit
    # mixed_bfloat16 train alike
    policies = {(d.get("precision") or {}).get("policy") for _, d in runs}
    if len(policies) > 1:
        raise ValueError(f"the runs were trained under different dtype policies: {sorted(map(str, policies))}")
    by_seed: dict = {}
    for seeds, detail in runs:
        overlap = seen & set(seeds)
        if overlap:
            raise ValueError(f"seeds {sorted(overlap)} are in more than one run")
        seen |= set(seeds)
        for dataset, tasks in detail.items():
            if dataset in _NOT_DATASETS:
                continue
            for task, r in tasks.items():
                if len(r["pipeline"]) != len(seeds):
                    raise ValueError(f"{dataset}/{task}: {len(r['pipeline'])} values for seeds {list(seeds)}")
                slot = by_seed.setdefault(dataset, {}).setdefault(task, {"type": r.get("type", "binary")})
                for seed, p, ref in zip(seeds, r["pipeline"], r["reference"]):
                    slot[seed] = (p, ref)
    out = {}
    for dataset, tasks in by_seed.items():
        for task, slot in tasks.items():
            kind = SimpleNamespace(type=slot.pop("type"))
            missing = seen - set(slot)
            if missing:
                raise ValueError(f"{dataset}/{task}: no figures for seeds {sorted(missing)}")
            pipe = [slot[s][0] for s in sorted(slot)]
            ref = [slot[s][1] for s in sorted(slot)]
            out.setdefault(dataset, {})[task] = {
                "type": kind.type, "pipeline": pipe, "reference": ref, "gap": gap(kind, pipe, ref),
                "gap_ci95": list(paired_interval(kind, pipe, ref))}
    return {"seeds": sorted(seen), "precision": runs[0][1].get("precision"), "datasets": out}


def table(merged: dict) -> str:
    rows = ["| dataset | task | pipeline | reference | gap | paired 95 % interval |", "|---|---|---|---|---|---|"]
    for dataset, tasks in merged["datasets"].items():
        for task, r in tasks.items():
            lo, hi = r["gap_ci95"]
            rows.append(f"| {dataset} | {task} | {mean_sd(r['pipeline'])} | {mean_sd(r['reference'])} | "
                        f"{r['gap']:+.3f} | {lo:+.3f} .. {hi:+.3f} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.parity_merge", description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="bench JSON files, FILE or FILE@FIRST-LAST")
    ap.add_argument("--figure", default="train_parity",
                    help="the figure to merge (train_parity_<precision> for a run under another precision)")
    args = ap.parse_args(argv)
    try:
        merged = merge([load_run(a, args.figure) for a in args.runs])
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.figure}: seeds {merged['seeds']}, precision {merged['precision']}")
    print(table(merged))
    gaps = {f"{d}/{t}": r["gap"] for d, tasks in merged["datasets"].items() for t, r in tasks.items()}
    worst = min(gaps, key=gaps.get)
    print(f"worst gap: {worst} {gaps[worst]:+.3f} over {len(merged['seeds'])} seeds (goal >= -0.01)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
