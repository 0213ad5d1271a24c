"""``qtrigger scan``: a design-space scan on dask.distributed (resumable)."""

from __future__ import annotations


def add_parser(commands) -> None:
    """Register ``scan``."""
    scan = commands.add_parser("scan", help="design-space scan on dask.distributed (resumable)")
    add_arguments(scan)
    scan.set_defaults(handler=run_from_args)


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
    """0 when every trial succeeded, 1 when some failed (results are written either way)."""
    from qtrigger.scan import load_scan_config, run_scan, summary_text
    from qtrigger.scan.runner import dry_run

    scan = load_scan_config(args.config, args.overrides, run_overrides=args.run_overrides)
    if args.dry_run:
        print(dry_run(scan, args.workers, args.threads_per_worker, args.scheduler))
        return 0
    result = run_scan(scan, workers=args.workers, scheduler=args.scheduler, resume=args.resume,
                      progress=not args.no_progress, threads_per_worker=args.threads_per_worker,
                      overwrite=args.overwrite, retry_failed=args.retry_failed)
    print(summary_text(result))
    return 0 if result.failed == 0 and result.missing == 0 else 1
