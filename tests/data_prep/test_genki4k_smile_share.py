"""genki4k's sample `smile_share`: a second delivery with another label distribution (docs/drift.md)."""
import dataclasses

import pytest

from data_prep.generate import generate_missing
from data_prep.generators import genki4k
from tests.data_prep.helpers import make_config


def _generate(root, **kwargs):
    config = make_config(str(root), [{"name": "g", "format": "genki4k", "path": str(root / "g"), "tasks": ["smile"]}])
    genki4k.generate(config.sources[0], config, **kwargs)
    lines = (root / "g" / "labels.txt").read_text().splitlines()
    return [line.split(" ", 1) for line in lines], {p.name: p.read_bytes() for p in (root / "g" / "files").iterdir()}


def test_the_default_is_the_share_of_before(tmp_path):
    """0.54 (GENKI-4K's 2162 / 4000) is the default; naming it gives the same bytes."""
    assert genki4k.SMILE_SHARE == 0.54
    default = _generate(tmp_path / "a", count=30, seed=5)
    assert _generate(tmp_path / "b", count=30, seed=5, smile_share=0.54) == default


def test_a_larger_share_moves_labels_only(tmp_path):
    """The same draws whatever the share: every pose line stays, labels only go 0 -> 1, and only
    the images of those records change (their face shows the new label's cue)."""
    (lines, images), (lines85, images85) = (_generate(tmp_path / "a", count=400, seed=3),
                                           _generate(tmp_path / "b", count=400, seed=3, smile_share=0.85))
    assert [pose for _, pose in lines] == [pose for _, pose in lines85]
    moved = [k for k, ((a, _), (b, _)) in enumerate(zip(lines, lines85), 1) if a != b]
    assert moved and all(lines[k - 1][0] == "0" and lines85[k - 1][0] == "1" for k in moved)
    assert {name for name in images if images[name] != images85[name]} == {f"file{k:04d}.jpg" for k in moved}
    smiles = sum(label == "1" for label, _ in lines85)
    assert 0.80 <= smiles / 400 <= 0.90  # 0.85 +- 2.8 sd (sd = sqrt(0.85 * 0.15 / 400) = 0.018)
    assert 0.47 <= sum(label == "1" for label, _ in lines) / 400 <= 0.61  # 0.54 +- 2.8 sd (0.025)


def test_a_sample_mapping_takes_it(tmp_path):
    config = make_config(str(tmp_path), [{"name": "g", "format": "genki4k", "path": str(tmp_path / "g"),
                                          "tasks": ["smile"], "sample": {"count": 40, "seed": 1, "smile_share": 0.9}}])
    assert generate_missing(config) == [str(tmp_path / "g")]
    other = dataclasses.replace(config.sources[0], path=str(tmp_path / "h"))
    genki4k.generate(other, config, count=40, seed=1, smile_share=0.9)
    assert (tmp_path / "g" / "labels.txt").read_bytes() == (tmp_path / "h" / "labels.txt").read_bytes()


@pytest.mark.parametrize("share", [0, 1, 1.5, -0.2, True, "0.8", None])
def test_a_share_outside_0_1_names_the_value(tmp_path, share):
    config = make_config(str(tmp_path), [{"name": "g", "format": "genki4k", "path": str(tmp_path / "g"),
                                          "tasks": ["smile"]}])
    with pytest.raises(ValueError, match=rf"smile_share must be a probability strictly between 0 and 1, "
                                         rf"received {share!r}"):
        genki4k.generate(config.sources[0], config, count=2, smile_share=share)
    assert not (tmp_path / "g").exists()  # checked before anything is written
