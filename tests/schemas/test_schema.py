"""The contract schema is derived from the config and checked in for the default."""
import os

from config import load
from schemas.contract import build_schema, schema_text, write_schema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_default_schema_matches_checked_in_copy():
    cfg = load(os.path.join(ROOT, "configs", "default.yaml"))
    with open(os.path.join(ROOT, "schemas", cfg.name + ".pbtxt")) as f:
        assert schema_text(cfg) == f.read()


def test_schema_follows_config():
    cfg = load(os.path.join(ROOT, "configs", "default.yaml"))
    feats = {f.name: f for f in build_schema(cfg).feature}
    assert sorted(feats) == ["example_id", "image", "label", "slice_age", "slice_gender", "source", "task_index"]
    # slice-only features of wiki's two tasks (docs/data_contract.md): optional, no fixed shape
    # (Transform and serving parse them as VarLenFeature), values the task's classes
    for task in ("age", "gender"):
        f = feats[f"slice_{task}"]
        assert f.presence.min_fraction == 0.0 and not f.HasField("shape")
        assert list(f.string_domain.value) == list(cfg.task(task).classes)
    assert [d.size for d in feats["label"].shape.dim] == [5]
    assert (feats["task_index"].int_domain.min, feats["task_index"].int_domain.max) == (0, 2)
    assert list(feats["source"].string_domain.value) == ["genki4k", "wiki"]


def test_schema_path_changes_with_content(tmp_path):
    cfg = load(os.path.join(ROOT, "configs", "default.yaml"))
    a = write_schema(cfg, str(tmp_path))
    assert write_schema(cfg, str(tmp_path)) == a
    other = cfg.__class__(**{**cfg.__dict__, "tasks": cfg.tasks[:2],
                             "sources": cfg.sources[:1]})
    assert write_schema(other, str(tmp_path)) != a
