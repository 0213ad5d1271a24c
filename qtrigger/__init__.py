"""qtrigger: from NanoAOD jets to a bit-exact, quantization-aware L1 trigger network.

Entry verbs (each is also a CLI command, ``qtrigger --help``):

- :func:`qtrigger.pipeline.run` — one config → trained QKeras model, float twin, hls4ml
  project, bit-exact C-simulation check, ``runs/<name>/`` with metrics and plots.
- :func:`qtrigger.pipeline.evaluate` — apply a trained run to other ROOT files.
- :func:`qtrigger.generate.generate_sample` — Pythia 8 + FastJet jets in NanoAOD schema.

Modules, in data-flow order:

- ``config``      YAML → validated :class:`~qtrigger.config.RunConfig`
- ``data``        ROOT ``Events`` → :class:`~qtrigger.data.JetTable` (one row per jet), labels, event split
- ``preprocess``  physical values → fixed-point codes → network inputs (power-of-two shifts)
- ``model``       QKeras MLP and float twin, tfmot pruning
- ``train``       seeded, deterministic Keras training
- ``fixedpoint``  fixed-point types; ``emulate``: exact integer emulation of the quantized network
- ``firmware``    hls4ml conversion (via ``hls4ml_compat``), C-simulation, bit-exact comparison
- ``metrics``     ROC/AUC and working points (pure numpy)
- ``report``      run directory, ``metrics.json``, ``report.md``, plots
- ``hardware``    latency/resource estimates, budgets, Vivado/Vitis report parsing and builds
- ``da``          distributed-arithmetic (da4ml) cost and the Verilator RTL check (extra ``.[rtl]``)
- ``trigger``, ``trigger_study``  event-level seed, rates, threshold codes, references
- ``check``, ``compare``, ``validate``  bit-exactness diagnosis, float/QAT/PTQ/C-sim table, data validation
- ``scan``        design-space scans on dask.distributed
- ``generate``    physics sample generator (optional extra ``.[generate]``)
"""

import os as _os

# tf-keras (Keras 2 API) must be chosen before TensorFlow is first imported.
_os.environ["TF_USE_LEGACY_KERAS"] = "1"

__version__ = "0.1.0"
