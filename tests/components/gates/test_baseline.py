"""The baseline is the newest blessed model that is not the candidate."""
from tfx.types import standard_artifacts

from components.baseline import latest_blessed_other_than


def model(i):
    m = standard_artifacts.Model()
    m.id = i
    return m


def blessing(model_id, blessed):
    b = standard_artifacts.ModelBlessing()
    b.set_int_custom_property("current_model_id", model_id)
    b.set_int_custom_property("blessed", int(blessed))
    return b


def test_skips_candidate_and_unblessed_models():
    models = [model(1), model(2), model(3), model(4)]
    blessings = [blessing(1, True), blessing(2, True), blessing(3, False), blessing(4, True)]
    # 4 is the candidate, 3 was not blessed: the baseline is 2, the newest other blessed one
    m, b = latest_blessed_other_than(models, blessings, {4})
    assert m.id == 2 and b.get_int_custom_property("current_model_id") == 2


def test_first_run_and_unchanged_rerun_have_no_baseline():
    assert latest_blessed_other_than([], [], set()) == (None, None)
    # rerun with the cached candidate 1, itself blessed by the first run
    assert latest_blessed_other_than([model(1)], [blessing(1, True)], {1}) == (None, None)
