"""QAT vs float AUC over several training seeds for one config; prints JSON.

Usage: python benchmarks/seeds.py [CONFIG] [--seeds 1 2 3] [--set key=value ...]
Each seed is a full `qtrigger run` (training, conversion, C-simulation) into a temporary
directory; the acceptance check is mean(qat.auc) >= mean(float.auc) - 0.005.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time

from qtrigger.config import load_config
from qtrigger.runs.pipeline import run


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", nargs="?", default="configs/l1_bjet_ultralight.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    per_seed = []
    with tempfile.TemporaryDirectory(prefix="qtrigger-seeds-") as tmp:
        for seed in args.seeds:
            overrides = args.overrides + [f"training.seed={seed}", f"output_dir={tmp}/runs", f"hls.output_dir={tmp}/hls",
                                          f"name=seed{seed}", "training.verbose=false"]
            config = load_config(args.config, overrides)
            start = time.perf_counter()
            metrics = run(config, progress=False)
            per_seed.append({"seed": seed, "qat_auc": metrics["qat"]["auc"], "float_auc": metrics["float"]["auc"],
                             "qat_signal_efficiency": metrics["qat"]["signal_efficiency"],
                             "float_signal_efficiency": metrics["float"]["signal_efficiency"],
                             "csim_mismatched_jets": metrics["csim"]["mismatched_jets"], "csim_jets": metrics["csim"]["jets"],
                             "wall_seconds": round(time.perf_counter() - start, 1)})
    qat = [r["qat_auc"] for r in per_seed]
    flt = [r["float_auc"] for r in per_seed]
    summary = {
        "config": args.config, "seeds": args.seeds, "per_seed": per_seed,
        "qat_auc_mean": statistics.mean(qat), "qat_auc_std": statistics.pstdev(qat),
        "float_auc_mean": statistics.mean(flt), "float_auc_std": statistics.pstdev(flt),
        "qat_within_0p005_of_float": statistics.mean(qat) >= statistics.mean(flt) - 0.005,
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
