"""Checks of generated pileup samples against their mu = 0 twins (the same hard events, the same seed)."""

from __future__ import annotations

import numpy as np

from qtrigger.errors import QTriggerError

VERTEX_TOLERANCE_CM = 0.1


def _read(path: str) -> dict:
    import awkward as ak
    import uproot

    with uproot.open(path) as handle:
        events = handle["Events"]
        names = [k for k in ("event", "Jet_pt", "Jet_eta", "Jet_phi", "PV_z", "L1PV_z", "RawJet_ht", "Pileup_nInt")
                 if k in events.keys()]
        arrays = events.arrays(names, library="ak")
    return {k: arrays[k] if k.startswith("Jet_") else ak.to_numpy(arrays[k]) for k in names}


def _ht(pt, jet_pt: float) -> np.ndarray:
    import awkward as ak

    return ak.to_numpy(ak.sum(pt * (pt > jet_pt), axis=1))


def _unmatched(pu: dict, ref: dict, jet_pt: float, match_dr: float) -> tuple[int, int]:
    """(jets above ``jet_pt`` in ``pu``, of them without a ``ref`` jet within ``match_dr``) over paired events."""
    import awkward as ak

    sel = pu["Jet_pt"] > jet_pt
    eta, phi = pu["Jet_eta"][sel], pu["Jet_phi"][sel]
    pairs_eta = ak.cartesian([eta, ref["Jet_eta"]], nested=True)
    pairs_phi = ak.cartesian([phi, ref["Jet_phi"]], nested=True)
    d_eta = pairs_eta["0"] - pairs_eta["1"]
    d_phi = (pairs_phi["0"] - pairs_phi["1"] + np.pi) % (2 * np.pi) - np.pi
    matched = ak.any(d_eta**2 + d_phi**2 < match_dr**2, axis=2)
    return int(ak.sum(ak.num(eta))), int(ak.sum(~matched))


def _spread(ratio: np.ndarray) -> dict:
    lo, med, hi = np.percentile(ratio, [15.865, 50, 84.135])
    return {"median": float(med), "resolution": float((hi - lo) / 2), "events": int(len(ratio))}


def paired_mitigation_summary(zero_pileup: str, with_pileup: str, ht_jet_pt: float = 30.0,
                              match_dr: float = 0.2, match_jet_pt: float = 20.0) -> dict:
    """HT(mu) / HT(mu = 0) (median, resolution), unmatched jets and L1-vertex efficiency on paired events."""
    ref, pu = _read(zero_pileup), _read(with_pileup)
    if len(ref["event"]) != len(pu["event"]) or not np.array_equal(ref["event"], pu["event"]):
        raise QTriggerError(f"{zero_pileup} and {with_pileup} do not hold the same events (generate both with one "
                            "seed, process and --events)")
    ht0, ht = _ht(ref["Jet_pt"], ht_jet_pt), _ht(pu["Jet_pt"], ht_jet_pt)
    both = ht0 > 0
    out = {"ht_jet_pt_gev": ht_jet_pt, "ht_ratio": _spread(ht[both] / ht0[both])}
    if "RawJet_ht" in pu:  # the raw jets (no pileup subtraction) above the generator's jet threshold
        ref_ht = _ht(ref["Jet_pt"], match_jet_pt)
        out["raw_ht_ratio"] = _spread(pu["RawJet_ht"][ref_ht > 0] / ref_ht[ref_ht > 0])
    n, lost = _unmatched(pu, ref, match_jet_pt, match_dr)
    out["unmatched_jets"] = {"jet_pt_gev": match_jet_pt, "jets": n, "unmatched": lost, "fraction": lost / max(n, 1),
                             "match_dr": match_dr}
    if "L1PV_z" in pu:
        good = np.abs(pu["L1PV_z"] - pu["PV_z"]) < VERTEX_TOLERANCE_CM
        out["l1_vertex_within_1mm"] = {"fraction": float(good.mean()), "events": int(len(good))}
    if "Pileup_nInt" in pu:
        out["mean_interactions"] = float(pu["Pileup_nInt"].mean())
    return out

