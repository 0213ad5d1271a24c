"""Two event-level runs' network seeds on the same signal test events: efficiencies and their paired difference.

Usage: python benchmarks/paired_event_seeds.py RUN_A RUN_B
Both runs must share the data, split and preselection (the same test events, row for row). For each quoted rate,
each run's seed "preselection and event score >= its threshold" (from its metrics.json) is applied to its own exact
scores; prints per rate the two efficiencies over all signal test events and A - B with the paired error
(:func:`qtrigger.trigger.efficiency.paired_gain`: sqrt(n_ab + n_ba - (n_ab - n_ba)^2 / n) / n, n_ab the events A keeps
and B does not). JSON on stdout.
"""

import argparse
import json

import numpy as np

from qtrigger.emulate.sets import extract_any_network
from qtrigger.runs.finished import FinishedRun
from qtrigger.trigger.efficiency import paired_gain


def accepted(run: FinishedRun) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(event ids of the signal test events, per quoted rate: which of them the run's network seed keeps)."""
    rows = run.test_jets()
    codes = extract_any_network(run.load_model("qat")).forward_codes(rows["inputs"]).reshape(-1)
    signal = rows["signal"]
    keeps = {rate: (rows["preselected"] & (codes >= quoted["seed"]["score_code"]))[signal]
             for rate, quoted in run.result.trigger["at_rate"].items()}
    return rows["event"][signal], keeps


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    args = parser.parse_args()
    (events_a, a), (events_b, b) = accepted(FinishedRun.load(args.run_a)), accepted(FinishedRun.load(args.run_b))
    if not np.array_equal(events_a, events_b):
        raise SystemExit("the two runs do not share their signal test events")
    table = {}
    for rate in a:
        gain = paired_gain(a[rate], b[rate])
        table[rate] = {"a": float(a[rate].mean()), "b": float(b[rate].mean()), "a_minus_b": gain.value,
                       "paired_err": gain.err, "a_only": gain.gained, "b_only": gain.lost, "events": gain.n}
    print(json.dumps({"a": args.run_a, "b": args.run_b, "at_rate_khz": table}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
