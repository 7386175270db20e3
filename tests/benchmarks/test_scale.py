"""The fitting (benchmarks/scale.py) and attribution (benchmarks/run_sampler.py) helpers of `make bench-scale`."""
import json
import math
import os
import sqlite3

import pytest
import yaml

from benchmarks import run_sampler, scale


@pytest.mark.parametrize("k", [0.0, 0.5, 1.0, 1.1, 2.0])
def test_fit_power_recovers_an_exact_power_law(k):
    sizes = [5000, 20000, 80000, 160000]
    got_k, got_c = scale.fit_power(sizes, [3.0 * n ** k for n in sizes])
    assert got_k == pytest.approx(k, abs=1e-12)
    assert got_c == pytest.approx(3.0, rel=1e-9)
    assert scale.extrapolate(got_k, got_c, 523_000) == pytest.approx(3.0 * 523_000 ** k, rel=1e-9)


def test_fit_power_is_least_squares_on_logs():
    # log2 sizes 0, 1, 2; log2 values 0, 2, 2 -> slope 1 (in any base), intercept 4/3 - 1 = 1/3 (log2)
    k, c = scale.fit_power([1, 2, 4], [1, 4, 4])
    assert k == pytest.approx(1.0)
    assert c == pytest.approx(2 ** (1 / 3))


def test_linear_cost_plus_fixed_overhead_fits_below_one():
    sizes = [5000, 20000, 80000]
    k, _ = scale.fit_power(sizes, [10 + n / 1000 for n in sizes])
    assert 0.5 < k < 1.0


def test_fit_power_rejects_too_few_or_equal_sizes():
    with pytest.raises(ValueError):
        scale.fit_power([5000], [1.0])
    with pytest.raises(ValueError):
        scale.fit_power([5000, 5000], [1.0, 2.0])


def test_peaks_go_to_the_component_running_at_the_sample():
    samples = [(0, 100), (10, 300), (20, 200), (30, 900), (40, 500), (50, 50)]
    intervals = [("A", 0, 20), ("B", 21, 40), ("C", 44, 46)]  # C holds no sample: nearest to 45 is t=40 or 50
    peaks = run_sampler.attribute_peaks(samples, intervals)
    assert peaks["A"] == 300 and peaks["B"] == 900
    assert peaks["C"] in (500, 50)
    assert run_sampler.attribute_peaks([], intervals) == {}


def test_value_at_each_start():
    samples = [(0, 100), (10, 300), (20, 200)]
    got = run_sampler.value_at_starts(samples, [("A", -5, 0), ("B", 15, 30), ("C", 20, 25)])
    assert got == {"A": 100, "B": 300, "C": 200}
    assert run_sampler.value_at_starts(samples, [("Z", -9, -1)]) == {"Z": 100}


def test_counter_deltas_per_interval():
    samples = [(0, 0), (10, 100), (20, 150), (30, 400), (40, 400)]
    deltas = run_sampler.attribute_deltas(samples, [("A", 5, 20), ("B", 21, 40)])
    assert deltas == {"A": 150, "B": 250}


def _record(n, seconds, rss):
    return {"images": n, "generate_s": 1.0, "pipeline_s": 1.0, "peak_rss_mb": max(rss.values()),
            "components": {c: {"seconds": s, "peak_rss_mb": rss[c], "output_mb": n / 1000, "io_write_mb": 0.0}
                           for c, s in seconds.items()}}


def test_summary_figures_leave_out_the_trainer_and_fixed_costs():
    sizes = [5000, 20000, 80000]
    recs = [_record(n, {"Transform": n / 1000, "Trainer": (n / 1000) ** 2, "Pusher": 0.01 * (n / 5000) ** 1.5,
                        "Evaluator": 2 * (n / 1000) ** 1.05},
                    {"Transform": 1000, "Trainer": 1000 + n / 100, "Pusher": 900, "Evaluator": 1100})
            for n in reversed(sizes)]  # any order
    s = scale.summarize(recs)
    assert s["sizes"] == sizes
    rows = {r["component"]: r for r in s["rows"]}
    assert rows["Transform"]["s_per_1k"] == pytest.approx([1.0, 1.0, 1.0])
    assert rows["Transform"]["at_full_s"] == pytest.approx(523.0)
    assert rows["Pusher"]["noise"] and not rows["Transform"]["noise"]
    assert s["exponent_max_component"] == "Evaluator"  # Trainer (2.0) and Pusher (1.5, < 1 s) left out
    assert s["exponent_max"] == pytest.approx(1.05)
    assert s["rss_ratio_max_component"] == "Trainer"
    assert s["rss_ratio_max"] == pytest.approx(1800 / 1050)
    figs = {f.name: f for f in scale.figures(s)}
    assert figs["scale_exponent_max"].met and not figs["scale_rss_ratio_max"].met
    assert "| Transform | 5.0 / 20.0 / 80.0 | 1.000 / 1.000 / 1.000 | 1.00 | 523 | - | - | - |" in scale.table(s)
    assert rows["Transform"]["cpu_exponent"] is None  # records without CPU times


def test_cpu_exponent_when_recorded():
    recs = [_record(n, {"Transform": n / 1000}, {"Transform": 1000}) for n in (5000, 20000)]
    for r in recs:
        r["components"]["Transform"]["cpu_s"] = 2 * (r["images"] / 1000) ** 0.5
    row = scale.summarize(recs)["rows"][0]
    assert row["cpu_exponent"] == pytest.approx(0.5) and row["exponent"] == pytest.approx(1.0)
    assert row["cpu_at_full_s"] == pytest.approx(2 * 523 ** 0.5)
    assert "| 4.5 / 8.9 | 0.50 | 46 |" in scale.table(scale.summarize(recs))  # CPU s at 5k / 20k, k, at 523k


def test_merge_keeps_other_figures(tmp_path):
    from benchmarks.figures import Figure

    path = str(tmp_path / "bench-results.json")
    with open(path, "w") as f:
        json.dump({"default_run_s": {"value": 100.0, "goal": 300.0, "unit": "s", "better": "lower"}}, f)
    scale.merge_figures(path, [Figure("scale_exponent_max", 1.0, 1.1, "exponent", "lower")])
    with open(path) as f:
        got = json.load(f)
    assert set(got) == {"default_run_s", "scale_exponent_max"}
    assert got["default_run_s"]["value"] == 100.0


def test_config_scales_the_preset_sources(tmp_path):
    base = os.path.join(scale.ROOT, "configs", "default.yaml")
    path = str(tmp_path / "c.yaml")
    name = scale.write_config(base, 20000, str(tmp_path / "data"), 7, path)
    with open(path) as f:
        cfg = yaml.safe_load(f)
    assert name == cfg["name"] and cfg["train"]["steps"] == 7
    by_format = {s["format"]: s for s in cfg["sources"]}
    assert by_format["genki4k"]["sample"]["count"] + by_format["imdb_wiki"]["sample"]["count"] == 20000
    assert by_format["genki4k"]["sample"]["count"] == 6000
    assert by_format["genki4k"]["sample"]["size"] == cfg["image"]["size"][0]
    assert all(os.path.isabs(s["path"]) for s in cfg["sources"])
    from config import load

    assert load(path).train.steps == 7  # a valid config


def test_executions_read_from_mlmd_tables(tmp_path):
    db = str(tmp_path / "metadata.sqlite")
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE Execution (id INTEGER, type_id INTEGER, last_known_state INTEGER, name TEXT, external_id TEXT,"
        " create_time_since_epoch INTEGER, last_update_time_since_epoch INTEGER);"
        "CREATE TABLE Context (id INTEGER, type_id INTEGER, name TEXT);"
        "CREATE TABLE Association (id INTEGER, context_id INTEGER, execution_id INTEGER);"
        "INSERT INTO Execution VALUES (1, 1, 3, 'a', NULL, 1000, 3000), (2, 2, 5, 'b', NULL, 3100, 3200);"
        "INSERT INTO Context VALUES (1, 1, 'p'), (2, 2, 'p.ExampleGen'), (3, 2, 'p.Trainer'), (4, 3, 'run-1');"
        "INSERT INTO Association VALUES (1, 1, 1), (2, 2, 1), (3, 4, 1), (4, 1, 2), (5, 3, 2);")
    con.commit()
    con.close()
    assert run_sampler.executions(db, "p") == [("ExampleGen", 1000.0, 3000.0, "COMPLETE"),
                                         ("Trainer", 3100.0, 3200.0, "CACHED")]
    assert math.isclose(run_sampler.dir_bytes(str(tmp_path)), os.path.getsize(db))
