"""The Evaluator's configuration: the `tfma.EvalConfig` built from the run config
(`eval_config`), the metrics TFMA's stock set lacks (`metrics`, referenced by
module name from the EvalConfig) and the interval-gated Evaluator
(`interval_gate`, `evaluation.gate_on: lower_bound`)."""
