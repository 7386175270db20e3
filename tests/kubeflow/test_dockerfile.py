"""The Dockerfile's essentials, read as text (no Docker daemon here: never built)."""
import os
import re

from tests.kubeflow.helpers import ROOT, context_files

# Files the compiled spec or the task pods need inside the image.
NEEDED = ["components/__init__.py", "components/trainer/run_fn.py", "components/transform/preprocessing.py",
          "components/example_gen/component.py", "components/anomaly_gate.py", "components/report/component.py",
          "components/common/eval_config.py", "components/evaluator/metrics.py", "components/artifacts.py",
          "serving/__init__.py", "serving/predict.py", "config/types.py",
          "pipeline/pipeline.py", "data_prep/beam_job.py", "models/__init__.py",
          "schemas/contract.py", "schemas/bknet_smile_gender_age.pbtxt", "configs/default.yaml",
          "requirements.txt"]


def instructions():
    """(INSTRUCTION, argument) pairs, continuation lines joined, comments dropped."""
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        text = re.sub(r"\\\n\s*", " ", f.read())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def index(instrs, word, pred=lambda arg: True):
    hits = [i for i, (w, a) in enumerate(instrs) if w == word and pred(a)]
    assert hits, f"no {word} matching in Dockerfile: {instrs}"
    return hits[0]


def env_values(instrs):
    env = {}
    for word, arg in instrs:
        if word == "ENV":
            env.update(re.findall(r"(\w+)=(\S+)", arg))
    return env


def test_base_image_is_python_310_on_debian_12():
    instrs = instructions()
    assert instrs[0] == ("FROM", "python:3.10-slim-bookworm")
    assert [w for w, _ in instrs].count("FROM") == 1


def test_pinned_requirements_installed_before_the_code_is_copied():
    instrs = instructions()
    copy_req = index(instrs, "COPY", lambda a: a.split()[0] == "requirements.txt")
    install = index(instrs, "RUN", lambda a: "pip install" in a)
    copy_all = index(instrs, "COPY", lambda a: a.split() == [".", "/pipeline"])
    assert copy_req < install < copy_all
    assert re.search(r"pip install --no-deps -r /pipeline/requirements.txt", instrs[install][1])
    # Every requirement line of the lock is pinned with ==, so --no-deps installs exactly it.
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        reqs = [ln.split("#")[0].strip() for ln in f]
    reqs = [r for r in reqs if r]
    assert len(reqs) > 100  # the compiled lock, not requirements.in
    unpinned = [r for r in reqs if not re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[^\s=]+(\s*;.*)?", r)]
    assert unpinned == []
    assert any(r.startswith("tfx==1.16.0") for r in reqs) and any(r.startswith("kfp==") for r in reqs)


def test_workdir_and_env_make_the_repo_importable_with_keras_2():
    instrs = instructions()
    assert ("WORKDIR", "/pipeline") in instrs
    env = env_values(instrs)
    assert env["PYTHONPATH"] == "/pipeline"
    assert env["TF_USE_LEGACY_KERAS"] == "1"
    smoke = instrs[index(instrs, "RUN", lambda a: a.startswith("python -c"))][1]
    for module in ("components.trainer.run_fn", "components.transform.preprocessing", "components.report.component",
                   "pipeline.pipeline"):
        assert module in smoke


def test_build_context_holds_the_code_and_leaves_out_local_state():
    files = context_files()
    missing = [p for p in NEEDED if p not in files]
    assert missing == []
    for prefix in (".venv/", ".git/", "outputs/", "data/sample/"):
        assert not any(p.startswith(prefix) for p in files), prefix
    assert not any("__pycache__/" in p for p in files)


DEV_TOOLS = ("pytest", "ruff", "import-linter", "hypothesis")


def lock(name):
    """{package: version} of a compiled lock file."""
    with open(os.path.join(ROOT, name)) as f:
        pins = [ln.split("#")[0].strip() for ln in f]
    return dict(p.split(";")[0].strip().split("==", 1) for p in pins if p)


def test_the_image_lock_holds_no_development_tools():
    runtime, dev = lock("requirements.txt"), lock("requirements-dev.txt")
    assert [t for t in DEV_TOOLS if t in runtime] == []
    assert "tfx" in runtime and "kfp" in runtime
    assert all(t in dev for t in DEV_TOOLS)
    # The dev lock is compiled against the runtime one: a package in both has one version.
    assert {p: (v, dev[p]) for p, v in runtime.items() if p in dev and dev[p] != v} == {}
    # ...and make setup installs both; the Dockerfile only the runtime lock.
    with open(os.path.join(ROOT, "Makefile")) as f:
        assert "-r requirements.txt -r requirements-dev.txt" in f.read()
    assert not [a for _, a in instructions() if "requirements-dev" in a]  # comments may name it


def test_the_compiler_leaves_with_the_layer_that_needed_it():
    """Some pinned packages are sdists: build tools come and go in one RUN, so no layer keeps them."""
    instrs = instructions()
    install = instrs[index(instrs, "RUN", lambda a: "pip install" in a)][1]
    steps = [s.strip() for s in install.split("&&")]
    add = next(i for i, s in enumerate(steps) if "apt-get install" in s and "build-essential" in s)
    pip = next(i for i, s in enumerate(steps) if s.startswith("pip install"))
    purge = next(i for i, s in enumerate(steps) if "apt-get purge" in s)
    assert add < pip < purge
    assert "packages-before" in steps[purge]  # everything the install brought, not only build-essential
    assert any("/var/lib/apt/lists" in s for s in steps[purge:])
