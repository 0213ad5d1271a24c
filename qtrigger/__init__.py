"""qtrigger: from NanoAOD jets to a bit-exact, quantization-aware L1 trigger network.

Entry verbs (each is also a CLI command, ``qtrigger --help``; imported lazily, so
``import qtrigger`` loads neither TensorFlow nor hls4ml):

- :func:`load_config`      YAML (+ ``key=value`` overrides) → validated ``RunConfig``
- :func:`run`              one config → trained QKeras model, HLS project, C-simulation, ``runs/<name>/``
- :func:`evaluate`         apply a finished run to other ROOT files
- :func:`compare_run`      float vs QAT vs post-training fixed point vs C-simulation of a run
- :func:`hls_check`        bit-exactness of a run (or a saved QKeras model) in C-simulation
- :func:`generate_sample`  Pythia 8 + FastJet jets in NanoAOD schema
- :func:`run_scan`         design-space scan on dask.distributed
- :class:`FinishedRun`     open a finished run directory; :class:`RunResult` its ``metrics.json``

Modules, in data-flow order:

- ``config``      YAML → validated :class:`~qtrigger.config.RunConfig`; ``preflight``: inputs/tools checked up front
- ``data``        ROOT ``Events`` → :class:`~qtrigger.data.reader.JetTable` (one row per jet), labels, event split
- ``preprocess``  physical values → fixed-point codes → network inputs (power-of-two shifts)
- ``event_inputs``  per event: the seed's jet words → Δφ, HT, jet count codes (``features.level: event``);
  ``event_pipeline``: an event-level run (preselection, physical event weights, event trigger study)
- ``model``, ``train``  QKeras MLP and float twin, tfmot pruning, seeded training
- ``fixedpoint``, ``emulate``  fixed-point types; exact integer emulation of the quantized network
- ``firmware``, ``check``  hls4ml conversion (via ``hls4ml_compat``), C-simulation, bit-exactness diagnosis
- ``hardware``, ``da``  latency/resource estimates, vendor reports and builds; da4ml and Verilator
- ``trigger``, ``trigger_study``  event-level seed, rates, threshold codes, references
- ``metrics``, ``results``, ``report``, ``plotting``  ROC/AUC, typed run results, run report, plot style
- ``rundir``, ``runtime``  locked, staged outputs and provenance; process set-up (signals, logs)
- ``commands``, ``compare``, ``validate``  verbs on finished runs and files
- ``scan``        design-space scans; ``generate``: physics sample generator (extra ``.[generate]``)
- ``cli``         argument parsing only, one module per command group
"""

import os as _os

# tf-keras (Keras 2 API) must be chosen before TensorFlow is first imported.
_os.environ["TF_USE_LEGACY_KERAS"] = "1"

__version__ = "0.1.0"

_VERBS = {
    "load_config": "qtrigger.config",
    "run": "qtrigger.runs.pipeline",
    "evaluate": "qtrigger.runs.evaluation",
    "compare_run": "qtrigger.runs.compare",
    "hls_check": "qtrigger.runs.commands",
    "generate_sample": "qtrigger.generate",
    "run_scan": "qtrigger.scan",
    "FinishedRun": "qtrigger.runs.finished",
    "RunResult": "qtrigger.results",
    "QTriggerError": "qtrigger.errors",
}
__all__ = sorted(_VERBS)


def __getattr__(name: str):
    """Import an entry verb on first use (PEP 562), so that ``import qtrigger`` stays light."""
    module = _VERBS.get(name)
    if module is None:
        raise AttributeError(f"module 'qtrigger' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(set(globals()) | set(_VERBS))
