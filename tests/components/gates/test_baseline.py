"""The Evaluator's baseline is the model the Pusher last wrote (components/baseline.py)."""
import os

from tfx.types import standard_artifacts, standard_component_specs

from components.baseline import FOUND, PUSHED_PATH, PUSHED_VERSION, has_baseline, pick_baseline, pushed_versions
from components.evaluator.executor import without_empty_baseline


def push(dest, version, whole=True, payload=b"weights"):
    folder = dest / str(version)
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(payload)
    if whole:
        (folder / "saved_model.pb").write_bytes(b"graph")
    return folder


def model_artifact(uri):
    m = standard_artifacts.Model()
    m.uri = str(uri)
    os.makedirs(m.uri, exist_ok=True)
    return m


def test_newest_whole_push_is_the_baseline_and_is_copied_where_the_evaluator_reads(tmp_path):
    dest = tmp_path / "serving_model"
    push(dest, 1700000000, payload=b"old")
    push(dest, 1700000500, payload=b"new")
    push(dest, 1700000900, whole=False)  # a push cut short: no saved_model.pb
    (dest / "notes").mkdir()  # not a version
    assert pushed_versions(str(dest)) == ["1700000000", "1700000500"]
    # numeric order, not text order
    push(dest, 999999999)
    assert pushed_versions(str(dest))[0] == "999999999"

    baseline = model_artifact(tmp_path / "out")
    assert pick_baseline(str(dest), baseline) == "1700000500"
    served = tmp_path / "out" / "Format-Serving"
    assert (served / "saved_model.pb").read_bytes() == b"graph"
    assert (served / "variables" / "variables.data-00000-of-00001").read_bytes() == b"new"
    assert baseline.get_int_custom_property(FOUND) == 1
    assert baseline.get_string_custom_property(PUSHED_VERSION) == "1700000500"
    assert baseline.get_string_custom_property(PUSHED_PATH) == str(dest / "1700000500")
    assert has_baseline(baseline)


def test_nothing_pushed_gives_an_empty_baseline_the_evaluator_drops(tmp_path):
    for dest in (tmp_path / "missing", tmp_path / "empty"):
        baseline = model_artifact(tmp_path / "out" / dest.name)
        if dest.name == "empty":
            dest.mkdir()
            push(dest, 1700000000, whole=False)
        assert pick_baseline(str(dest), baseline) is None
        assert os.listdir(baseline.uri) == []
        assert baseline.get_int_custom_property(FOUND) == 0
        assert not has_baseline(baseline)
        key = standard_component_specs.BASELINE_MODEL_KEY
        model = standard_artifacts.Model()
        inputs = {"model": [model], key: [baseline]}
        assert without_empty_baseline(inputs) == {"model": [model], key: []}
        assert inputs[key] == [baseline]  # the caller's dict is left as it was


def test_a_baseline_from_elsewhere_is_kept():
    # A Model artifact that did not come from PushedModelBaseline (no `found`) is a real model.
    model = standard_artifacts.Model()
    assert has_baseline(model)
    key = standard_component_specs.BASELINE_MODEL_KEY
    assert without_empty_baseline({key: [model]}) == {key: [model]}
    assert without_empty_baseline({}) == {key: []}
