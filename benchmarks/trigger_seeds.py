"""The family scan of a finished run, and its seeds checked on an independent background.

Prints, per seed family and number of jets, the best grid point found on the calibration half
at each target rate (the evidence behind the chosen seeds), then the held-out quotes. With
``--background FILES`` (and ``--signal FILES``) the run's own seeds are also applied unchanged
to that background (``qtrigger evaluate RUN --signal S --background B``) and compared with the
run's held-out rates (pull = difference / combined error).
Usage: python benchmarks/trigger_seeds.py RUN_DIR [--signal FILES --background FILES]
"""

import argparse
import json
import math
import sys
from pathlib import Path


def scan_table(trigger: dict) -> str:
    """Family x n_jets rows, one efficiency column per target rate (calibration-half choice)."""
    targets = sorted({r["target_rate_hz"] for r in trigger["scan"]}, reverse=True)
    rows = {}
    for r in trigger["scan"]:
        rows.setdefault((r["family"], r["n_jets"]), {})[r["target_rate_hz"]] = r
    head = f"{'family':<12} {'n':>2}  " + "  ".join(f"{t / 1e3:>6g} kHz" for t in targets)
    lines = [head, "-" * len(head)]
    for (family, n), by_target in sorted(rows.items()):
        cells = [f"{100 * by_target[t]['selection_efficiency']:9.1f} %" if t in by_target else f"{'':>11}"
                 for t in targets]
        lines.append(f"{family:<12} {n:>2}  " + "  ".join(cells))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--signal", nargs="+")
    parser.add_argument("--background", nargs="+")
    args = parser.parse_args()
    from qtrigger.trigger.summary import trigger_summary_lines

    trigger = json.loads((Path(args.run) / "metrics.json").read_text())["trigger"]
    print("Family scan (selection efficiency of the best grid point, chosen on the calibration half):")
    print(scan_table(trigger))
    print()
    print("\n".join(trigger_summary_lines(trigger)))
    if args.background:
        from qtrigger.runs.evaluation import evaluate_trigger

        if not args.signal:
            parser.error("--background needs --signal")
        checked = evaluate_trigger(args.run, args.signal, args.background)["rate_at_run_threshold"]
        print("\nRun's seeds on the independent background:")
        for key, c in checked.items():
            err = math.hypot(c["rate_hz_err"], c["run_rate_hz_err"])
            print(f"  {key:>5} kHz  {c['seed']}: {c['rate_hz'] / 1e3:.1f} ± {c['rate_hz_err'] / 1e3:.1f} kHz "
                  f"(n_eff_fired {c['n_eff_fired']:.0f}) vs held-out {c['run_rate_hz'] / 1e3:.1f} ± "
                  f"{c['run_rate_hz_err'] / 1e3:.1f} kHz: pull {(c['rate_hz'] - c['run_rate_hz']) / err:+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
