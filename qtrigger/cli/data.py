"""``qtrigger data generate|validate``: data tools."""

from __future__ import annotations


def add_parser(commands) -> None:
    """Register ``data`` and its subcommands."""
    data = commands.add_parser("data", help="data tools").add_subparsers(dest="data_command", required=True)
    generate = data.add_parser("generate", help="generate a NanoAOD-schema jet sample with Pythia 8 + FastJet")
    from qtrigger import generate as generate_module

    generate_module.add_arguments(generate)  # moves here at integration (generate.py belongs to helper "samples")
    generate.set_defaults(handler=generate_module.run_from_args)

    validate = data.add_parser("validate", help="overlay a generated sample's features on a NanoAOD file's")
    validate.add_argument("--generated", nargs="+", required=True, metavar="FILE", help="generated ROOT file(s)")
    validate.add_argument("--reference", nargs="+", required=True, metavar="FILE", help="NanoAOD ROOT file(s)")
    validate.add_argument("-o", "--output", default="validation", help="output directory (plots, tables)")
    validate.set_defaults(handler=handle_validate)


def handle_validate(args) -> int:
    """Validate and print the summary."""
    import json

    from qtrigger.validate import validate_sample

    result = validate_sample(args.generated, args.reference, args.output)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "features"} for k, v in result.items()}, indent=2))
    print(f"plots and table: {args.output}/validation.md")
    return 0
