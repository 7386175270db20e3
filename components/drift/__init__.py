"""DriftGate: the newest spans data against the previous spans (docs/drift.md)."""
