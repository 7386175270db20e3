"""The one DAG definition: `pipeline.create_pipeline`, which every runner configures."""
