"""Code two or more component sub-packages share, below all of them: the
sub-packages (`example_gen`, `transform`, `trainer`, `evaluator`, `report`)
never import each other (import-linter's `independence` contract in
pyproject.toml), so what one writes and another reads lives here:

- `eval_config`: the Evaluator's `tfma.EvalConfig` built from the run config,
  and the metric definitions the report reads its output by;
- `tfma_values`: a TFMA metric key's class id and a metric's 95 % interval;
- `interval_bounds`: the value thresholds an interval's worse end misses
  (`evaluation.gate_on: lower_bound`: the Evaluator's gate and the report's reason);
- `probe_file`: the Trainer's `gradient_conflict.json`, written by its
  gradient-conflict probe and read by the report.

Imports only `config` and the modules at the components root, never a sub-package.
"""
