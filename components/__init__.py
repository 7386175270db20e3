"""Code the TFX components run, one sub-package per component as TFX lays out
its own: `example_gen/`, `drift/`, `transform/`, `trainer/`, `evaluator/`,
`report/`, plus the small `anomaly_gate` and `baseline` (the served model as
the Evaluator's baseline) and the project's artifact types (`artifacts`)."""

# Artifact classes are imported by their TYPE_NAME (`components.<Class>`) when
# a Kubeflow pod rebuilds them, so they must be reachable from this package.
from components.artifacts import DriftReport, PipelineGate, PrepReport, Report  # noqa: F401
