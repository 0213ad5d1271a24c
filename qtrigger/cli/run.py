"""``qtrigger run``: one config end to end."""

from __future__ import annotations

from qtrigger.config import load_config


def add_parser(commands) -> None:
    """Register ``run``."""
    run = commands.add_parser("run", help="train, convert, C-simulate and report one config")
    run.add_argument("config", help="YAML run config, e.g. configs/l1_bjet_ultralight.yaml")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set training.epochs=2 (repeatable)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run and HLS project")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(handler=handle)


def handle(args) -> int:
    """Run the config and print the results table."""
    config = load_config(args.config, args.overrides)  # a bad config or sample path fails before TensorFlow loads
    from qtrigger.runs.pipeline import run
    from qtrigger.runs.report import results_table, trigger_text, warnings_text

    result = run(config, overwrite=args.overwrite, progress=not args.no_progress)
    print()
    print(results_table(result))
    if result.trigger is not None:
        print()
        print(trigger_text(result.trigger))
    print(f"\nrun directory: {result.directory}  (report.md, metrics.json, plots/)")
    print(warnings_text(result), end="")
    return 0
