"""Training choices trigger physicists check: with/without pT, without phi, pT-eta reweighting.

Runs the default config in each variant (same seed) and prints JSON with the QAT AUC and,
at the target rate (held-out half of the rate sample), the best network seed's event efficiency,
the single-jet pT seed's, and the paired gain over the best kinematic seed.
Usage: python benchmarks/trigger_choices.py [CONFIG] [--set key=value ...]
"""

import argparse
import json
import sys
import tempfile

from qtrigger.config import SEED_FEATURES, load_config
from qtrigger.runs.pipeline import run

VARIANTS = {
    "baseline (10 features)": [],
    "without Jet_pt": ["features.names=" + json.dumps([f for f in SEED_FEATURES if f != "Jet_pt"])],
    "without Jet_phi": ["features.names=" + json.dumps([f for f in SEED_FEATURES if f != "Jet_phi"])],
    "signal reweighted to background pT-eta": ["training.reweight_pt_eta=true"],
    "jets weighted by genWeight (rate-like background)": ["training.event_weights=gen_weight"],
    "label = jet from signal sample, genWeight": ["labels.source=sample", "training.event_weights=gen_weight"],
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", nargs="?", default="configs/l1_bjet_ultralight.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--only", nargs="+", help="variant names to run")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="qtrigger-choices-") as tmp:
        for index, (name, extra) in enumerate(VARIANTS.items()):
            if args.only and name not in args.only:
                continue
            overrides = args.overrides + extra + [f"output_dir={tmp}/runs", f"hls.output_dir={tmp}/hls", f"name=v{index}",
                                                  "training.verbose=false", "trigger.bdt=false"]
            metrics = run(load_config(args.config, overrides), progress=False)
            t = metrics["trigger"]
            rows[name] = {"qat_auc": metrics["qat"]["auc"], "float_auc": metrics["float"]["auc"],
                          "seed": t["seed"]["description"],
                          "event_efficiency": t["signal_efficiency"], "event_efficiency_err": t["signal_efficiency_err"],
                          "pt_cut_efficiency": t["cut_baseline"]["signal_efficiency"], "gain_over_cut": t["gain_over_cut"],
                          "gain_over_best_kinematic": t["gain_over_best_kinematic"],
                          "rate_hz": t["rate_hz"], "rate_hz_err": t["rate_hz_err"], "n_eff_fired": t["n_eff_fired"],
                          "csim_mismatched_jets": metrics["csim"]["mismatched_jets"]}
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
