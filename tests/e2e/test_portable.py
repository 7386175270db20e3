"""Beam's portable path: every Beam component on `--runner=PortableRunner`, as Flink, Spark and
Dataflow run it, must give the DirectRunner's outputs.

The job goes to Beam's own Python job service on 127.0.0.1 (portable job API: job submission,
artifact staging), and its SDK workers are separate processes started by a worker pool
(`--environment_type=EXTERNAL`) that boot like Beam's SDK container (portable_boot.py): they get
the project only through `--setup_file=setup.py`, not from the repository or PYTHONPATH.

- test_conversion_*: `python -m data_prep --beam-arg=...` both ways; examples (as sorted
  serialized records per file set), dead letters and prep_stats.json compared.
- test_requirements_file_staged_offline: the conversion with `--requirements_file` naming a
  made-up pure-python wheel, found by the stager's `pip download` in a local wheelhouse
  (PIP_NO_INDEX=1, PIP_FIND_LINKS) and installed by each worker's boot from what was staged;
  outputs compared with the DirectRunner's.
- test_dag_*: run_local.py twice on the e2e tiny config, once with `beam.args` pointing at the
  job service (DataPrepExampleGen, StatisticsGen, Transform and the Evaluator all go through it);
  statistics protos, Transform's transformed examples and transform graph files, the Evaluator's
  metrics and blessing and the report's figures compared with the DirectRunner run's.

Run: `pytest -m portable` (no network needed; `make test-all` runs them too, `make test` does not).
"""
import glob
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from tests.e2e.helpers import ROOT, figures, portable_services, write_config

# slow: the conversion test takes ~1.5-2 min (two CLI runs, the services' start), the DAG ones
# two whole-DAG runs; so `make test` skips them and `make test-all` runs them.
pytestmark = [pytest.mark.portable, pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    work = tmp_path_factory.mktemp("portable_services")
    with portable_services(str(work)) as beam_args:
        yield work, beam_args


PROBE = "mtl_staging_probe"  # a made-up pure-python package, for test_requirements_file_staged_offline


def _records(pattern):
    """Split directory -> its tf.Examples, sorted, each re-serialized deterministically: the
    feature map's order in a record is the writer's hash order (it differs between two
    processes, even two DirectRunner runs), not a difference in the example."""
    import tensorflow as tf

    out = {}
    for path in sorted(glob.glob(pattern)):
        key = os.path.basename(os.path.dirname(path))
        out.setdefault(key, []).extend(
            tf.train.Example.FromString(r.numpy()).SerializeToString(deterministic=True)
            for r in tf.data.TFRecordDataset(path, compression_type="GZIP"))
    return {k: sorted(v) for k, v in out.items()}


def _run(cmd, timeout=1800, env=None):
    """Runs cmd from the repository root; env: extra variables for it."""
    start = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return time.time() - start


def _worker_staged(work):
    """What each SDK worker got from the job's staging (portable_boot.py writes it down)."""
    return [json.load(open(p)) for p in glob.glob(str(work / "workers" / "*" / "staged_names.json"))]


def test_conversion_portable_matches_direct(services, tmp_path):
    work, beam_args = services
    from config import load
    from data_prep.generate import generate_missing

    config = write_config(tmp_path / "tiny.yaml", tmp_path / "data")
    generate_missing(load(str(config)))  # before both runs, so that neither's time includes it
    seconds = {}
    for name, extra in (("direct", []), ("portable", beam_args)):
        cmd = [sys.executable, "-m", "data_prep", "--config", str(config), "--output-dir", str(tmp_path / name),
               *[f"--beam-arg={a}" for a in extra]]
        seconds[name] = _run(cmd)
    print(f"conversion: direct {seconds['direct']:.1f} s, portable {seconds['portable']:.1f} s")
    direct, portable = tmp_path / "direct", tmp_path / "portable"
    stats = {side: json.loads((tmp_path / side / "prep_stats.json").read_text()) for side in ("direct", "portable")}
    assert stats["portable"] == stats["direct"]
    d, p = _records(f"{direct}/examples/*/*.gz"), _records(f"{portable}/examples/*/*.gz")
    assert sorted(d) == sorted(p) and sum(map(len, d.values())) > 100
    for split in d:
        assert p[split] == d[split], split

    def dead(root):
        return sorted(line for f in glob.glob(f"{root}/dead_letter/*.jsonl") for line in open(f))

    assert dead(portable) == dead(direct)
    assert any("workflow.tar.gz" in names for names in _worker_staged(work))  # the project came staged


def _probe_wheelhouse(tmp_path):
    """A local wheelhouse with one tiny pure-python wheel (py3-none-any), built offline."""
    src, wheelhouse = tmp_path / "probe_src", tmp_path / "wheelhouse"
    (src / PROBE).mkdir(parents=True)
    (src / PROBE / "__init__.py").write_text("VALUE = 42\n")
    (src / "setup.py").write_text(
        f"import setuptools\nsetuptools.setup(name={PROBE!r}, version='0.1.0', packages=[{PROBE!r}])\n")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--disable-pip-version-check", "-w", str(wheelhouse), str(src)],
                   check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = (p.name for p in wheelhouse.glob("*.whl"))
    assert wheel == f"{PROBE}-0.1.0-py3-none-any.whl"
    return wheelhouse, wheel


def test_requirements_file_staged_offline(services, tmp_path):
    """`--requirements_file` on the portable path without network: the stager's `pip download`
    (at submission, with the default container's --platform/--abi/--implementation) finds the
    requirement in a local wheelhouse through PIP_NO_INDEX / PIP_FIND_LINKS, stages it with the
    file, and each worker's boot pip-installs the file's requirements from what was staged."""
    work, beam_args = services
    from config import load
    from data_prep.generate import generate_missing

    wheelhouse, wheel = _probe_wheelhouse(tmp_path)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{PROBE}==0.1.0\n")
    config = write_config(tmp_path / "tiny.yaml", tmp_path / "data")
    generate_missing(load(str(config)))
    args = {
        "direct": [],
        "portable": [*beam_args, f"--requirements_file={requirements}",
                     f"--requirements_cache={tmp_path / 'requirements_cache'}"],  # not the shared /tmp one
    }
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)}  # read by the stager's pip download
    for name, extra in args.items():
        _run([sys.executable, "-m", "data_prep", "--config", str(config), "--output-dir", str(tmp_path / name),
              *[f"--beam-arg={a}" for a in extra]], env=offline if name == "portable" else None)
    stats = {side: json.loads((tmp_path / side / "prep_stats.json").read_text()) for side in args}
    assert stats["portable"] == stats["direct"]
    assert _records(f"{tmp_path}/portable/examples/*/*.gz") == _records(f"{tmp_path}/direct/examples/*/*.gz")

    workers = [os.path.dirname(p) for p in glob.glob(str(work / "workers" / "*" / "staged_names.json"))
               if {"requirements.txt", wheel} <= set(json.load(open(p)))]
    assert workers, _worker_staged(work)
    for worker in workers:  # the probe, and only what the requirements file names, went into site
        site = os.path.join(worker, "site")
        assert os.path.isfile(os.path.join(site, PROBE, "__init__.py")), os.listdir(site)
        probe = subprocess.run([sys.executable, "-c", f"import {PROBE}; print({PROBE}.__file__, {PROBE}.VALUE)"],
                               env={**os.environ, "PYTHONPATH": site}, cwd=tmp_path,
                               capture_output=True, text=True)
        assert probe.returncode == 0 and probe.stdout.split() == [
            os.path.join(site, PROBE, "__init__.py"), "42"], probe.stdout + probe.stderr
        assert not [n for n in os.listdir(site) if n.startswith(("numpy", "tensorflow", "apache_beam"))]


# ---- the whole DAG ----

def _artifact_dirs(out, component, output):
    return sorted(glob.glob(str(out / "tfx" / "tiny_e2e" / component / output / "*")))


def _one(out, component, output):
    dirs = _artifact_dirs(out, component, output)
    assert len(dirs) == 1, (component, output, dirs)
    return dirs[0]


def _files(root):
    return {os.path.relpath(p, root): open(p, "rb").read()
            for p in glob.glob(os.path.join(root, "**", "*"), recursive=True) if os.path.isfile(p)}


@pytest.fixture(scope="module")
def dag_runs(services, tmp_path_factory):
    """The tiny DAG on the DirectRunner, then on the portable path; each run's component times."""
    _, beam_args = services
    tmp = tmp_path_factory.mktemp("portable_dag")
    direct_config = write_config(tmp / "direct.yaml", tmp / "data")
    raw = yaml.safe_load(direct_config.read_text())
    raw.setdefault("beam", {})["args"] = list(beam_args)
    portable_config = tmp / "portable.yaml"
    portable_config.write_text(yaml.safe_dump(raw))
    runs = {}
    for name, config in (("direct", direct_config), ("portable", portable_config)):
        out = tmp / name
        _run([sys.executable, "run_local.py", "--config", str(config), "--output-dir", str(out)])
        comps = json.loads((out / "last_run.json").read_text())["components"]
        runs[name] = (out, {c["component"]: c["seconds"] for c in comps})
    for component in ("DataPrepExampleGen", "StatisticsGen", "Transform", "Evaluator"):
        print(f"{component}: direct {runs['direct'][1][component]:.1f} s, "
              f"portable {runs['portable'][1][component]:.1f} s")
    return runs


def test_dag_example_gen_and_statistics_match(dag_runs):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    (direct, _), (portable, _) = dag_runs["direct"], dag_runs["portable"]
    d = _records(_one(direct, "DataPrepExampleGen", "examples") + "/*/*.gz")
    assert d == _records(_one(portable, "DataPrepExampleGen", "examples") + "/*/*.gz")
    d_stats, p_stats = (_files(_one(o, "StatisticsGen", "statistics")) for o in (direct, portable))
    assert sorted(d_stats) == sorted(p_stats) and any(k.endswith("FeatureStats.pb") for k in d_stats)
    for name, data in d_stats.items():
        if name.endswith(".pb"):
            a, b = (statistics_pb2.DatasetFeatureStatisticsList.FromString(x) for x in (data, p_stats[name]))
            assert a == b, name


def test_dag_transform_matches(dag_runs):
    (direct, _), (portable, _) = dag_runs["direct"], dag_runs["portable"]
    d = _records(_one(direct, "Transform", "transformed_examples") + "/*/*.gz")
    assert d and d == _records(_one(portable, "Transform", "transformed_examples") + "/*/*.gz")
    d_dir, p_dir = (_one(o, "Transform", "transform_graph") for o in (direct, portable))
    d_graph, p_graph = _files(d_dir), _files(p_dir)
    assert sorted(d_graph) == sorted(p_graph)
    # Schemas, assets (vocabularies) and variables byte for byte. The SavedModel's graph
    # (saved_model.pb, fingerprint.pb) names its traced functions with a per-process counter,
    # which differs with what the process traced before, so it is compared by what it computes:
    # both graphs on every raw example of the run.
    for name, data in d_graph.items():
        if not name.startswith("transform_fn/") or "/variables/" in name or "/assets/" in name:
            assert p_graph[name] == data, name
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    raw = [r for recs in _records(_one(direct, "DataPrepExampleGen", "examples") + "/*/*.gz").values() for r in recs]
    outputs = []
    for graph_dir in (d_dir, p_dir):
        tf_out = tft.TFTransformOutput(graph_dir)
        features = tf.io.parse_example(tf.constant(raw), tf_out.raw_feature_spec())
        outputs.append({k: v.numpy() for k, v in tf_out.transform_features_layer()(features).items()})
    assert sorted(outputs[0]) == sorted(outputs[1]) and len(raw) > 100
    for key, value in outputs[0].items():
        assert np.array_equal(value, outputs[1][key]), key


def _point_values(metrics_for_slice):
    """The metrics without their confidence intervals: TFMA's Poisson bootstrap draws unseeded
    samples (components/common/eval_config.py), so the bounds differ between two DirectRunner runs too;
    the point value is computed on the unsampled data and must be identical."""
    out = []
    for kv in metrics_for_slice.metric_keys_and_values:
        kv = type(kv).FromString(kv.SerializeToString())
        kv.ClearField("confidence_interval")
        kv.value.ClearField("t_distribution_value")
        if kv.value.HasField("bounded_value"):
            kv.value.bounded_value.ClearField("lower_bound")
            kv.value.bounded_value.ClearField("upper_bound")
        out.append(kv.SerializeToString(deterministic=True))
    return sorted(out)


def _has_intervals(metrics_for_slice):
    return sum(kv.HasField("confidence_interval") or kv.value.HasField("bounded_value")
               for kv in metrics_for_slice.metric_keys_and_values)


def test_dag_evaluator_and_report_match(dag_runs):
    import tensorflow as tf
    from tensorflow_model_analysis.proto import metrics_for_slice_pb2

    (direct, _), (portable, _) = dag_runs["direct"], dag_runs["portable"]

    def metrics(out):
        paths = glob.glob(_one(out, "Evaluator", "evaluation") + "/metrics*")
        assert paths
        rows = [metrics_for_slice_pb2.MetricsForSlice.FromString(r.numpy())
                for p in paths for r in tf.data.TFRecordDataset(p)]
        return sorted(rows, key=lambda m: m.slice_key.SerializeToString(deterministic=True))

    d, p = metrics(direct), metrics(portable)
    assert len(d) == len(p) > 1
    for a, b in zip(d, p):
        assert a.slice_key == b.slice_key
        assert _point_values(a) == _point_values(b), a.slice_key
        assert _has_intervals(a) == _has_intervals(b)
    assert _files(_one(direct, "Evaluator", "blessing")) == _files(_one(portable, "Evaluator", "blessing"))
    assert figures(portable) == figures(direct)
