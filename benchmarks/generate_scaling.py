"""Generation throughput on a LocalCluster of 1 vs 2 workers (events/s); prints JSON.

The sample: QCD in two unbiased pTHat bins (default [30, 60) and [60, inf)), ``--events`` per
bin, cut into chunks of ``--chunk-size`` events, written with the shipped compression. Each
setting generates the same command from scratch in its own temporary directory (cluster
start-up and the final merge included: that is what a user waits for), and the two outputs
are compared array by array (``same_events``: the chunk seeds make them identical).
``cpu_seconds_other_processes`` is the CPU time unrelated processes used meanwhile: on a
shared machine the timings mean something only when it is near 0.

Usage: python benchmarks/generate_scaling.py [--events 400] [--chunk-size 100] [--bins 30,60]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qtrigger.generate import generate_sample  # noqa: E402


def _system_busy_seconds() -> float | None:
    """CPU seconds all processes on this machine have used since boot (Linux /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _same_events(files_a: list[str], files_b: list[str]) -> bool:
    import awkward as ak
    import uproot

    for a, b in zip(files_a, files_b):
        with uproot.open(a) as fa, uproot.open(b) as fb:
            x, y = fa["Events"].arrays(), fb["Events"].arrays()
            if x.fields != y.fields or not all(ak.array_equal(x[k], y[k]) for k in x.fields):
                return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400, help="events per pTHat bin")
    parser.add_argument("--chunk-size", type=int, default=100)
    parser.add_argument("--bins", default="30,60")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    out: dict = {"cpus": os.cpu_count(), "bins": args.bins, "events_per_bin": args.events,
                 "chunk_size": args.chunk_size, "settings": {}}
    outputs = {}
    with tempfile.TemporaryDirectory(prefix="qtrigger-generate-scaling-") as tmp:
        for workers in (1, 2):
            directory = Path(tmp) / f"w{workers}"
            directory.mkdir()
            busy, start = _system_busy_seconds(), time.perf_counter()
            summary = generate_sample("qcd", args.events, args.seed, directory, pthat_bins=args.bins,
                                      chunk_size=args.chunk_size, workers=workers, progress=False)
            wall = time.perf_counter() - start
            chunk_cpu = sum(b["chunk_seconds"] for b in summary["bins"])
            other = None if busy is None else max(0.0, _system_busy_seconds() - busy - chunk_cpu)
            outputs[workers] = summary["outputs"]
            out["settings"][f"{workers}_worker{'s' if workers > 1 else ''}"] = {
                "workers": workers, "events": summary["events"], "jets": summary["jets"], "chunks": summary["chunks"],
                "wall_seconds": round(wall, 1), "events_per_s": round(summary["events"] / wall, 1),
                "jets_per_s": round(summary["jets"] / wall, 1),
                "chunk_seconds_sum": round(chunk_cpu, 1),
                "events_per_s_per_busy_worker": round(summary["events"] / chunk_cpu, 1),
                "cpu_seconds_other_processes": None if other is None else round(other, 1),
            }
        out["same_events"] = _same_events(outputs[1], outputs[2])
    one, two = out["settings"]["1_worker"], out["settings"]["2_workers"]
    out["speedup"] = round(one["wall_seconds"] / two["wall_seconds"], 2)
    others = [s["cpu_seconds_other_processes"] for s in out["settings"].values()]
    out["timing_clean"] = None if None in others else all(o < 5 for o in others)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
