"""The Evaluator's baseline: the model being served now, read from the push destination.

A regression guard should compare the new model with the one it would
replace, and that is the model the Pusher last wrote, not whatever MLMD
calls blessed. Picking it is an ordinary container task, so the same DAG runs
under LocalDagRunner, open-source Kubeflow Pipelines (whose backends execute
no `resolver` tasks: a TFX `Resolver` compiles to those) and Vertex AI
(docs/kubeflow.md).

`PushedModelBaseline` takes the Trainer's model as its input. That orders it
after the Trainer, before the Evaluator and so before this run's Pusher, and
makes it part of the cache key: an unchanged rerun reuses the cached Trainer,
this task and the Evaluator (no new model, so no new comparison), while a new
model is always compared with what serves when it is evaluated.

Its output is a `Model` artifact holding a copy of the served SavedModel
under `Format-Serving/`, the layout the Evaluator reads. With nothing pushed
yet the artifact is empty and says so (`found` = 0); the Evaluator then runs
without a baseline, as on a first run (components/evaluator/executor.py).
"""

import posixpath

from tfx import v1 as tfx

from serving.predict import pushed_versions  # the one rule for what serves now

# Custom properties of the output (also read by the Evaluator and the report).
FOUND = "found"
PUSHED_VERSION = "pushed_version"
PUSHED_PATH = "pushed_path"
# The Evaluator reads a Model artifact's SavedModel from here (tfx.utils.path_utils).
SERVING_SUBDIR = "Format-Serving"


def _join(*parts: str) -> str:
    # posixpath keeps gs:// URLs intact; os.path would do the same on Linux only.
    return posixpath.join(*parts)


def pick_baseline(push_destination: str, baseline) -> str | None:
    """Fills the `baseline` Model artifact with the newest push; returns its version, None if none."""
    versions = pushed_versions(push_destination)
    baseline.set_string_custom_property(PUSHED_PATH, "")
    baseline.set_string_custom_property(PUSHED_VERSION, "")
    baseline.set_int_custom_property(FOUND, 0)
    if not versions:
        return None
    version = versions[-1]
    source = _join(push_destination, version)
    from tfx.utils import io_utils

    io_utils.copy_dir(source, _join(baseline.uri, SERVING_SUBDIR))  # as the Pusher copies
    baseline.set_string_custom_property(PUSHED_PATH, source)
    baseline.set_string_custom_property(PUSHED_VERSION, version)
    baseline.set_int_custom_property(FOUND, 1)
    return version


def has_baseline(model) -> bool:
    """False for the empty artifact `PushedModelBaseline` writes when nothing was pushed yet."""
    return not (model.has_custom_property(FOUND) and model.get_int_custom_property(FOUND) == 0)


@tfx.dsl.components.component
def PushedModelBaseline(
    candidate: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    baseline: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
    push_destination: tfx.dsl.components.Parameter[str],
):
    """The model serving now (the newest push under `push_destination`) as the Evaluator's baseline."""
    del candidate  # an input only for the order and the cache key (module docstring)
    version = pick_baseline(push_destination, baseline)
    if version is None:
        print(f"baseline: nothing pushed under {push_destination} yet; evaluating without one")
    else:
        print(f"baseline: the served model {_join(push_destination, version)}")
