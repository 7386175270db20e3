"""The Evaluator: the metrics TFMA's stock set lacks (`metrics`, referenced by
module name from the EvalConfig), the baseline-aware executor (`executor`) and the
interval-gated Evaluator (`interval_gate`, `evaluation.gate_on: lower_bound`).
The `tfma.EvalConfig` built from the run config, and the interval check, are
read by the report too: they are in components/common/ (`eval_config`,
`interval_bounds`)."""
