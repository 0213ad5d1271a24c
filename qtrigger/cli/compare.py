"""``qtrigger compare``: float vs QAT vs post-training fixed point vs C-simulation."""

from __future__ import annotations


def add_parser(commands) -> None:
    """Register ``compare``."""
    compare = commands.add_parser("compare", help="float vs QAT vs post-training fixed point vs C-simulation for a run")
    compare.add_argument("run", help="run directory")
    compare.add_argument("--widths", type=int, nargs="+", default=None, metavar="W", help="PTQ total widths to sweep")
    compare.set_defaults(handler=handle)


def handle(args) -> int:
    """Compare and print the table."""
    from qtrigger.runs.compare import compare_run, comparison_table

    print(comparison_table(compare_run(args.run, args.widths)))
    return 0
