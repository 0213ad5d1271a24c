"""Design-space scans: many run configs as independent dask.distributed tasks, resumable.

``plan`` validates the scan file and the trials, ``runner`` submits them, ``worker`` runs
one trial, ``results`` rebuilds the table, Pareto fronts and report. Layout and
identity rules: docs/scans.md.
"""

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
from qtrigger.scan.runner import ScanResult, dry_run, run_scan, summary_text
from qtrigger.scan.worker import run_trial, summarise_metrics, write_result

__all__ = [
    "FAIL_ONCE_ENV", "Budgets", "ScanConfig", "ScanResult", "Trial", "collect_results", "dry_run",
    "load_scan_config", "pareto_front", "plan_trials", "run_scan", "run_trial", "scan_directory",
    "summarise_metrics", "summary_text", "trial_hash", "validate_scan_config", "write_outputs", "write_result",
]

