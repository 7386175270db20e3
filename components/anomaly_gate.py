"""Fails the run when ExampleValidator found anomalies against the contract.

ExampleValidator only records anomalies; downstream components would train
on data that breaks the schema. Transform waits on this gate, so a run with
anomalies stops here with a message that lists them.
"""

import os

from tfx import v1 as tfx
from tfx.types import artifact_utils

from components.artifacts import PipelineGate
from config import split_dir


def read_anomalies(anomalies_uri: str, splits: list[str]) -> dict[str, list[str]]:
    """Maps each split with anomalies to readable `feature: description` lines."""
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found: dict[str, list[str]] = {}
    for split in splits:
        path = os.path.join(split_dir(anomalies_uri, split), "SchemaDiff.pb")
        if not tf.io.gfile.exists(path):
            continue
        msg = anomalies_pb2.Anomalies()
        msg.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
        lines = [f"{name}: {info.short_description or info.description}"
                 for name, info in sorted(msg.anomaly_info.items())]
        if msg.HasField("dataset_anomaly_info"):
            lines.append(f"<dataset>: {msg.dataset_anomaly_info.description}")
        if lines:
            found[split] = lines
    return found


@tfx.dsl.components.component
def AnomalyGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    gate: tfx.dsl.components.OutputArtifact[PipelineGate],
):
    splits = artifact_utils.decode_split_names(anomalies.split_names)
    found = read_anomalies(anomalies.uri, splits)
    if found:
        detail = "; ".join(f"{split}: {', '.join(lines)}" for split, lines in found.items())
        raise RuntimeError(
            f"the converted examples break the data contract schema ({detail}). "
            f"Anomalies are in {anomalies.uri}.")
    gate.set_int_custom_property("passed", 1)
