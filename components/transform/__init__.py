"""Transform's module file: `preprocessing.preprocessing_fn`, referenced by name."""
