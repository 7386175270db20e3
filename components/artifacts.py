"""Artifact types this project adds to the standard TFX ones."""
from tfx.types.artifact import Artifact


class PrepReport(Artifact):
    """Conversion accounting: `prep_stats.json` and the dead-letter records."""

    TYPE_NAME = "components.PrepReport"


class PipelineGate(Artifact):
    """Proof that a check passed; consumers wait for it."""

    TYPE_NAME = "components.PipelineGate"


class Report(Artifact):
    """The per-task report (`report.json`, `index.html`)."""

    TYPE_NAME = "components.Report"


class DriftReport(Artifact):
    """The newest span against the previous one: `drift.json` (components/drift)."""

    TYPE_NAME = "components.DriftReport"
