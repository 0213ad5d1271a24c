"""``qtrigger`` command line: a thin layer over the library functions.

User errors (:class:`QTriggerError`) print as one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import re
import sys
import threading
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
    # dask.distributed logs every connection at INFO; scans report progress themselves
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")


_NATIVE_LOG = re.compile(rb"^([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")
_NATIVE_NOISE = (b"failed call to cuInit", b"use_unbounded_threadpool", b"Unable to register", b"computation placer")


class _NativeStderrFilter:
    """Drop TensorFlow's C++ INFO/WARNING lines (and known harmless errors) from fd 2.

    TensorFlow 2.21 logs through absl before any log level is configurable
    (TF_CPP_MIN_LOG_LEVEL no longer silences it), so the CLI filters the stream itself.
    Everything else, Python warnings included, passes through unchanged.
    """

    def __init__(self):
        self.saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self.reader = os.fdopen(read_end, "rb", buffering=0)
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()
        atexit.register(self.close)

    def _pump(self):
        pending = b""
        while chunk := os.read(self.reader.fileno(), 65536):
            pending += chunk
            # progress bars end segments with \r, log lines with \n: relay each segment at once
            segments = re.split(rb"(?<=[\r\n])", pending)
            pending = segments.pop()
            if pending and not self._maybe_native(pending):
                segments.append(pending)
                pending = b""
            for segment in segments:
                if not self._is_noise(segment):
                    os.write(self.saved, segment)
        if pending and not self._is_noise(pending):
            os.write(self.saved, pending)

    @staticmethod
    def _maybe_native(partial: bytes) -> bool:
        """Could this unfinished segment still become a native log line?"""
        return bool(re.match(rb"^[IWEF][\d :.]*$|^[IWEF]\d{4} ", partial)) or b"WARNING: All log messages".startswith(partial[:25])

    @staticmethod
    def _is_noise(segment: bytes) -> bool:
        if segment.startswith(b"WARNING: All log messages before absl::InitializeLog()"):
            return True
        match = _NATIVE_LOG.match(segment)
        return bool(match) and (match.group(1) in (b"I", b"W") or any(n in segment for n in _NATIVE_NOISE))

    def close(self):
        sys.stderr.flush()
        os.dup2(self.saved, 2)  # closes the pipe's last writer in this process
        self.thread.join(timeout=2)


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
    evaluate.add_argument("--data", nargs="+", metavar="FILE", help="ROOT files or globs: classifier metrics + C-sim check")
    evaluate.add_argument("--signal", nargs="+", metavar="FILE", help="signal ROOT files: redo the trigger study")
    evaluate.add_argument("--background", nargs="+", metavar="FILE", help="background ROOT files for the rate")
    evaluate.add_argument("--normalisation", choices=["cross_section", "zero_bias"], help="rate normalisation")
    evaluate.add_argument("--no-csim", action="store_true", help="skip the C-simulation check")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")

    compare = commands.add_parser("compare", help="float vs QAT vs post-training fixed point vs C-simulation for a run")
    compare.add_argument("run", help="run directory")
    compare.add_argument("--widths", type=int, nargs="+", default=None, metavar="W", help="PTQ total widths to sweep")

    hls = commands.add_parser("hls", help="firmware tools").add_subparsers(dest="hls_command", required=True)
    check = hls.add_parser("check", help="prove bit-exactness of a run (or any saved QKeras MLP) in C-simulation")
    check.add_argument("run", nargs="?", help="run directory (uses its test jets)")
    check.add_argument("--model", help="a saved QKeras model (.h5) instead of a run")
    check.add_argument("--inputs", help=".npy array of network inputs (with --model, or to replace the run's test jets)")
    check.add_argument("--override", action="append", default=[], metavar="LAYER.FIELD=TYPE",
                       help="replace a derived type, e.g. dense_0.accum=ap_fixed<12,4> (diagnosis)")
    check.add_argument("--json", action="store_true", help="print JSON instead of the summary")

    build = hls.add_parser("build", help="run the vendor HLS build for a run's project (needs vivado_hls/vitis_hls)")
    build.add_argument("run", help="run directory")
    for step in ("csim", "synth", "cosim", "vsynth"):
        build.add_argument(f"--{step}", action="store_true", help=f"run the {step} step")
    report = hls.add_parser("report", help="read Vivado/Vitis HLS and synthesis reports into the run's metrics.json")
    report.add_argument("run", help="run directory (its HLS project), or a project directory synthesized elsewhere")
    report.add_argument("--project", help="project directory to read instead of the run's own")

    rtl = hls.add_parser("rtl-check", help="da4ml Verilog of a run's network, built and simulated with Verilator")
    from qtrigger import da as da_module

    da_module.add_rtl_arguments(rtl)

    scan = commands.add_parser("scan", help="design-space scan on dask.distributed (resumable)")
    from qtrigger import scan as scan_module

    scan_module.add_arguments(scan)

    data = commands.add_parser("data", help="data tools").add_subparsers(dest="data_command", required=True)
    generate = data.add_parser("generate", help="generate a NanoAOD-schema jet sample with Pythia 8 + FastJet")
    from qtrigger import generate as generate_module

    generate_module.add_arguments(generate)
    validate = data.add_parser("validate", help="overlay a generated sample's features on a NanoAOD file's")
    from qtrigger import validate as validate_module

    validate_module.add_arguments(validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qtrigger`` console script."""
    _quiet_tensorflow()
    args = build_parser().parse_args(argv)
    if os.environ.get("QTRIGGER_NATIVE_LOGS") != "1":
        _NativeStderrFilter()
    logging.basicConfig(level=logging.WARNING, format="qtrigger: %(message)s")
    try:
        return _dispatch(args)
    except QTriggerError as err:
        print(f"qtrigger: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.command == "scan":
            print("qtrigger: interrupted; finished trials are kept, continue with --resume", file=sys.stderr)
        else:
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

        def expand(patterns):
            return [f for pattern in patterns for f in (sorted(glob(pattern)) or [pattern])]

        if bool(args.signal) != bool(args.background):
            raise QTriggerError("evaluate: give both --signal and --background for the trigger study")
        if not (args.data or args.signal):
            raise QTriggerError("evaluate: give --data FILES, or --signal FILES --background FILES")
        if args.data:
            result = evaluate(args.run, expand(args.data), csim=not args.no_csim)
            print(json.dumps(result, indent=2) if args.json else _evaluation_text(result))
        if args.signal:
            from qtrigger.pipeline import evaluate_trigger

            trig = evaluate_trigger(args.run, expand(args.signal), expand(args.background), args.normalisation)
            print(json.dumps(trig, indent=2, default=str) if args.json else _trigger_text(trig))
        return 0
    if args.command == "scan":
        from qtrigger import scan

        return scan.run_from_args(args)
    if args.command == "compare":
        from qtrigger.compare import compare_run, comparison_table

        print(comparison_table(compare_run(args.run, args.widths)))
        return 0
    if args.command == "hls" and args.hls_command == "check":
        return _hls_check(args)
    if args.command == "hls" and args.hls_command == "rtl-check":
        from qtrigger import da

        return da.run_rtl_from_args(args)
    if args.command == "hls" and args.hls_command in ("build", "report"):
        return _hls_build_or_report(args)
    if args.command == "data" and args.data_command == "generate":
        from qtrigger import generate

        return generate.run_from_args(args)
    if args.command == "data" and args.data_command == "validate":
        from qtrigger import validate

        return validate.run_from_args(args)
    raise QTriggerError(f"unknown command {args.command}")


def _hls_check(args) -> int:
    import tempfile
    from pathlib import Path

    import numpy as np

    from qtrigger.check import hls_check
    from qtrigger.config import HLSConfig, load_config
    from qtrigger.model import load_model

    if bool(args.run) == bool(args.model):
        raise QTriggerError("hls check: give a run directory or --model FILE.h5 --inputs FILE.npy")
    if args.model:
        if not args.inputs:
            raise QTriggerError("hls check --model needs --inputs FILE.npy (network inputs, one row per event)")
        model_path, hls_cfg, name = Path(args.model), HLSConfig(), "check"
    else:
        run_dir = Path(args.run)
        model_path = run_dir / "model_qat.h5"
        config = load_config(run_dir / "config.resolved.yaml", check_files=False)
        hls_cfg, name = config.hls, config.name
    if not model_path.is_file():
        raise QTriggerError(f"{model_path}: no such model file")
    inputs = _load_inputs(args.inputs) if args.inputs else np.load(Path(args.run) / "test_jets.npz")["inputs"]
    overrides: dict = {}
    for text in args.override:
        key, sep, value = text.partition("=")
        layer, dot, field = key.partition(".")
        if not (sep and dot):
            raise QTriggerError(f"--override {text!r}: expected LAYER.FIELD=TYPE, e.g. dense_0.accum=ap_fixed<12,4>")
        overrides.setdefault(layer, {})[field] = value
    with tempfile.TemporaryDirectory(prefix="qtrigger-check-") as tmp:
        result = hls_check(load_model(model_path), inputs, hls_cfg, Path(tmp), name, precision_overrides=overrides)
    if args.run and not args.override:
        from qtrigger.report import write_json

        write_json(Path(args.run) / "hls_check.json", result.as_dict())
    print(json.dumps(result.as_dict(), indent=2, default=str) if args.json else result.summary())
    return 0 if result.exact else 1


def _hls_build_or_report(args) -> int:
    from pathlib import Path

    from qtrigger import hardware
    from qtrigger.report import write_json

    run_dir = Path(args.run)
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    project = Path(getattr(args, "project", None) or (metrics["hls"]["project_dir"] if metrics else run_dir))
    if args.hls_command == "build":
        steps = {k: getattr(args, k) for k in ("csim", "synth", "cosim", "vsynth")}
        if not any(steps.values()):
            steps["synth"] = True
        backend = metrics["hls"]["backend"] if metrics else "Vivado"
        hardware.build_project(project, backend=backend, **steps)
        print(f"built {project}; read the reports with: qtrigger hls report {run_dir}")
        return 0
    reports = hardware.read_reports(project)
    if metrics is not None:
        hls_report = reports["hls_report"]
        metrics["hls"]["synth"] = {
            "hls_report": hls_report,
            "synthesis_report": reports.get("synthesis_report"),
            "budget": hardware.check_budget(hls_report, metrics["hls"].get("budget", {}).get("checks", {})
                                            .get("latency_ns", {}).get("budget", 100.0)),
        }
        write_json(metrics_path, metrics)
    print(json.dumps(reports, indent=2))
    return 0


def _load_inputs(path: str):
    import numpy as np

    try:
        inputs = np.load(path)
    except (OSError, ValueError) as err:
        raise QTriggerError(f"{path}: not a readable .npy array ({type(err).__name__})") from None
    if inputs.ndim != 2:
        raise QTriggerError(f"{path}: expected a 2-D array (events x features), got shape {inputs.shape}")
    return inputs


def _trigger_text(t: dict) -> str:
    if not t.get("enabled"):
        return t.get("note", "trigger study skipped")
    return (f"{t['method']} rate: threshold code {t['threshold_code']} = {t['threshold']:.4g} gives "
            f"{t['rate_hz'] / 1e3:.1f} ± {t['rate_hz_err'] / 1e3:.1f} kHz (target {t['target_rate_hz'] / 1e3:g} kHz); "
            f"signal events kept {100 * t['signal_efficiency']:.1f} ± {100 * t['signal_efficiency_err']:.1f} %, "
            f"jet-pT cut at the same rate {100 * t['cut_baseline']['signal_efficiency']:.1f} %")


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
