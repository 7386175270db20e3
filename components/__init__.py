"""Code the TFX components call: custom components, Transform's
preprocessing_fn, the Trainer's run_fn, the EvalConfig and the report."""

# Artifact classes are imported by their TYPE_NAME (`components.<Class>`) when
# a Kubeflow pod rebuilds them, so they must be reachable from this package.
from components.artifacts import PipelineGate, PrepReport, Report  # noqa: E402,F401
