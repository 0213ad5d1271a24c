"""``qtrigger hls check|build|report|rtl-check``: firmware tools."""

from __future__ import annotations

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

    rtl = hls.add_parser("rtl-check", help="da4ml Verilog of a run's network, built and simulated with Verilator")
    from qtrigger import da

    da.add_rtl_arguments(rtl)  # moves into this module with qtrigger/firmware/ (helper "firmware")
    rtl.set_defaults(handler=da.run_rtl_from_args)


def handle_check(args) -> int:
    """0 when bit-exact, 1 when not."""
    import json

    from qtrigger.commands import hls_check

    result = hls_check(args.run, args.model, args.inputs, args.override)
    print(json.dumps(result.as_dict(), indent=2, default=str) if args.json else result.summary())
    return 0 if result.exact else 1


def handle_build(args) -> int:
    """Run the vendor build."""
    from qtrigger.commands import hls_build

    hls_build(args.run, {step: getattr(args, step) for step in BUILD_STEPS})
    print(f"built; read the reports with: qtrigger hls report {args.run}")
    return 0


def handle_report(args) -> int:
    """Read the reports (recorded into the run's metrics.json) and print them."""
    import json

    from qtrigger.commands import hls_report

    print(json.dumps(hls_report(args.run, args.project), indent=2))
    return 0
