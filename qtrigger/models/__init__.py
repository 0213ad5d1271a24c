"""Models (after ``inputs``): QKeras networks built from the config, and their training.

- :mod:`~qtrigger.models.build` — the registry of model forms (``model.form``), pruning wrappers, saved models;
- :mod:`~qtrigger.models.mlp`, :mod:`~qtrigger.models.deepsets` — the built-in forms (QAT model and float twin);
- :mod:`~qtrigger.models.batchnorm` — batch normalization folded into the quantized weights;
- :mod:`~qtrigger.models.train` — seeded training, early stopping, event weights.

TensorFlow is imported inside the functions that need it, so that ``import qtrigger`` stays light.
"""
