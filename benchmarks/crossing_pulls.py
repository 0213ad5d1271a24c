"""Rates per bunch crossing against an independent pure zero-bias sample (issue 29 acceptance).

The combined sample (pTHat-binned hard events + zero-bias crossings at one mu, weighted once per crossing by
``qtrigger.data.samples.table_crossing_weights_hz``) and an independently generated zero-bias sample (own seed,
own library) give the rate of loose cuts on HT (scalar sum of jet pT above --ht-jet-pt) and on the leading jet.
The cuts are placed where the independent sample fires about 10, 1 and 0.3 MHz. Prints JSON: per cut both
rates with their statistical errors, the pull, and (for comparison) the per-interaction stitching of the
binned files alone (``cross_section`` normalisation), which overcounts at pileup. Errors group the crossings that
share a library interaction (``qtrigger.trigger.shared``); ``pull_naive_errors`` is the pull with sum w^2 errors.

    python benchmarks/crossing_pulls.py --binned 'rate_bins/*.root' --zero-bias zb.root --independent izb.root
"""

from __future__ import annotations

import argparse
import glob
import json
import types

import numpy as np

from qtrigger.data.crossing import rate_sample_info, shared_interaction_groups, table_crossing_weights_hz
from qtrigger.data.samples import event_xsec_weights_mb, read_sample_info
from qtrigger.trigger.rates import LHC_BUNCHES, LHC_F_REV_HZ, WeightedRate
from qtrigger.trigger.table_rates import crossing_rate

MB_TO_CM2 = 1e-27
TARGETS_HZ = (10e6, 1e6, 0.3e6)


def _read(files: list[str], ht_jet_pt: float) -> tuple[types.SimpleNamespace, dict]:
    import awkward as ak
    import uproot

    sizes, ht, lead, gen_weight = [], [], [], []
    for path in files:
        with uproot.open(path) as handle:
            pt = handle["Events"]["Jet_pt"].array()
            gen_weight.append(handle["Events"]["genWeight"].array(library="np").astype(np.float64))
        sizes.append(len(pt))
        ht.append(ak.to_numpy(ak.sum(pt * (pt > ht_jet_pt), axis=1)))
        lead.append(ak.to_numpy(ak.fill_none(ak.max(pt, axis=1), 0.0)))
    table = types.SimpleNamespace(files=list(files), event_file=np.repeat(np.arange(len(files)), sizes),
                                  event_entry=np.concatenate([np.arange(n) for n in sizes]),
                                  event_weight=np.concatenate(gen_weight))
    return table, {"ht": np.concatenate(ht), "leading_jet_pt": np.concatenate(lead)}


def _groups(table) -> np.ndarray | None:
    every = np.ones(len(table.event_file), bool)
    return shared_interaction_groups(table.files, table.event_file, table.event_entry, every)


def _at(rate: WeightedRate, values: np.ndarray, cut: float) -> tuple[float, float, float]:
    """(rate, error, naive error) of ``values > cut``."""
    fired = (values > cut).astype(np.int64)
    grouped = rate.point(fired, 1)
    naive = WeightedRate(rate.weight, rate.scale_hz, rate.method, rate.events).point(fired, 1)
    return grouped.rate_hz, grouped.rate_err_hz, naive.rate_err_hz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binned", required=True, help="glob of the pTHat-binned files")
    parser.add_argument("--zero-bias", required=True, nargs="+")
    parser.add_argument("--independent", required=True, nargs="+", help="independent zero-bias crossings")
    parser.add_argument("--lumi", type=float, default=None, help="cm^-2 s^-1 (default: from mu and sigma_inel)")
    parser.add_argument("--ht-jet-pt", type=float, default=20.0)
    args = parser.parse_args()

    binned = sorted(glob.glob(args.binned))
    files = [*binned, *args.zero_bias]
    info = rate_sample_info(files, "crossing")
    crossing_hz = LHC_F_REV_HZ * LHC_BUNCHES
    lumi = args.lumi or info.mu * crossing_hz / (info.sigma_inel_mb * MB_TO_CM2)
    table, cut_vars = _read(files, args.ht_jet_pt)
    every = np.ones(len(table.event_file), bool)
    weights = table_crossing_weights_hz(info, every, table.files, table.event_file, table.event_entry,
                                        table.event_weight, lumi, crossing_hz)
    hard = np.arange(len(every)) < sum(1 for f in table.event_file if table.files[f] in binned)
    stitched = lumi * MB_TO_CM2 * event_xsec_weights_mb(read_sample_info(binned), table.event_file[hard],
                                                         table.event_weight[hard], table.files)
    combined = crossing_rate(weights, every, group=_groups(table))
    ind_table, ind_vars = _read(list(args.independent), args.ht_jet_pt)
    n_ind = len(ind_vars["ht"])
    independent = WeightedRate(np.ones(n_ind), crossing_hz, "zero_bias", np.ones(n_ind, bool),
                               group=_groups(ind_table))
    out = {"mu": info.mu, "lumi_cm2s": lumi, "crossing_rate_hz": crossing_hz, "independent_crossings": n_ind,
           "combined_events": int(len(every)), "combined_weighted_events": int((weights > 0).sum()), "cuts": []}
    for name in ("ht", "leading_jet_pt"):
        for target in TARGETS_HZ:
            cut = float(np.quantile(ind_vars[name], 1 - target / crossing_hz))
            r_ind, e_ind, naive_ind = _at(independent, ind_vars[name], cut)
            r_comb, e_comb, naive_comb = _at(combined, cut_vars[name][combined.events], cut)
            r_old = float(stitched[cut_vars[name][hard] > cut].sum())
            out["cuts"].append({"variable": name, "cut_gev": cut, "independent_zero_bias_hz": [r_ind, e_ind],
                                "combined_crossing_hz": [r_comb, e_comb],
                                "pull": (r_comb - r_ind) / float(np.hypot(e_comb, e_ind)),
                                "pull_naive_errors": (r_comb - r_ind) / float(np.hypot(naive_comb, naive_ind)),
                                "per_interaction_stitching_hz": r_old,
                                "overcounting": r_old / r_ind if r_ind > 0 else None})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
