"""Wall time of one small scan on 1 worker (2 TensorFlow threads) vs 2 workers (1 thread each); prints JSON.

The scan: 2 weight widths x 2 hidden-layer shapes x 2 sparsities = 8 trials on a slice of the
default sample (``data.max_events``), 2 epochs, no float twin, C-simulation on. Each setting
runs the whole scan from scratch in its own temporary directory (cluster start-up included:
that is what a user waits for). Goal on 2 cores: speedup = wall_1 / wall_2 >= 1.7.
``cpu_seconds_other_processes`` is the CPU time unrelated processes used meanwhile: on a
shared machine the timings mean something only when it is near 0.

Usage: python benchmarks/scan_scaling.py [--max-events 800] [--epochs 2] [--keep DIR]
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

from qtrigger.scan import run_scan, validate_scan_config  # noqa: E402

AXES = {
    "quantization.weight_bits": [4, 6],
    "model.hidden": [[16, 8], [32, 16]],
    "pruning.target_sparsity": [0.0, 0.5],
}
SETTINGS = {"1_worker": {"workers": 1, "threads_per_worker": 2}, "2_workers": {"workers": 2, "threads_per_worker": 1}}


def scan_config(output_dir: Path, max_events: int, epochs: int):
    return validate_scan_config({
        "name": "scaling",
        "base": str(REPO / "configs" / "l1_bjet_ultralight.yaml"),
        "overrides": [f"data.max_events={max_events}", f"training.epochs={epochs}", "training.float_twin=false",
                      "hls.csim=true"],
        "axes": AXES,
        "output_dir": str(output_dir),
    })


def _system_busy_seconds() -> float | None:
    """CPU seconds all processes on this machine have used since boot (Linux /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds of this process and every finished descendant (workers, g++)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-events", type=int, default=800)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--keep", help="write the scans here instead of a temporary directory")
    args = parser.parse_args()
    os.chdir(REPO)  # the default run config names its samples relative to the repository
    out: dict = {"trials": None, "cpus": os.cpu_count(), "max_events": args.max_events, "epochs": args.epochs,
                 "csim": True, "threads": {}}
    tables = {}
    with tempfile.TemporaryDirectory(prefix="qtrigger-scan-scaling-") as tmp:
        root = Path(args.keep or tmp)
        for label, setting in SETTINGS.items():
            scan = scan_config(root / label, args.max_events, args.epochs)
            busy, own, start = _system_busy_seconds(), _own_seconds(), time.perf_counter()
            result = run_scan(scan, progress=False, overwrite=True, **setting)
            wall = time.perf_counter() - start
            own = _own_seconds() - own
            other = None if busy is None else max(0.0, _system_busy_seconds() - busy - own)
            table = result.table
            if result.failed or result.missing:
                raise SystemExit(f"{label}: {result.failed} failed, {result.missing} missing: {table['error'].tolist()}")
            tables[label] = table.set_index("hash")
            out["trials"] = result.trials
            out[f"wall_{setting['workers']}"] = round(wall, 1)
            out["threads"][label] = {
                "workers": setting["workers"], "dask_threads_per_worker": 1,
                "tensorflow_threads_per_trial": setting["threads_per_worker"],
                "tensorflow_threads_observed": sorted({int(v) for v in table["tensorflow_threads"].dropna()}),
                "mean_trial_seconds": round(float(table["wall_seconds"].mean()), 1),
                "cpu_seconds_scan": round(own, 1),
                # CPU used by unrelated processes meanwhile: a large number means the timing is contaminated
                "cpu_seconds_other_processes": None if other is None else round(other, 1),
            }
    out["speedup"] = round(out["wall_1"] / out["wall_2"], 2)
    out["goal_speedup_1p7_met"] = out["speedup"] >= 1.7
    others = [t["cpu_seconds_other_processes"] for t in out["threads"].values()]
    out["timing_clean"] = None if None in others else all(o < 5 for o in others)  # else: rerun on a quiet machine
    one, two = tables["1_worker"], tables["2_workers"].loc[tables["1_worker"].index]
    out["same_trials"] = sorted(one.index) == sorted(tables["2_workers"].index)
    out["qat_auc_max_abs_diff_between_settings"] = float((one["qat_auc"] - two["qat_auc"]).abs().max())
    out["csim_mismatched_jets_total"] = int(one["csim_mismatched_jets"].sum() + two["csim_mismatched_jets"].sum())
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
