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

Packages, in data-flow order (an import may only point down this list; tests/test_structure.py):

- root helpers  ``errors``, ``runtime`` (signals, dask client), ``device``, ``fixedpoint``, ``metrics``,
  ``plotting``, ``results`` (typed stage results, ``metrics.json``)
- ``rundir``    outputs that appear only when complete: atomic files, locks, staging, stamps, provenance
- ``config``    YAML → validated :class:`~qtrigger.config.RunConfig`
- ``data``      ROOT ``Events`` → :class:`~qtrigger.data.reader.JetTable`, ``Runs`` trees and stitching
- ``generate``  Pythia 8 + FastJet samples in the NanoAOD schema (extra ``.[generate]``)
- ``inputs``    fixed-point words at the source: per-jet features, seed jets, event rows, constituents
- ``models``    model forms (MLP, DeepSets), batch-norm folding, pruning, training
- ``emulate``   the exact int64 reference of a trained network
- ``firmware``  hls4ml conversion, C-simulation, ``hls check``, da4ml RTL, Verilator, yosys, vendor builds
- ``estimate``  latency and resource estimates without a vendor tool
- ``trigger``   seeds, rates, working points, trigger studies, accept bits, the event seed's RTL
- ``levels``    input levels (``features.level``): what a run asks of its rows, one module per level
- ``runs``      the run pipeline, preflight, report, finished runs and the verbs on them
- ``scan``      design-space scans on dask.distributed
- ``cli``       argument parsing only, one module per command group
"""

import os as _os

# tf-keras (Keras 2 API) must be chosen before TensorFlow is first imported.
_os.environ["TF_USE_LEGACY_KERAS"] = "1"

__version__ = "0.2.0"

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
