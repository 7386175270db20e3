"""python -m benchmarks.scale [--sizes 5000,20000,80000] [--steps 50] [--work-dir DIR]

The cost curve to real sizes (issue 16; `make bench-scale`, not part of
`make bench` or `make test`). For each size N it writes a config from a preset
with an IMDB-WIKI and a GENKI-4K source (`configs/default.yaml`) whose
`sample:` counts add up to N images (30% GENKI-4K, 70% IMDB-WIKI, at the
preset's image size), generates that data (timed apart: not a component
cost), runs `run_local.py --no-cache` into its own output dir with the same
training steps at every size, and records per component:

- wall time: MLMD's execution start (create time) to end (last update);
- peak RSS: the run_local process and every process it starts, RSS summed
  over the tree, sampled every 0.2 s with psutil; each sample goes to the
  component whose MLMD execution interval holds its time stamp (one
  component runs at a time under LocalDagRunner);
- bytes written: the size of the component's folder under the pipeline root
  once the run ends (what stays), and the tree's `write_bytes` (/proc io)
  over the component's interval (what went to storage, temporary files too).

Then fits, per component, seconds = c * N^k by least squares on log-log over
the sizes, prints seconds per 1,000 images at each size, k, and c * 523,000^k
(IMDB-WIKI's ~523k images), and merges two figures into bench-results.json:
`scale_exponent_max` (largest k but the Trainer's, goal <= 1.1) and
`scale_rss_ratio_max` (largest peak RSS at the largest size over the smallest,
over components, goal <= 1.3). Each size's raw record is kept in
`<work-dir>/size_<N>.json`, so `--reuse` summarises sizes measured earlier.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from typing import Iterable, Sequence

from benchmarks.run_sampler import (
    TreeSampler,
    attribute_deltas,
    attribute_peaks,
    dir_bytes,
    executions,
    value_at_starts,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FULL_SIZE = 523_000  # IMDB (~460k) + WIKI (~62k) images
GENKI_SHARE = 0.3
EXPONENT_GOAL = 1.1
RSS_RATIO_GOAL = 1.3
# Components faster than this at every size are fixed cost: their exponent is
# timing noise (tens of ms), printed but left out of scale_exponent_max.
NOISE_FLOOR_S = 1.0


# ---------------------------------------------------------------- fitting

def fit_power(sizes: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """(k, c) of values ~= c * sizes**k, least squares on log(values) vs log(sizes)."""
    if len(sizes) != len(values) or len(sizes) < 2:
        raise ValueError(f"need >= 2 (size, value) pairs, received {len(sizes)} sizes and {len(values)} values")
    xs = [math.log(s) for s in sizes]
    ys = [math.log(max(v, 1e-9)) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("sizes must not all be equal")
    k = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return k, math.exp(my - k * mx)


def extrapolate(k: float, c: float, size: float) -> float:
    return c * size ** k


# -------------------------------------------------------------- one size

def split_counts(images: int, genki_share: float = GENKI_SHARE) -> dict[str, int]:
    genki = max(1, round(images * genki_share))
    return {"genki4k": genki, "imdb_wiki": images - genki}


def write_config(base_path: str, images: int, data_dir: str, steps: int, path: str) -> str:
    """The preset with its GENKI-4K and IMDB-WIKI sources' `sample:` counts adding up to
    `images`, at absolute paths under data_dir, images at the preset's size, `steps` steps."""
    import yaml

    with open(base_path) as f:
        cfg = yaml.safe_load(f)
    counts = split_counts(images)
    size = int(cfg.get("image", {}).get("size", [48, 48])[0])
    formats = set()
    for i, src in enumerate(cfg["sources"]):
        if src["format"] not in counts:
            raise ValueError(f"{base_path}: source {src['name']!r} has format {src['format']!r}; "
                             f"the scale bench needs only {sorted(counts)}")
        formats.add(src["format"])
        src["path"] = os.path.join(data_dir, src["name"])
        src["sample"] = {"count": counts[src["format"]], "seed": i + 1, "size": size}
    if formats != set(counts):
        raise ValueError(f"{base_path}: needs one source of each of {sorted(counts)}, found {sorted(formats)}")
    cfg.setdefault("train", {})["steps"] = steps
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return cfg["name"]


def _env() -> dict:
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def measure_size(images: int, work_dir: str, base_config: str, steps: int, keep: bool = False,
                 say=print) -> dict:
    size_dir = os.path.join(work_dir, f"n{images}")
    data_dir, out_dir = os.path.join(size_dir, "data"), os.path.join(size_dir, "out")
    config_path = os.path.join(size_dir, "config.yaml")
    shutil.rmtree(out_dir, ignore_errors=True)
    name = write_config(base_config, images, data_dir, steps, config_path)

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sys; from config import load; "
                    "from data_prep.generate import generate_missing; generate_missing(load(sys.argv[1]))",
                    config_path], cwd=ROOT, env=_env(), check=True)
    gen_s = time.perf_counter() - t0
    say(f"  n={images}: generated data in {gen_s:.1f} s ({dir_bytes(data_dir) / 1e6:.1f} MB)")

    log_path = os.path.join(size_dir, "run_local.out")
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "run_local.py", "--config", config_path,
                                 "--output-dir", out_dir, "--no-cache"],
                                cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT)
        with TreeSampler(proc.pid) as sampler:
            rc = proc.wait()
    run_s = time.perf_counter() - t0
    if rc != 0:
        with open(log_path) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"run_local.py failed (rc {rc}) at n={images}; {log_path}:\n{tail}")

    pipeline_root = os.path.join(out_dir, "tfx", name)
    runs = executions(os.path.join(pipeline_root, "metadata.sqlite"), name)
    intervals = [(node, start, end) for node, start, end, _ in runs]
    peaks = attribute_peaks(sampler.rss, intervals)
    io_written = attribute_deltas(sampler.written, intervals)
    cpu = attribute_deltas(sampler.cpu, intervals)
    rss_start = value_at_starts(sampler.rss, intervals)
    with open(os.path.join(out_dir, "last_run.json")) as f:
        pipeline_s = json.load(f).get("pipeline_s")
    components = {}
    for node, start, end, state in runs:
        comp_dir = os.path.join(pipeline_root, node)
        components[node] = {
            "seconds": round((end - start) / 1000, 3),
            "cpu_s": round(cpu.get(node, 0.0), 2),
            "state": state,
            "peak_rss_mb": round(peaks.get(node, 0.0) / 2**20, 1),
            "start_rss_mb": round(rss_start.get(node, 0.0) / 2**20, 1),
            "output_mb": round(dir_bytes(comp_dir) / 1e6, 3) if os.path.isdir(comp_dir) else 0.0,
            "io_write_mb": round(io_written.get(node, 0.0) / 1e6, 3),
        }
    record = {
        "images": images, "counts": split_counts(images), "steps": steps,
        "generate_s": round(gen_s, 1), "run_local_s": round(run_s, 1), "pipeline_s": pipeline_s,
        "peak_rss_mb": round(max((v for _, v in sampler.rss), default=0.0) / 2**20, 1),
        "max_processes": sampler.max_processes, "samples": len(sampler.rss),
        "data_mb": round(dir_bytes(data_dir) / 1e6, 1), "output_mb": round(dir_bytes(out_dir) / 1e6, 1),
        "components": components, "load_avg": os.getloadavg(),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with open(os.path.join(work_dir, f"size_{images}.json"), "w") as f:
        json.dump(record, f, indent=2)
    if not keep:  # the data and the pipeline outputs of 80k images are GBs
        shutil.rmtree(out_dir, ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)
    return record


# -------------------------------------------------------------- summary

def summarize(records: Iterable[dict], full_size: int = FULL_SIZE,
              noise_floor_s: float = NOISE_FLOOR_S) -> dict:
    """Per component: seconds per 1k images at each size, exponent, extrapolated
    seconds at full_size, peak RSS at each size and largest/smallest; and the two figures."""
    recs = sorted(records, key=lambda r: r["images"])
    if len(recs) < 2:
        raise ValueError(f"need >= 2 sizes, received {len(recs)}")
    sizes = [r["images"] for r in recs]
    names = [n for n in recs[0]["components"] if all(n in r["components"] for r in recs)]
    rows = []
    for n in names:
        secs = [r["components"][n]["seconds"] for r in recs]
        rss = [r["components"][n]["peak_rss_mb"] for r in recs]
        k, c = fit_power(sizes, secs)
        cpus = [r["components"][n].get("cpu_s") for r in recs]
        has_cpu = all(v is not None for v in cpus) and max(cpus) > 0
        rows.append({
            "component": n,
            "seconds": secs,
            "s_per_1k": [s / (i / 1000) for s, i in zip(secs, sizes, strict=True)],
            "exponent": k,
            "cpu_s": cpus if has_cpu else None,
            "cpu_exponent": fit_power(sizes, cpus)[0] if has_cpu else None,
            "cpu_at_full_s": extrapolate(*fit_power(sizes, cpus), full_size) if has_cpu else None,
            "at_full_s": extrapolate(k, c, full_size),
            "noise": max(secs) < noise_floor_s,
            "peak_rss_mb": rss,
            "rss_ratio": rss[-1] / rss[0] if rss[0] else float("nan"),
            "output_mb": [r["components"][n]["output_mb"] for r in recs],
            "io_write_mb": [r["components"][n].get("io_write_mb", 0.0) for r in recs],
        })
    scored = [r for r in rows if r["component"] != "Trainer" and not r["noise"]]
    exp_max = max(scored, key=lambda r: r["exponent"]) if scored else None
    rss_max = max(rows, key=lambda r: r["rss_ratio"])
    whole = [r["peak_rss_mb"] for r in recs]
    return {
        "sizes": sizes, "rows": rows,
        "exponent_max": exp_max["exponent"] if exp_max else 0.0,
        "exponent_max_component": exp_max["component"] if exp_max else None,
        "rss_ratio_max": rss_max["rss_ratio"], "rss_ratio_max_component": rss_max["component"],
        "run_rss_ratio": whole[-1] / whole[0],
        "generate_s": [r["generate_s"] for r in recs], "pipeline_s": [r["pipeline_s"] for r in recs],
    }


def _mb(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:.2f}"


def table(summary: dict) -> str:
    sizes = summary["sizes"]
    ks = "/".join(f"{s // 1000}k" for s in sizes)
    lines = [f"| component | s at {ks} | s per 1k images at {ks} | exponent | s at {FULL_SIZE // 1000}k "
             f"| CPU s at {ks} | CPU exponent | CPU s at {FULL_SIZE // 1000}k "
             f"| peak RSS MB at {ks} | RSS largest/smallest | output MB at {ks} |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        k = f"{r['exponent']:.2f}" + (" (fixed, < 1 s)" if r["noise"] else "")
        cpu = " / ".join(f"{v:.1f}" for v in r["cpu_s"]) if r["cpu_s"] else "-"
        cpu_k = f"{r['cpu_exponent']:.2f}" if r["cpu_s"] and not r["noise"] else "-"  # fixed: noise
        cpu_full = f"{r['cpu_at_full_s']:,.0f}" if r["cpu_s"] and not r["noise"] else "-"
        lines.append(
            f"| {r['component']} | {' / '.join(f'{s:.1f}' for s in r['seconds'])} "
            f"| {' / '.join(f'{s:.3f}' for s in r['s_per_1k'])} | {k} | {r['at_full_s']:,.0f} "
            f"| {cpu} | {cpu_k} | {cpu_full} "
            f"| {' / '.join(f'{m:,.0f}' for m in r['peak_rss_mb'])} | {r['rss_ratio']:.2f} "
            f"| {' / '.join(_mb(m) for m in r['output_mb'])} |")
    return "\n".join(lines)


def figures(summary: dict):
    from benchmarks.figures import Figure

    detail = {r["component"]: {"exponent": round(r["exponent"], 3), "rss_ratio": round(r["rss_ratio"], 3),
                               "cpu_exponent": None if r["cpu_exponent"] is None else round(r["cpu_exponent"], 3),
                               "s_per_1k": [round(s, 4) for s in r["s_per_1k"]],
                               "at_523k_s": round(r["at_full_s"], 1), "fixed_cost": r["noise"]}
              for r in summary["rows"]}
    detail["sizes"] = summary["sizes"]
    return [
        Figure("scale_exponent_max", round(summary["exponent_max"], 3), EXPONENT_GOAL, "exponent", "lower",
               detail={"component": summary["exponent_max_component"], "components": detail}),
        Figure("scale_rss_ratio_max", round(summary["rss_ratio_max"], 3), RSS_RATIO_GOAL, "x", "lower",
               detail={"component": summary["rss_ratio_max_component"],
                       "whole_run_rss_ratio": round(summary["run_rss_ratio"], 3)}),
    ]


def merge_figures(path: str, figs) -> dict:
    """Adds/replaces only these figures' keys in the JSON file (the other benchmarks' stay)."""
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    for fig in figs:
        results[fig.name] = fig.as_json()
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5000,20000,80000", help="images per run, comma separated")
    ap.add_argument("--steps", type=int, default=50, help="training steps at every size")
    ap.add_argument("--config", default=os.path.join(ROOT, "configs", "default.yaml"),
                    help="preset with one genki4k and one imdb_wiki source")
    ap.add_argument("--work-dir", default=os.path.join("/tmp", "bench-scale"),
                    help="data, outputs and each size's record (size_<N>.json)")
    ap.add_argument("--output", default="bench-results.json", help="figures merged into this file")
    ap.add_argument("--reuse", action="store_true",
                    help="summarise a size's existing size_<N>.json instead of rerunning it")
    ap.add_argument("--keep", action="store_true", help="keep each size's data and outputs")
    args = ap.parse_args(argv)

    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    os.makedirs(args.work_dir, exist_ok=True)
    records = []
    for n in sizes:
        path = os.path.join(args.work_dir, f"size_{n}.json")
        if args.reuse and os.path.exists(path):
            with open(path) as f:
                rec = json.load(f)
            if rec.get("steps") == args.steps:
                print(f"== n={n}: reusing {path}", flush=True)
                records.append(rec)
                continue
        print(f"== n={n}: generate, then run_local.py ({args.steps} steps)", flush=True)
        rec = measure_size(n, args.work_dir, args.config, args.steps, keep=args.keep,
                           say=lambda s: print(s, flush=True))
        print(f"  n={n}: pipeline {rec['pipeline_s']} s, run_local {rec['run_local_s']} s, "
              f"peak RSS {rec['peak_rss_mb']:,.0f} MB; "
              + ", ".join(f"{k} {v['seconds']:.1f} s" for k, v in rec["components"].items()), flush=True)
        records.append(rec)
    if len(records) < 2:
        print("one size measured: nothing to fit")
        return 0
    summary = summarize(records)
    print(table(summary))
    print(f"data generation (not a component cost): {' / '.join(f'{s:.0f}' for s in summary['generate_s'])} s")
    missed = []
    for fig in figures(summary):
        mark = "ok " if fig.met else "MISS"
        print(f"  [{mark}] {fig.name:24s} {fig.value:8.3f} {fig.unit:8s} goal <= {fig.goal} "
              f"({fig.detail['component']})", flush=True)
        if not fig.met:
            missed.append(fig.name)
    merge_figures(args.output, figures(summary))
    print(f"merged into {args.output}; goals missed: {', '.join(missed) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
