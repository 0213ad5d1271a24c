"""``qtrigger scan`` argument parsing and summary."""

from __future__ import annotations



from qtrigger.scan.plan import load_scan_config, plan_trials, scan_directory, validate_scan_config
from qtrigger.scan.results import _cell
from qtrigger.scan.runner import ScanResult, default_parallelism, run_scan
from qtrigger.scan.worker import _read_result




# ----------------------------------------------------------------------------------------
# CLI glue


def add_arguments(parser) -> None:
    """Arguments of ``qtrigger scan``."""
    parser.add_argument("config", help="scan config YAML, e.g. configs/scan_ci.yaml")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="local worker processes (default: cores / threads-per-worker)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run on an existing Dask cluster, e.g. tcp://host:8786 (instead of a local one)")
    parser.add_argument("--threads-per-worker", type=int, default=None, metavar="T",
                        help="TensorFlow threads per trial (default: cores / workers locally, 1 on --scheduler)")
    parser.add_argument("--resume", action="store_true", help="skip trials whose result.json exists")
    parser.add_argument("--retry-failed", action="store_true", help="with --resume: run failed trials again too")
    parser.add_argument("--overwrite", action="store_true", help="run every trial again")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a scan-file key, e.g. --set output_dir=/tmp/scans --set max_trials=4")
    parser.add_argument("--run-set", dest="run_overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="add a run-config override for every trial, e.g. --run-set training.epochs=2")
    parser.add_argument("--dry-run", action="store_true", help="list the trials (validated) and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_from_args(args) -> int:
    """``qtrigger scan``: 0 when every trial succeeded, 1 when some failed (results are written either way)."""
    scan = load_scan_config(args.config, args.overrides)
    if args.run_overrides:
        raw = scan.model_dump()
        raw["overrides"] = list(scan.overrides) + list(args.run_overrides)
        source = scan.source
        scan = validate_scan_config(raw, source=f"{args.config} (--run-set)")
        scan._source = source
    if args.dry_run:
        _, threads = default_parallelism(args.workers, args.threads_per_worker, args.scheduler)
        trials = plan_trials(scan, threads)
        scan_dir = scan_directory(scan)
        for trial in trials:
            result = _read_result(scan_dir / "trials" / trial.hash)
            print(f"{trial.hash}  {(result or {}).get('status', 'pending'):8s} {trial.label}")
        print(f"{len(trials)} trials, all valid; outputs in {scan_dir}")
        return 0
    result = run_scan(scan, workers=args.workers, scheduler=args.scheduler, resume=args.resume,
                      progress=not args.no_progress, threads_per_worker=args.threads_per_worker,
                      overwrite=args.overwrite, retry_failed=args.retry_failed)
    print(summary_text(result))
    return 0 if result.failed == 0 and result.missing == 0 else 1


def summary_text(result: ScanResult) -> str:
    """A few lines for the terminal."""
    where = f"{result.workers} workers" if result.workers else "the cluster"
    lines = [f"scan {result.name}: {result.trials} trials — {result.ok} ok, {result.failed} failed"
             + (f", {result.skipped} already done" if result.skipped else "")
             + (f", {result.worker_deaths} worker deaths (retried)" if result.worker_deaths else "")
             + f"; {result.wall_seconds:g} s on {where} × {result.threads_per_worker} TensorFlow thread(s)"]
    table = result.table
    for kind, column in result.cost_axes.items():
        front = table[table["hash"].isin(result.pareto.get(kind, []))].sort_values(column)
        note = " (no hardware estimate: non-zero parameters)" if column == "nonzero_parameters" else ""
        lines.append(f"Pareto front, signal efficiency vs {column}{note}:")
        for _, row in front.iterrows():
            fits = {"yes": "fits budgets", "no": "over budget"}.get(_cell(row["fits_budgets"]), "")
            lines.append(f"  {row['hash']}  eff {row['signal_efficiency']:.4f}  {column} {row[column]:g}  {fits}")
    lines.append(f"results: {result.results_path} (and .csv), {result.plot_path}, {result.report_path}")
    return "\n".join(lines)

