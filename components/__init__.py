"""Code the TFX components call: custom components, Transform's
preprocessing_fn, the Trainer's run_fn, the EvalConfig and the report."""
