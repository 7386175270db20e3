"""Plumbing of benchmarks/prep.py at tiny size (the figures themselves come from `python -m benchmarks`)."""
import os

from benchmarks import prep


def test_pil_loop_preps_the_images_the_conversion_writes(tmp_path):
    from data_prep.generate import generate_missing

    config = prep.utk_config(str(tmp_path / "u"), ["gender"], 41)
    generate_missing(config)
    n, secs = prep.pil_loop(config)
    assert n == 40 and secs > 0  # the generator's file i = 17 has no race field: rejected, so not prepped
    stats, _ = prep.beam_run(config, str(tmp_path / "out"), [])
    assert stats["sources"]["utk"]["written"] == n


def test_utkface_per_task_figures(tmp_path):
    figures = {f.name: f for f in prep.utkface_per_task(str(tmp_path), 12)}
    assert set(figures) == {"utkface_per_task_bytes_ratio", "utkface_per_task_time_ratio"}
    # 3 examples per image store more than 1, and less than 3 full copies (gzip sees the repeats)
    assert 1.0 < figures["utkface_per_task_bytes_ratio"].value < 3.0
    assert figures["utkface_per_task_time_ratio"].value > 0


def test_link_copies_are_distinct_chips_of_the_same_files(tmp_path):
    from data_prep.generate import generate_missing

    config = prep.utk_config(str(tmp_path / "u"), ["gender"], 41)
    generate_missing(config)
    prep.link_copies(str(tmp_path / "u"), str(tmp_path / "u3"), 3)
    linked = sorted(os.listdir(tmp_path / "u3"))
    assert len(linked) == 3 * 41 and len(set(linked)) == len(linked)
    assert sum(prep._valid(name) for name in linked) == 3 * 40  # the malformed name stays malformed, thrice
    first = sorted(os.listdir(tmp_path / "u"))[0]
    assert os.path.samefile(tmp_path / "u" / first, tmp_path / "u3" / first.replace(".", "0.", 1))
