"""Merging parity runs over disjoint seeds gives what one run over all of them would."""
import json

import pytest

from benchmarks import parity_merge

F32 = {"setting": "float32", "policy": "float32", "reason": "set in the config"}


def _write(path, seeds, pipe, ref, precision=F32, with_seeds=True):
    detail = {"precision": precision, "d": {"t": {"type": "binary", "pipeline": pipe, "reference": ref}}}
    if with_seeds:
        detail["seeds"] = seeds
    with open(path, "w") as f:
        json.dump({"train_parity": {"value": 0, "goal": -0.01, "unit": "acc points", "better": "higher",
                                    "detail": detail}}, f)
    return str(path)


def test_two_runs_merge_by_seed(tmp_path):
    a = _write(tmp_path / "a.json", [3], [0.5], [0.8])
    b = _write(tmp_path / "b.json", [1, 2], [0.9, 0.7], [0.8, 0.8], with_seeds=False)
    merged = parity_merge.merge([parity_merge.load_run(a, "train_parity"),
                                 parity_merge.load_run(b + "@1-2", "train_parity")])
    r = merged["datasets"]["d"]["t"]
    assert merged["seeds"] == [1, 2, 3]
    assert r["pipeline"] == [0.9, 0.7, 0.5] and r["reference"] == [0.8, 0.8, 0.8]
    assert r["gap"] == pytest.approx(-0.1)
    # diffs +0.1, -0.1, -0.3: sd 0.2, t(2) 4.303
    assert r["gap_ci95"] == pytest.approx([-0.1 - 4.303 * 0.2 / 3 ** 0.5, -0.1 + 4.303 * 0.2 / 3 ** 0.5])


def test_overlapping_seeds_and_other_precisions_are_refused(tmp_path):
    a = _write(tmp_path / "a.json", [1, 2], [0.9, 0.7], [0.8, 0.8])
    b = _write(tmp_path / "b.json", [2], [0.5], [0.8])
    with pytest.raises(ValueError, match=r"seeds \[2\] are in more than one run"):
        parity_merge.merge([parity_merge.load_run(p, "train_parity") for p in (a, b)])
    c = _write(tmp_path / "c.json", [3], [0.5], [0.8], precision={**F32, "policy": "mixed_bfloat16"})
    with pytest.raises(ValueError, match=r"different dtype policies: \['float32', 'mixed_bfloat16'\]"):
        parity_merge.merge([parity_merge.load_run(p, "train_parity") for p in (a, c)])


def test_auto_and_the_policy_it_chose_merge(tmp_path):
    a = _write(tmp_path / "a.json", [1], [0.9], [0.8], precision={**F32, "setting": "auto", "reason": "no GPU"})
    b = _write(tmp_path / "b.json", [2], [0.7], [0.8])
    merged = parity_merge.merge([parity_merge.load_run(p, "train_parity") for p in (a, b)])
    assert merged["datasets"]["d"]["t"]["pipeline"] == [0.9, 0.7]


def test_a_file_without_its_seeds_needs_them_named(tmp_path, capsys):
    a = _write(tmp_path / "a.json", [1], [0.9], [0.8], with_seeds=False)
    assert parity_merge.main([a]) == 2
    assert "does not record its seeds; write" in capsys.readouterr().err
    assert parity_merge.main([a + "@1-1", "--figure", "train_parity_float32"]) == 2
    assert "no figure 'train_parity_float32'; it has train_parity" in capsys.readouterr().err
    assert parity_merge.main([a + "@1-1"]) == 0
    assert "worst gap: d/t +0.100 over 1 seeds" in capsys.readouterr().out
