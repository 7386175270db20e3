"""runners.grid: variants x seeds against single-task models, with intervals (fake runs, exact numbers)."""
import json
import os

import pytest

from config import load, parse
from runners import grid


def test_interval_is_students_t():
    # mean 2, sd 1, n 3: half width = t(0.975, 2) * 1 / sqrt(3) = 4.302653 / 1.732051 = 2.484138
    ci = grid.interval([1.0, 2.0, 3.0])
    assert ci["mean"] == 2.0 and ci["n"] == 3
    assert ci["low"] == pytest.approx(2 - 2.484138, abs=1e-6) and ci["high"] == pytest.approx(2 + 2.484138, abs=1e-6)
    assert grid.interval([0.5]) == {"mean": 0.5, "low": None, "high": None, "n": 1}


def test_variant_config_sets_method_sharing_seed_and_static_weighting():
    config = load("configs/default.yaml")
    v = grid.variant_config(config, "pcgrad", "mmoe", 7)
    assert (v.train.mtl.method, v.model.sharing.type, v.train.seed) == ("pcgrad", "mmoe", 7)
    assert v.train.loss_weighting.type == "static" and v.name == f"{config.name}_pcgrad_mmoe"
    assert grid.single_config(config, "age", 8).train.seed == 8


def two_task_config():
    return parse({"name": "t", "tasks": [{"name": "a", "type": "binary", "classes": ["n", "y"]},
                                         {"name": "r", "type": "regression"}],
                  "sources": [{"name": "s", "format": "folder", "path": "/x", "tasks": ["a", "r"]}]},
                 base_dir=None)


def report(acc, mae):
    return {"tasks": {"a": {"type": "binary", "metrics": {"accuracy": acc}},
                      "r": {"type": "regression", "metrics": {"mean_absolute_error": mae}}}}


def test_build_grid_delta_m_per_seed_and_its_interval():
    config = two_task_config()
    singles = {"a": [report(0.8, None), report(0.5, None)], "r": [report(None, 2.0), report(None, 4.0)]}
    # seed 0: gains +0.25 (0.8 -> 1.0), +0.5 (MAE 2 -> 1): delta_m 0.375; seed 1: +0.2 (0.5 -> 0.6), -0.25
    # (4 -> 5): -0.025. Mean 0.175, sd 0.282843, t(0.975, 1) = 12.706205: half width 2.541241
    variants = {"pcgrad_hard": [report(1.0, 1.0), report(0.6, 5.0)], "none_hard": [report(0.8, 2.0),
                                                                                   report(0.5, 4.0)]}
    g = grid.build_grid(config, variants, singles)
    v = g["variants"]["pcgrad_hard"]
    assert v["delta_m_per_seed"] == pytest.approx([0.375, -0.025])
    assert v["delta_m"]["mean"] == pytest.approx(0.175)
    assert v["delta_m"]["low"] == pytest.approx(0.175 - 2.541241, abs=1e-5)
    assert v["beats_single_task"] is False
    assert v["tasks"]["a"]["mean"] == pytest.approx(0.8) and v["tasks"]["r"]["mean"] == pytest.approx(3.0)
    assert g["variants"]["none_hard"]["delta_m"]["mean"] == 0.0
    assert g["ranking"] == ["pcgrad_hard", "none_hard"]
    assert g["metrics"] == {"a": "accuracy", "r": "mean_absolute_error"}
    table = grid.format_grid(g)
    assert table.splitlines()[2].startswith("pcgrad_hard") and "+17.50%" in table
    # vs the first variant (pcgrad_hard itself): none_hard's delta_m minus pcgrad's, seed by seed
    assert g["baseline"] == "pcgrad_hard" and v["vs_baseline"] is None
    vs = g["variants"]["none_hard"]["vs_baseline"]
    assert vs["per_seed"] == pytest.approx([-0.375, 0.025]) and vs["mean"] == pytest.approx(-0.175)
    assert vs["verdict"] == "not shown"  # half width 12.706205 * 0.282843 / sqrt(2) = 2.541241


def test_paired_difference_can_show_what_two_overlapping_intervals_cannot():
    config = two_task_config()
    singles = {"a": [report(0.5, None)] * 3, "r": [report(None, 2.0)] * 3}
    # both variants swing by seed together; b is 0.01 above a at every seed (accuracy gain 0.02 / 2 tasks)
    a = [report(0.50, 2.0), report(0.60, 2.0), report(0.40, 2.0)]
    b = [report(0.51, 2.0), report(0.61, 2.0), report(0.41, 2.0)]
    g = grid.build_grid(config, {"a": a, "b": b}, singles)
    da, db = g["variants"]["a"]["delta_m"], g["variants"]["b"]["delta_m"]
    assert db["low"] < da["high"]  # the two intervals overlap ...
    vs = g["variants"]["b"]["vs_baseline"]
    assert vs["per_seed"] == pytest.approx([0.01] * 3) and vs["verdict"] == "better"  # ... the paired one does not
    worse = grid.build_grid(config, {"b": b, "a": a}, singles)["variants"]["a"]["vs_baseline"]
    assert worse["verdict"] == "worse" and "worse" in grid.format_grid(grid.build_grid(config, {"b": b, "a": a},
                                                                                      singles))


def test_beats_single_task_needs_the_whole_interval_above_zero():
    config = two_task_config()
    singles = {"a": [report(0.5, None)] * 3, "r": [report(None, 2.0)] * 3}
    better = [report(0.6, 1.8), report(0.61, 1.79), report(0.59, 1.81)]
    g = grid.build_grid(config, {"x": better}, singles)
    assert g["variants"]["x"]["delta_m"]["low"] > 0 and g["variants"]["x"]["beats_single_task"] is True


def test_run_grid_runs_every_variant_seed_and_single_task_once(tmp_path):
    runs = []

    def fake_run(config_path, out_dir, no_cache):
        cfg = load(config_path)
        runs.append((os.path.relpath(out_dir, tmp_path), cfg.train.mtl.method, cfg.train.seed, cfg.task_names))
        # accuracy from the seed, so each run's report differs; single-task runs score 0.5
        acc = 0.5 if len(cfg.tasks) == 1 else 0.6 + 0.01 * (cfg.train.seed - 42)
        os.makedirs(os.path.join(out_dir, "report"))
        tasks = {t.name: {"type": t.type, "classes": list(t.classes), "metrics": {"accuracy": acc}}
                 for t in cfg.tasks}
        with open(os.path.join(out_dir, "report", "report.json"), "w") as f:
            json.dump({"tasks": tasks}, f)
        return 1.0

    g = grid.run_grid("configs/default.yaml", str(tmp_path), ["none", "imtl"], ["hard"], 2, run=fake_run,
                      log=lambda _: None)
    assert len(runs) == 2 * 2 + 3 * 2  # 2 variants x 2 seeds, 3 tasks x 2 seeds
    assert sorted(r[0] for r in runs if r[0].startswith("grid/imtl")) == ["grid/imtl_hard/s0", "grid/imtl_hard/s1"]
    assert {(r[1], r[2]) for r in runs if "imtl" in r[0]} == {("imtl", 42), ("imtl", 43)}
    # every task's gain is (0.6 - 0.5) / 0.5 = 0.2 at seed 0 and 0.22 at seed 1
    assert g["variants"]["imtl_hard"]["delta_m_per_seed"] == pytest.approx([0.2, 0.22])
    assert sorted(json.loads((tmp_path / "report" / "grid.json").read_text())["ranking"]) == ["imtl_hard",
                                                                                              "none_hard"]
    assert "<!-- grid:start -->" in (tmp_path / "report" / "index.html").read_text()


def test_reuse_finished_skips_only_runs_of_the_same_config(tmp_path):
    runs = []

    def fake_run(config_path, out_dir, no_cache):
        runs.append(os.path.relpath(out_dir, tmp_path))
        cfg = load(config_path)
        os.makedirs(os.path.join(out_dir, "report"), exist_ok=True)
        tasks = {t.name: {"type": t.type, "metrics": {"accuracy": 0.5}} for t in cfg.tasks}
        with open(os.path.join(out_dir, "report", "report.json"), "w") as f:
            json.dump({"tasks": tasks}, f)
        return 1.0

    kw = dict(run=fake_run, log=lambda _: None)
    grid.run_grid("configs/default.yaml", str(tmp_path), ["none"], ["hard"], 1, **kw)
    assert len(runs) == 4
    runs.clear()
    grid.run_grid("configs/default.yaml", str(tmp_path), ["none", "pcgrad"], ["hard"], 1, reuse_finished=True, **kw)
    assert runs == ["grid/pcgrad_hard/s0"]  # the finished none and single-task runs are reused
    runs.clear()
    # a changed config (here: its seed, written into the run's config.yaml) is run again
    cfg = tmp_path / "grid" / "none_hard" / "s0" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("seed: 42", "seed: 41"))
    grid.run_grid("configs/default.yaml", str(tmp_path), ["none"], ["hard"], 1, reuse_finished=True, **kw)
    assert runs == ["grid/none_hard/s0"]
    runs.clear()
    grid.run_grid("configs/default.yaml", str(tmp_path), ["none"], ["hard"], 1, **kw)  # without the flag: all
    assert len(runs) == 4


def test_cli_refuses_unknown_methods(capsys):
    with pytest.raises(SystemExit):
        grid.main(["--methods", "pcgrad,magic"])
    assert "valid: none, pcgrad" in capsys.readouterr().err


def test_the_config_compare_section_sets_the_grid_and_flags_override_it(tmp_path):
    import yaml

    raw = yaml.safe_load(open("configs/default.yaml"))
    raw["compare"] = {"methods": ["none", "rlw"], "sharing": ["hard"], "seeds": 2}
    for s in raw["sources"]:
        s["path"] = os.path.abspath(os.path.join("configs", s["path"]))
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    runs = []

    def fake_run(config_path, out_dir, no_cache):
        runs.append(os.path.relpath(out_dir, tmp_path / "o"))
        cfg = load(config_path)
        os.makedirs(os.path.join(out_dir, "report"), exist_ok=True)
        with open(os.path.join(out_dir, "report", "report.json"), "w") as f:
            json.dump({"tasks": {t.name: {"type": t.type, "metrics": {"accuracy": 0.5}} for t in cfg.tasks}}, f)
        return 1.0

    g = grid.run_grid(str(path), str(tmp_path / "o"), run=fake_run, log=lambda _: None)
    assert sorted(g["variants"]) == ["none_hard", "rlw_hard"] and g["seeds"] == 2 and len(runs) == (2 + 3) * 2
    runs.clear()
    g = grid.run_grid(str(path), str(tmp_path / "o"), ["pcgrad"], (), 1, run=fake_run, log=lambda _: None)
    assert list(g["variants"]) == ["pcgrad_hard"] and g["seeds"] == 1


def test_a_variant_the_model_cannot_take_fails_before_any_run(tmp_path):
    from config import ConfigError

    runs = []
    with pytest.raises(ConfigError, match="cross_stitch"):
        grid.run_grid("configs/default.yaml", str(tmp_path), ["none"], ["hard", "cross_stitch"], 1,
                      run=lambda *a: runs.append(a) or 1.0, log=lambda _: None)
    assert runs == []
