"""The pipeline definition: typed config and `create_pipeline`."""
