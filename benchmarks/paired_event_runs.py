"""Two finished event-level runs on the same events: each network seed at every quoted rate, and the paired gain.

For runs that read the same samples with the same split (e.g. the object-group network of
``configs/l1_ttbar_event_objects.yaml`` and the jet-only one of ``configs/l1_ttbar_event.yaml`` on the same files):
per quoted rate, each run's own ``event_network`` seed (its score code, preselection) is applied to its saved test
events (``test_jets.npz``, scored by the exact integer network), the efficiency over all signal test events is
recomputed (it equals metrics.json), and the gain of A over B is paired on the same events
(:func:`qtrigger.trigger.efficiency.paired_gain`). Prints one line per rate.

    python benchmarks/paired_event_runs.py runs/objects runs/jets
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from qtrigger.emulate.network import extract_network
from qtrigger.runs.finished import FinishedRun
from qtrigger.trigger.efficiency import paired_gain


def _signal_test(run_dir: str) -> dict:
    """The run's signal test events, their preselection bits and exact score codes, and its quoted seeds."""
    run = FinishedRun.load(run_dir)
    rows = np.load(Path(run_dir) / "test_jets.npz")
    network = extract_network(run.load_model("qat"))
    codes = network.forward_codes(rows["inputs"]).reshape(len(rows["inputs"]), -1)[:, 0].astype(np.int64)
    signal = rows["labels"] == 1
    metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    return {"event": rows["event"][signal], "preselected": rows["preselected"][signal], "codes": codes[signal],
            "at_rate": metrics["trigger"]["at_rate"]}


def main() -> None:
    """Print the paired comparison of two event-level runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    args = parser.parse_args()
    runs = {"A": _signal_test(args.run_a), "B": _signal_test(args.run_b)}
    if not np.array_equal(runs["A"]["event"], runs["B"]["event"]):
        raise SystemExit("the two runs have different signal test events (samples or split differ)")
    for key in runs["A"]["at_rate"]:
        line, fired = [f"{key} kHz"], {}
        for name, r in runs.items():
            seed = r["at_rate"][key]["event_network"]
            fired[name] = r["preselected"] & (r["codes"] >= seed["seed"]["score_code"])
            line.append(f"{name}: rate {seed['rate_hz'] / 1e3:.2f} +- {seed['rate_hz_err'] / 1e3:.2f} kHz (n_eff_fired "
                        f"{seed['n_eff_fired']:.0f}), efficiency {100 * fired[name].mean():.1f} % (metrics "
                        f"{100 * seed['signal_efficiency']:.1f} %)")
        gain = paired_gain(fired["A"], fired["B"])
        line.append(f"A - B: {100 * gain.value:+.1f} +- {100 * gain.err:.1f} points on {gain.n} signal test events")
        print("; ".join(line))


if __name__ == "__main__":
    main()
