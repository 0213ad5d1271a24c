"""``qtrigger`` command line: a thin layer over the library functions.

User errors (:class:`QTriggerError`) print as one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings

from qtrigger.errors import QTriggerError


def _quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ INFO/WARNING chatter; Python warnings that matter still show."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ INFO/WARNING/ERROR noise (CUDA probing, graph attrs)
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    # QKeras quantizers are serialized through tf-keras' constraint API, which warns on every save.
    warnings.filterwarnings("ignore", message=r"The `keras.constraints.serialize\(\)` API")
    warnings.filterwarnings("ignore", message=r"You are saving your model as an HDF5 file")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="qtrigger", description=__import__("qtrigger").__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="train, convert, C-simulate and report one config")
    run.add_argument("config", help="YAML run config, e.g. configs/l1_bjet_ultralight.yaml")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set training.epochs=2 (repeatable)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run and HLS project")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    evaluate = commands.add_parser("evaluate", help="apply a finished run to other ROOT files")
    evaluate.add_argument("run", help="run directory, e.g. runs/l1_bjet_ultralight")
    evaluate.add_argument("--data", nargs="+", required=True, metavar="FILE", help="ROOT files or globs")
    evaluate.add_argument("--no-csim", action="store_true", help="skip the C-simulation check")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")

    data = commands.add_parser("data", help="data tools").add_subparsers(dest="data_command", required=True)
    generate = data.add_parser("generate", help="generate a NanoAOD-schema jet sample with Pythia 8 + FastJet")
    from qtrigger import generate as generate_module

    generate_module.add_arguments(generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qtrigger`` console script."""
    _quiet_tensorflow()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="qtrigger: %(message)s")
    try:
        return _dispatch(args)
    except QTriggerError as err:
        print(f"qtrigger: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qtrigger: interrupted; no partial outputs were kept", file=sys.stderr)
        return 130


def _dispatch(args) -> int:
    if args.command == "run":
        from qtrigger.config import load_config
        from qtrigger.pipeline import run
        from qtrigger.report import results_table

        config = load_config(args.config, args.overrides)
        metrics = run(config, overwrite=args.overwrite, progress=not args.no_progress)
        print()
        print(results_table(metrics))
        print(f"\nrun directory: {config.output_dir}/{config.name}  (report.md, metrics.json, plots/)")
        return 0
    if args.command == "evaluate":
        from glob import glob

        from qtrigger.pipeline import evaluate

        files = [f for pattern in args.data for f in (sorted(glob(pattern)) or [pattern])]
        result = evaluate(args.run, files, csim=not args.no_csim)
        print(json.dumps(result, indent=2) if args.json else _evaluation_text(result))
        return 0
    if args.command == "data" and args.data_command == "generate":
        from qtrigger import generate

        return generate.run_from_args(args)
    raise QTriggerError(f"unknown command {args.command}")


def _evaluation_text(result: dict) -> str:
    qat = result["qat"]
    lines = [f"run {result['run']}: {result['n_jets']} jets ({result['n_signal_jets']} signal) in {result['n_events']} events"]
    lines.append(f"QAT AUC: {qat['auc']:.4f}" if qat.get("auc") is not None else f"QAT AUC: n/a ({qat['auc_note']})")
    if "signal_efficiency" in qat:
        lines.append(f"at the run's threshold {qat['threshold']:g}: signal efficiency {100 * qat['signal_efficiency']:.1f} %, "
                     f"background rejection {100 * qat['background_rejection']:.2f} %")
    if "csim" in result:
        c = result["csim"]
        lines.append(f"C-simulation: {c['mismatched_jets']} of {c['jets']} jets differ from the exact model "
                     f"(max {c['max_abs_diff_lsb']} LSB)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
