"""``qtrigger evaluate``: apply a finished run to other ROOT files."""

from __future__ import annotations

from qtrigger.cli._runs import check_run_first


def add_parser(commands) -> None:
    """Register ``evaluate``."""
    evaluate = commands.add_parser("evaluate", help="apply a finished run to other ROOT files")
    evaluate.add_argument("run", help="run directory, e.g. runs/l1_bjet_ultralight")
    evaluate.add_argument("--data", nargs="+", metavar="FILE", help="ROOT files or globs: classifier metrics + C-sim check")
    evaluate.add_argument("--max-events", type=int, default=None, metavar="N",
                          help="read at most N events of --data (default: every event)")
    evaluate.add_argument("--signal", nargs="+", metavar="FILE", help="signal ROOT files: redo the trigger study")
    evaluate.add_argument("--background", nargs="+", metavar="FILE", help="background ROOT files for the rate")
    evaluate.add_argument("--normalisation", choices=["cross_section", "zero_bias", "crossing"],
                          help="rate normalisation (crossing: binned hard events + zero-bias crossings at one pileup)")
    evaluate.add_argument("--no-csim", action="store_true", help="skip the C-simulation check")
    evaluate.add_argument("--overwrite", action="store_true",
                          help="replace this trigger evaluation's folder (same signal, background, normalisation)")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")
    evaluate.set_defaults(handler=handle)


def handle(args) -> int:
    """Evaluate and print the summary (or JSON)."""
    import json

    check_run_first(args.run)

    from qtrigger.runs.commands import evaluate_files
    from qtrigger.runs.report import evaluation_text, trigger_text

    result = evaluate_files(args.run, data=args.data, signal=args.signal, background=args.background,
                            normalisation=args.normalisation, csim=not args.no_csim, max_events=args.max_events,
                            overwrite=args.overwrite)
    if "data" in result:
        print(json.dumps(result["data"], indent=2) if args.json else evaluation_text(result["data"]))
    if "trigger" in result:
        print(json.dumps(result["trigger"], indent=2, default=str) if args.json else trigger_text(result["trigger"]))
        if not args.json:
            print(f"trigger study written to {result['trigger_directory']}")
    return 0
