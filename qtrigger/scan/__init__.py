"""Design-space scans: many run configs as independent tasks on dask.distributed, resumable.

A scan file (``configs/scan_*.yaml``) names a base run config, overrides applied to every
trial, and axes (config key → values). Every trial's resolved config is validated as a
:class:`~qtrigger.config.RunConfig` before anything runs. A trial is identified by the
first 12 hex digits of the sha256 of its resolved config as canonical JSON (without the
keys the scan itself sets: ``name``, ``output_dir``, ``hls.output_dir``,
``training.threads``, ``training.verbose``), so the same point has the same identity
whatever the worker count or output directory.

Layout of ``<output_dir>/<name>/``::

    scan.resolved.yaml     the scan config as run, and the resolved base config path
    trials.json            every planned trial: hash, index, axis values
    trials/<hash>/         one trial: <name>_<hash>/ (its run directory), hls/<name>_<hash>/,
                           attempts.jsonl (one line per attempt), trial.log (its output),
                           result.json (written last via rename: exists only when complete)
    results.parquet/.csv   rebuilt from the result files on every scan (never appended)
    pareto.png, report.md  signal efficiency vs estimated LUTs and vs latency

Each trial is one task (:func:`run_trial`); by default on a
``LocalCluster(n_workers=N, threads_per_worker=1, processes=True)``, or on any existing
cluster (``scheduler="tcp://host:8786"``). Each task sets TensorFlow's thread count to
``threads_per_worker`` so workers do not oversubscribe the machine. A worker that dies
mid-trial makes the trial run again (at most ``retries`` more times); a trial that fails
records its one-line error in its result file and the scan goes on.
"""


from qtrigger.scan.cli import add_arguments, run_from_args, summary_text
from qtrigger.scan.plan import (
    FAIL_ONCE_ENV,
    Budgets,
    ScanConfig,
    Trial,
    load_scan_config,
    plan_trials,
    scan_directory,
    trial_hash,
    validate_scan_config,
)
from qtrigger.scan.results import collect_results, pareto_front, write_outputs
from qtrigger.scan.runner import ScanResult, run_scan
from qtrigger.scan.worker import run_trial, summarise_metrics, write_result

__all__ = [
    "FAIL_ONCE_ENV", "Budgets", "ScanConfig", "ScanResult", "Trial", "add_arguments", "collect_results",
    "load_scan_config", "pareto_front", "plan_trials", "run_from_args", "run_scan", "run_trial", "scan_directory",
    "summarise_metrics", "summary_text", "trial_hash", "validate_scan_config", "write_outputs", "write_result",
]
