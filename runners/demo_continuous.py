"""The continuous demo: two deliveries, drift reported, a warm start, a rollback.

    python -m runners.demo_continuous --output-dir DIR       (make demo-continuous OUTPUT=DIR)
    python -m runners.demo_continuous --output-dir DIR --runner kfp-local   (from the compiled Kubeflow spec)

1. Writes span 1 of the sample data (configs/continuous.yaml's sources) under
   DIR/data and runs the pipeline (run_local.py) into DIR: version 1 serves.
2. Writes span 2: the same generators with other seeds, and genki4k's smile
   share moved from 0.54 to SHIFTED_SMILE_SHARE. Runs again: the run trains on
   both spans, reports the drift of smile's label distribution (the demo's
   config sets the drift gate to warn, so the run goes on), warm-starts from
   version 1 and is evaluated against it.
3. Rolls back to version 1 (serving.versions --rollback) and shows that
   serving.predict now loads version 1's model.

`--runner kfp-local` runs each pipeline run from the compiled Kubeflow spec,
task by task through TFX's Kubeflow v2 entrypoint (runners/kfp_local.py,
`--runtime process`: this checkout's Python instead of the image), the same
steps otherwise.

Prints a summary and checks it: exit 0 when every step did what it says, 1
(with the step that did not) otherwise; 2 on a bad argument. `--quick`
shrinks the data and the training for tests, and sets thresholds any model
passes (60 steps make no model worth a threshold). docs/continuous.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from data_prep.demo_spans import CONFIG, QUICK, SHIFTED_SMILE_SHARE, write_config, write_span  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(argv: list[str]) -> int:
    print("demo: $ " + " ".join(argv), flush=True)
    return subprocess.call([sys.executable, *argv], cwd=ROOT)


def pipeline_argv(runner: str, config_path: str, out: str, span: int) -> list[str]:
    if runner == "kfp-local":
        return ["-m", "runners.kfp_local", "--runtime", "process", "--config", config_path, "--output-dir", out,
                "--run-id", f"span-{span}"]
    return ["run_local.py", "--config", config_path, "--output-dir", out]


def _report(out: str) -> dict:
    with open(os.path.join(out, "report", "report.json")) as f:
        return json.load(f)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Two spans, drift, warm start and rollback, end to end.")
    ap.add_argument("--output-dir", required=True, help="where the demo writes its data and runs")
    ap.add_argument("--quick", action="store_true", help="tiny data and training (tests)")
    ap.add_argument("--runner", choices=("local", "kfp-local"), default="local",
                    help="run_local.py (LocalDagRunner), or the compiled Kubeflow spec through runners.kfp_local")
    args = ap.parse_args(argv)
    out = os.path.abspath(args.output_dir)
    if os.path.exists(os.path.join(out, "serving_model")):
        print(f"error: {out} holds an earlier demo (serving_model/); use an empty --output-dir", file=sys.stderr)
        return 2
    os.makedirs(out, exist_ok=True)

    from config import load

    config_path = write_config(out, args.quick)
    config = load(config_path)
    problems: list[str] = []

    write_span(config, 1)
    if _run(pipeline_argv(args.runner, config_path, out, 1)) != 0:
        print("error: the first run failed", file=sys.stderr)
        return 1
    first = _report(out)
    write_span(config, 2)
    if _run(pipeline_argv(args.runner, config_path, out, 2)) != 0:
        print("error: the second run failed", file=sys.stderr)
        return 1
    second = _report(out)

    from serving.predict import pushed_versions

    serving_dir = os.path.join(out, "serving_model")
    versions = pushed_versions(serving_dir)
    print(f"\ndemo: first run spans {first.get('spans')}, blessed {first.get('blessed')}")
    print(f"demo: second run spans {second.get('spans')}, blessed {second.get('blessed')}, "
          f"warm started from {second.get('warm_started_from')}")
    drifted = {k: v for k, v in (second.get("drift") or {}).items() if not v.get("passed")}
    for name, f in sorted((second.get("drift") or {}).items()):
        print(f"demo: drift {name}: {f['distance']:.3f} (threshold {f['threshold']:.3f}) "
              f"{'passed' if f['passed'] else 'DRIFTED'}")
    if "label/smile" not in drifted:
        problems.append("the second run did not report smile's label distribution as drifted")
    if second.get("spans", {}).get("genki4k") != [1, 2]:
        problems.append(f"the second run did not train on spans 1 and 2: {second.get('spans')}")
    if not second.get("warm_started_from"):
        problems.append("the second run did not warm-start")
    print(f"demo: versions serving_model/: {versions}")
    if first.get("blessed") and second.get("blessed"):
        if len(versions) != 2:
            problems.append(f"expected two pushed versions, found {versions}")
        else:
            problems += _rollback(out, serving_dir, versions[0])
    elif not args.quick:
        problems.append(f"a run was not blessed (first {first.get('blessed')}, second {second.get('blessed')}: "
                        f"{second.get('not_blessed_reason') or first.get('not_blessed_reason')}); nothing to roll back")
    for p in problems:
        print(f"demo: FAILED: {p}", file=sys.stderr)
    print(f"demo: {'done' if not problems else 'failed'}; report: {os.path.join(out, 'report', 'index.html')}")
    return 1 if problems else 0


def _rollback(out: str, serving_dir: str, version: str) -> list[str]:
    from serving.predict import resolve_model_dir

    before = resolve_model_dir(serving_dir)
    if _run(["-m", "serving.versions", "--output-dir", out, "--rollback", version,
             "--reason", "demo: roll back to the first model"]) != 0:
        return ["the rollback failed"]
    _run(["-m", "serving.versions", "--output-dir", out])
    after = resolve_model_dir(serving_dir)  # what serving.predict loads
    same = _same_weights(os.path.join(serving_dir, version), after)
    print(f"demo: serving.predict loaded {before}; after the rollback it loads {after}, "
          f"{'the same weights as' if same else 'NOT the weights of'} version {version}")
    return [] if same and after != before else [f"after the rollback serving.predict loads {after}, "
                                                f"not version {version}'s model"]


def _same_weights(a: str, b: str) -> bool:
    """Both SavedModels' variables are byte for byte the same."""
    import filecmp

    va, vb = os.path.join(a, "variables"), os.path.join(b, "variables")
    names = sorted(os.listdir(va))
    return names == sorted(os.listdir(vb)) and all(
        filecmp.cmp(os.path.join(va, n), os.path.join(vb, n), shallow=False) for n in names)


if __name__ == "__main__":
    sys.exit(main())
