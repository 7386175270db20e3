"""The conversion writes records in a seeded hash order, so windows of its files are unbiased draws."""
import io
import os

import numpy as np
from PIL import Image

from data_prep.convert import list_source_records, stream_order
from data_prep.records import RawRecord
from tests.data_prep.helpers import feature, make_config, read_examples

CLASSES = ["neutral", "happy", "sad"]
PER_CLASS = 60
WINDOW = 30


def max_class_share(labels, window: int = WINDOW) -> float:
    """Mean over consecutive windows of the largest share one class takes of the window."""
    labels = np.asarray(labels)
    n = len(labels) // window
    return float(np.mean([np.bincount(labels[i * window:(i + 1) * window], minlength=len(CLASSES)).max() / window
                          for i in range(n)]))


def independent_draw_bound(labels, draws: int = 400, quantile: float = 0.99) -> float:
    """The `quantile` of max_class_share over random orders of the same labels."""
    rng = np.random.default_rng(0)
    return float(np.quantile([max_class_share(rng.permutation(labels)) for _ in range(draws)], quantile))


def _folder_source(root: str) -> None:
    for c, name in enumerate(CLASSES):
        os.makedirs(f"{root}/{name}")
        for i in range(PER_CLASS):
            buf = io.BytesIO()
            Image.fromarray(np.full((8, 8), 40 * c + i % 7, np.uint8), "L").save(buf, format="PNG")
            open(f"{root}/{name}/img{i:03d}.png", "wb").write(buf.getvalue())


def _config(root: str, salt: str = ""):
    return make_config(root, [{"name": "faces", "format": "folder", "path": f"{root}/faces", "tasks": ["mood"]}],
                       splits={"eval": 0.2, "salt": salt})


def test_stream_order_is_a_seeded_permutation():
    config = _config("/nowhere")
    records = [RawRecord(f"{c}/img{i:03d}.png", "", {}) for c in CLASSES for i in range(PER_CLASS)]
    ordered = stream_order(records, config)
    assert sorted(r.raw_id for r in ordered) == sorted(r.raw_id for r in records)
    assert stream_order(list(reversed(records)), config) == ordered  # whatever the listing's order
    assert stream_order(records, _config("/nowhere", salt="b")) != ordered  # the salt draws another
    labels = [CLASSES.index(r.raw_id.split("/")[0]) for r in ordered]
    listed = [CLASSES.index(r.raw_id.split("/")[0]) for r in records]
    bound = independent_draw_bound(listed)
    assert max_class_share(listed) == 1.0 > bound  # class by class, as the folder format lists
    assert max_class_share(labels) <= bound


def test_converted_files_mix_classes_like_an_independent_draw(tmp_path):
    from data_prep.beam_job import run_conversion

    root = str(tmp_path)
    _folder_source(f"{root}/faces")
    config = _config(root)
    listed = [CLASSES.index(r.fields["class_name"]) for r in list_source_records(config.sources[0], config)]
    assert max_class_share(listed) == 1.0  # the listing is sorted by class folder
    run_conversion(config, f"{root}/out/examples", f"{root}/out/dead", f"{root}/out/prep_stats.json")
    examples = read_examples(f"{root}/out/examples/Split-train_faces/data_tfrecord-*.gz")
    labels = [feature(ex, "label").index(1.0) for ex in examples]
    assert len(labels) > 120
    assert max_class_share(labels) <= independent_draw_bound(labels)
