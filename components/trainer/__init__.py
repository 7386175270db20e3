"""The Trainer's module file code: `run_fn.run_fn` (referenced by name from the
pipeline), the tf.data input (`input_pipeline`, `samplers`), the model it fits
(`training_model`, `loss_weighting`, `optimizer`), training-time augmentation,
which weights are kept (`keep`) and the saved model's signatures."""
