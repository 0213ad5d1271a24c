"""Generation throughput on a LocalCluster of 1 vs 2 workers (events/s); prints JSON.

The sample: QCD in two unbiased pTHat bins (default [30, 60) and [60, inf)), ``--events`` per
bin, cut into chunks of ``--chunk-size`` events, written with the shipped compression. Each
setting generates the same command from scratch in its own temporary directory (cluster
start-up and the final merge included: that is what a user waits for), and the two outputs
are compared array by array (``same_events``: the chunk seeds make them identical).
``cpu_seconds_other_processes`` is the CPU time other processes used meanwhile (beyond the
chunks' own CPU time; cluster start-up and the merge count as "other"): on a shared machine the
wall times mean something only when it is small. ``events_per_cpu_second`` (events over the
chunks' CPU time) is the throughput of one idle core and does not depend on the load.

Usage: python benchmarks/generate_scaling.py [--events 400] [--chunk-size 100] [--bins 30,60]

``--pileup`` instead prints the CPU seconds per ttbar event at mu = 0, 60 and 200 (``--mus``), with pileup
from a second Pythia (direct) and drawn from a premixed library, on this machine in one run (issue 29). The
library (``--library-size`` interactions, made once, in this process) is timed on its own: its CPU per
interaction, and that cost shared over the draws (``library_cpu_per_event_amortised`` = CPU per interaction
x mu / reuse), are printed beside the per-event costs. Chunk CPU time only (Pythia initialisation included):
load-independent. Keep it tiny on a shared machine: ``--pileup --events 4 --library-size 100``.
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


def _cpu_per_event(summary: dict) -> float:
    return sum(b["chunk_cpu_seconds"] for b in summary["bins"]) / summary["events"]


def pileup_costs(events: int, mus: list[float], library_size: int, seed: int) -> dict:
    """CPU-s per ttbar event at each mu, direct and with a library (made here, timed on its own)."""
    from qtrigger.generate import generate_library

    out: dict = {"events": events, "library_size": library_size, "mu": {}}
    with tempfile.TemporaryDirectory(prefix="qtrigger-pileup-costs-") as tmp:
        lib = generate_library(library_size, seed, Path(tmp) / "lib", chunk_size=library_size, workers=0,
                               progress=False)
        per_interaction = lib["cpu_seconds"] / library_size
        out["library_cpu_per_interaction"] = round(per_interaction, 5)
        for mu in mus:
            row = {}
            for label, library in (("direct", None), ("library", Path(tmp) / "lib")):
                if mu == 0 and library is not None:
                    continue  # no overlay at mu = 0
                summary = generate_sample("ttbar", events, seed, Path(tmp) / f"tt_{mu:g}_{label}.root", pileup=mu,
                                          pileup_library=library, workers=0, progress=False, overwrite=True)
                row[f"{label}_cpu_per_event"] = round(_cpu_per_event(summary), 4)
                if library is not None:
                    reuse = max(summary["pileup"]["reuse_mean"], 1.0)
                    row["reuse"] = round(summary["pileup"]["reuse_mean"], 2)
                    row["library_cpu_per_event_amortised"] = round(per_interaction * mu / reuse, 4)
                    row["speedup"] = round(row["direct_cpu_per_event"] / row["library_cpu_per_event"], 2)
            out["mu"][f"{mu:g}"] = row
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400, help="events per pTHat bin (--pileup: ttbar events)")
    parser.add_argument("--pileup", action="store_true", help="CPU-s per event at --mus, direct and with a library")
    parser.add_argument("--mus", default="0,60,200", help="pileup values for --pileup (default 0,60,200)")
    parser.add_argument("--library-size", type=int, default=2000, help="library interactions for --pileup")
    parser.add_argument("--chunk-size", type=int, default=100)
    parser.add_argument("--bins", default="30,60")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.pileup:
        mus = [float(m) for m in args.mus.split(",")]
        print(json.dumps(pileup_costs(args.events, mus, args.library_size, args.seed), indent=2))
        return 0
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
            chunk_wall = sum(b["chunk_seconds"] for b in summary["bins"])
            chunk_cpu = sum(b["chunk_cpu_seconds"] for b in summary["bins"])
            other = None if busy is None else max(0.0, _system_busy_seconds() - busy - chunk_cpu)
            outputs[workers] = summary["outputs"]
            out["settings"][f"{workers}_worker{'s' if workers > 1 else ''}"] = {
                "workers": workers, "events": summary["events"], "jets": summary["jets"], "chunks": summary["chunks"],
                "wall_seconds": round(wall, 1), "events_per_s": round(summary["events"] / wall, 1),
                "jets_per_s": round(summary["jets"] / wall, 1),
                "chunk_wall_seconds_sum": round(chunk_wall, 1),
                "chunk_cpu_seconds_sum": round(chunk_cpu, 1),
                # load-independent: events per CPU-second of the chunks = events/s of one idle core
                "events_per_cpu_second": round(summary["events"] / chunk_cpu, 1),
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
