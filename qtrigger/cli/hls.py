"""``qtrigger hls check|build|report|rtl-check|rtl``: firmware tools."""

from __future__ import annotations

from qtrigger.cli._runs import check_run_first

BUILD_STEPS = ("csim", "synth", "cosim", "vsynth")


def add_parser(commands) -> None:
    """Register ``hls`` and its subcommands."""
    hls = commands.add_parser("hls", help="firmware tools").add_subparsers(dest="hls_command", required=True)
    check = hls.add_parser("check", help="prove bit-exactness of a run (or any saved QKeras MLP) in C-simulation")
    check.add_argument("run", nargs="?", help="run directory (uses its test jets)")
    check.add_argument("--model", help="a saved QKeras model (.h5) instead of a run")
    check.add_argument("--inputs", help=".npy array of network inputs (with --model, or to replace the run's test jets)")
    check.add_argument("--override", action="append", default=[], metavar="LAYER.FIELD=TYPE",
                       help="replace a derived type, e.g. dense_0.accum=ap_fixed<12,4> (diagnosis)")
    check.add_argument("--json", action="store_true", help="print JSON instead of the summary")
    check.set_defaults(handler=handle_check)

    build = hls.add_parser("build", help="run the vendor HLS build for a run's project (needs vivado_hls/vitis_hls)")
    build.add_argument("run", help="run directory")
    for step in BUILD_STEPS:
        build.add_argument(f"--{step}", action="store_true", help=f"run the {step} step")
    build.set_defaults(handler=handle_build)

    report = hls.add_parser("report", help="read Vivado/Vitis HLS and synthesis reports into the run's metrics.json")
    report.add_argument("run", help="run directory (its HLS project), or a project directory synthesized elsewhere")
    report.add_argument("--project", help="project directory to read instead of the run's own")
    report.set_defaults(handler=handle_report)

    rtl_check = hls.add_parser("rtl-check", help="da4ml Verilog of a run's network, built and simulated with Verilator")
    rtl_check.add_argument("run", help="run directory (its model_qat.h5 and test_jets.npz)")
    rtl_check.add_argument("--jets", type=int, default=None, metavar="N", help="use the first N test jets (default: all)")
    rtl_check.add_argument("--ties", type=int, default=2000, metavar="N", help="rows on input rounding ties (default 2000)")
    rtl_check.add_argument("--overrange", type=int, default=1000, metavar="N", help="saturating rows (default 1000)")
    rtl_check.add_argument("--rounding", choices=("half_even", "half_up"), default="half_even",
                           help="half_even: QKeras rounding, equal to the trained model (default); "
                                "half_up: da4ml's RND, cheaper, not equal to the trained model")
    rtl_check.add_argument("--output", default=None, metavar="DIR",
                           help="keep the RTL project here (default: a temporary directory)")
    rtl_check.add_argument("--json", action="store_true", help="print JSON instead of the summary")
    rtl_check.set_defaults(handler=handle_rtl_check)

    rtl = hls.add_parser("rtl", help="da4ml Verilog of a run: latency/II measured in Verilator, yosys cell counts "
                                     "(an event-level run: the whole event_network seed, jet words -> accept bit)")
    rtl.add_argument("run", help="run directory (its model_qat.h5, test_jets.npz, config.resolved.yaml)")
    rtl.add_argument("--output", default=None, metavar="DIR",
                     help="RTL project directory (default: <hls.output_dir>/<run name>/rtl)")
    rtl.add_argument("--overwrite", action="store_true", help="replace an existing RTL project directory")
    rtl.add_argument("--jets", type=int, default=None, metavar="N",
                     help="stream the first N test jets (event-level run: N events of each checked set; default: all)")
    rtl.add_argument("--no-synth", action="store_true", help="skip yosys (latency and exactness only)")
    rtl.add_argument("--json", action="store_true", help="print JSON instead of the summary")
    rtl.set_defaults(handler=handle_rtl)


def handle_rtl_check(args) -> int:
    """``hls rtl-check``: 0 when the RTL equals the reference on every row, else 1."""
    import json

    from qtrigger.runs.rtl import rtl_check_run

    checked = rtl_check_run(args.run, rounding=args.rounding, ties=args.ties, overrange=args.overrange,
                            jets=args.jets, work_dir=args.output)
    print(json.dumps(checked.to_json(), indent=2) if args.json else checked.summary())
    return 0 if checked.exact else 1


def handle_rtl(args) -> int:
    """``hls rtl``: 0 when the latency was found and the RTL equals the trained model on every row, else 1."""
    import json

    from qtrigger.runs.rtl import rtl_stage_for_run

    result = rtl_stage_for_run(args.run, args.output, args.overwrite, args.jets, synthesize=not args.no_synth)
    print(json.dumps(result.to_json(), indent=2) if args.json else result.summary())
    return 0 if result.latency.latency_cycles is not None and result.mismatches_vs_model == 0 else 1


def handle_check(args) -> int:
    """0 when bit-exact, 1 when not."""
    import json

    if not args.model:
        check_run_first(args.run)

    from qtrigger.runs.commands import hls_check

    result = hls_check(args.run, args.model, args.inputs, args.override)
    print(json.dumps(result.as_dict(), indent=2, default=str) if args.json else result.summary())
    return 0 if result.exact else 1


def handle_build(args) -> int:
    """Run the vendor build."""
    from qtrigger.runs.commands import hls_build

    hls_build(args.run, {step: getattr(args, step) for step in BUILD_STEPS})
    print(f"built; read the reports with: qtrigger hls report {args.run}")
    return 0


def handle_report(args) -> int:
    """Read the reports (recorded into the run's metrics.json) and print them."""
    import json

    from qtrigger.runs.commands import hls_report

    print(json.dumps(hls_report(args.run, args.project), indent=2))
    return 0
