"""Kinematic seeds on raw (unmitigated) jets at pileup: the menu a trigger without pileup mitigation would run.

Reads the raw-jet summaries the generator writes at mu > 0 (``RawJet_ht``, ``RawJet_leadPt``) and, beside them,
the mitigated jets' HT (jets >= --ht-jet-pt). For each seed (raw HT >= x, raw leading jet >= x, mitigated HT >= x)
the threshold is tuned on a seeded calibration half of the rate sample (binned hard events + zero-bias crossings,
one weight per bunch crossing) to the largest rate not above each target, and quoted on the other half, with the
signal efficiency on every signal event (Clopper-Pearson 68 %). Prints JSON.

    python benchmarks/raw_seeds.py --signal data/pu60/ttbar_pu60.root \
        --rate 'data/pu60/rate_bins/*.root' data/pu60/zerobias_pu60.root
"""

from __future__ import annotations

import argparse
import glob
import json
import types

import numpy as np

from qtrigger.data.crossing import rate_sample_info, table_crossing_weights_hz
from qtrigger.trigger.efficiency import clopper_pearson
from qtrigger.trigger.rates import LHC_BUNCHES, LHC_F_REV_HZ, n_eff, split_events

MB_TO_CM2 = 1e-27
TARGETS_HZ = (100e3, 30e3, 10e3)


def _variables(files: list[str], ht_jet_pt: float) -> tuple[types.SimpleNamespace, dict]:
    import awkward as ak
    import uproot

    sizes, gen_weight, out = [], [], {"raw_ht": [], "raw_leading_jet": [], "mitigated_ht": []}
    for path in files:
        with uproot.open(path) as handle:
            arrays = handle["Events"].arrays(["Jet_pt", "RawJet_ht", "RawJet_leadPt", "genWeight"])
        sizes.append(len(arrays))
        gen_weight.append(ak.to_numpy(arrays["genWeight"]).astype(np.float64))
        out["raw_ht"].append(ak.to_numpy(arrays["RawJet_ht"]))
        out["raw_leading_jet"].append(ak.to_numpy(arrays["RawJet_leadPt"]))
        pt = arrays["Jet_pt"]
        out["mitigated_ht"].append(ak.to_numpy(ak.sum(pt * (pt >= ht_jet_pt), axis=1)))
    table = types.SimpleNamespace(files=list(files), event_file=np.repeat(np.arange(len(files)), sizes),
                                  event_entry=np.concatenate([np.arange(n) for n in sizes]),
                                  event_weight=np.concatenate(gen_weight))
    return table, {k: np.concatenate(v).astype(np.float64) for k, v in out.items()}


def _weights(info, events, table, lumi, crossing_hz) -> np.ndarray:
    return table_crossing_weights_hz(info, events, table.files, table.event_file, table.event_entry,
                                     table.event_weight, lumi, crossing_hz)


def _threshold(values: np.ndarray, weights: np.ndarray, target: float) -> float:
    """The lowest cut (on the weighted sample's values) whose rate sum(w[v >= cut]) is <= target."""
    order = np.argsort(-values)
    tail = np.cumsum(weights[order])
    above = np.flatnonzero(tail > target)
    return float(values[order][above[0]]) + 1e-6 if len(above) else float(values.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signal", required=True, nargs="+")
    parser.add_argument("--rate", required=True, nargs="+", help="binned files (globs) and zero-bias files")
    parser.add_argument("--ht-jet-pt", type=float, default=20.0)
    parser.add_argument("--split-seed", type=int, default=2718)
    args = parser.parse_args()

    rate_files = sorted(f for pattern in args.rate for f in glob.glob(pattern))
    info = rate_sample_info(rate_files, "crossing")
    crossing_hz = LHC_F_REV_HZ * LHC_BUNCHES
    lumi = info.mu * crossing_hz / (info.sigma_inel_mb * MB_TO_CM2)
    table, rate_vars = _variables(rate_files, args.ht_jet_pt)
    everything = np.ones(len(table.event_file), bool)
    calibration, held_out = split_events(everything, args.split_seed)
    w_cal, w_held = _weights(info, calibration, table, lumi, crossing_hz), _weights(info, held_out, table, lumi,
                                                                                   crossing_hz)
    _, signal_vars = _variables(sorted(f for p in args.signal for f in glob.glob(p)), args.ht_jet_pt)
    out = {"mu": info.mu, "lumi_cm2s": lumi, "signal_events": int(len(signal_vars["raw_ht"])), "seeds": {}}
    for name in rate_vars:
        rows = []
        for target in TARGETS_HZ:
            cut = _threshold(rate_vars[name][calibration], w_cal[calibration], target)
            fired = held_out & (rate_vars[name] >= cut)
            rate = float(w_held[fired].sum())
            sig = signal_vars[name] >= cut
            eff = clopper_pearson(int(sig.sum()), len(sig))
            rows.append({"target_hz": target, "cut_gev": cut, "held_out_rate_hz": rate,
                         "held_out_rate_err_hz": float(np.sqrt((w_held[fired] ** 2).sum())),
                         "n_eff_fired": float(n_eff(w_held[fired].sum(), (w_held[fired] ** 2).sum())),
                         "signal_efficiency": eff.value, "signal_efficiency_68": [eff.low, eff.high]})
        out["seeds"][name] = rows
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
