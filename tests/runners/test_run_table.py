"""run_local's per-task table shows each task's primary metric beside its chance."""
import run_local


def test_table_uses_the_chance_metric_and_averages_per_label_metrics():
    report = {"tasks": {
        "age": {"type": "regression", "eval_examples": 10, "chance": 16.5, "chance_metric": "mean_absolute_error",
                "metrics": {"example_count": 10.0, "mean_absolute_error": 7.25}},
        "tags": {"type": "multilabel", "eval_examples": 4, "chance": 0.5, "chance_metric": "binary_accuracy",
                 "metrics": {"auc/a": 0.9, "binary_accuracy/a": 0.75, "binary_accuracy/b": 1.0}},
        "smile": {"type": "binary", "eval_examples": 3, "chance": 0.5, "metrics": {"accuracy": 2 / 3}},
    }}
    lines = run_local.format_table(report).splitlines()
    assert [line.split() for line in lines] == [
        ["task", "type", "eval", "n", "chance", "metric", "value"],
        ["age", "regression", "10", "16.500", "mean_absolute_error", "7.250"],
        ["tags", "multilabel", "4", "0.500", "mean", "binary_accuracy", "0.875"],
        ["smile", "binary", "3", "0.500", "accuracy", "0.667"],
    ]
