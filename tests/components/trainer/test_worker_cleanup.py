"""A non-chief worker of a multi-worker run leaves nothing behind: its TensorBoard
logs, `train.keep: best` weights and model copy go to temporary folders that
run_fn removes, also when the save fails (the crash issue 16 saw). One process,
with run_fn told it is not the chief."""
import os

import pytest

from config import parse
from tests.components.trainer import helpers


@pytest.mark.parametrize("fail_save", [False, True])
def test_non_chief_leaves_nothing_behind(transformed_data, tmp_path, monkeypatch, fail_save):
    import tempfile

    from components.trainer import run_fn as trainer

    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    monkeypatch.setattr(trainer, "is_chief", lambda strategy: False)
    made = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(*args, **kwargs):  # records the folders run_fn makes
        made.append(real_mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    if fail_save:
        def failing(*args, **kwargs):
            raise RuntimeError("save failed")
        monkeypatch.setattr(trainer, "make_signatures", failing)

    d = helpers.config_dict(size=(48, 48), batch_size=8)
    d["train"]["keep"] = "best"
    config = parse(d, base_dir=None)
    fn_args = helpers.fn_args_for(transformed_data, config, tmp_path / "run", 2, eval_steps=1)
    if fail_save:
        with pytest.raises(RuntimeError, match="save failed"):
            trainer.run_fn(fn_args)
    else:
        trainer.run_fn(fn_args)

    # the worker made its three folders (logs, best weights, model; the model's only when the save ran)
    assert [os.path.basename(p).split("_worker_")[0] for p in made] == (
        ["tb", "best"] if fail_save else ["tb", "best", "model"]), made
    assert [p for p in made if os.path.exists(p)] == []
    # (autograph writes its generated modules there too, and removes them at exit)
    assert [f for f in os.listdir(scratch_root) if not f.startswith("__autograph_generated_file")] == []
    assert not os.path.exists(fn_args.serving_model_dir)  # the chief's to write
    left = [os.path.join(r, f) for r, _, fs in os.walk(fn_args.model_run_dir) for f in fs]
    assert left == [], left
