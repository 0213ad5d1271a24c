"""A menu of single-object seeds at a fixed total rate, alone and with the anomaly seed added (issue 32, part 3).

Seeds (each "key >= threshold code", keys per event from the run's inputs):

- ``HT``: the seed's HT word (the ``ht`` input);
- ``single jet``, ``e/gamma``, ``muon``: the leading object's pT word of ``L1Jet``, ``L1EG``, ``L1Mu``;
- ``MET``: the ``L1EtSum`` MET pT word;
- ``anomaly``: the exact sum mu^2 code (the menu "with anomaly" only).

Allocation (signal-independent, as every threshold here): every seed of a menu gets the same share s of rate on the
calibration half of the rate sample (its threshold is the lowest code whose calibration rate is <= s); s is the
largest share whose menu (the OR of its seeds) has a calibration rate <= the target. The menus are quoted on the
held-out half (rate, n_eff) and on each named signal's quoted events (efficiency); the gain of adding the anomaly
seed is paired on the same signal events. Beside them, each seed alone at the target rate (``single_seeds``): per
signal the best kinematic one (HT, jet, e/gamma, muon or MET, chosen on the signal's selection half) against the
anomaly seed, paired on the quoted half.
"""

from __future__ import annotations

import numpy as np

from qtrigger.trigger.efficiency import efficiency_of, paired_gain

MENU_SEEDS = {"HT": "ht", "single jet": "L1Jet0_pt", "e/gamma": "L1EG0_pt", "muon": "L1Mu0_pt", "MET": "MET_pt"}
BISECTION_STEPS = 40


def input_codes(x: np.ndarray, preprocessor, name: str) -> np.ndarray:
    """The integer code of input ``name`` from the network inputs ``x`` (``code * 2^-shift``, exact)."""
    j = list(preprocessor.names).index(name)
    return np.rint(np.asarray(x)[:, j] * 2.0 ** int(preprocessor.shifts[j])).astype(np.int64)


def menu_keys(x: np.ndarray, preprocessor, anomaly_codes: np.ndarray) -> dict[str, np.ndarray]:
    """Per seed, its key per event: the kinematic words of :data:`MENU_SEEDS` present in the inputs, and the
    anomaly score codes."""
    keys = {seed: input_codes(x, preprocessor, name) for seed, name in MENU_SEEDS.items()
            if name in preprocessor.names}
    keys["anomaly"] = np.asarray(anomaly_codes, np.int64)
    return keys


def rate_curve(keys: np.ndarray, rate) -> tuple[np.ndarray, np.ndarray]:
    """(codes, rates) of "key >= code" on ``rate`` (a WeightedRate) at every distinct key and one above the largest."""
    codes = np.unique(rate._selected(keys))
    codes = np.append(codes, codes[-1] + 1 if len(codes) else 1)
    rates, _, _, _ = rate.at(keys, codes)
    return codes, np.asarray(rates, np.float64)


def _threshold_for_share(curve: tuple[np.ndarray, np.ndarray], share_hz: float) -> int:
    """The lowest code whose rate is <= ``share_hz`` (one above the largest key when none is)."""
    codes, rates = curve
    ok = np.flatnonzero(rates <= share_hz)
    return int(codes[ok[0]]) if len(ok) else int(codes[-1])


def tune_menu(keys: dict[str, np.ndarray], seeds: list[str], calibration, target_hz: float) -> dict[str, int]:
    """Thresholds of the equal-share menu of ``seeds`` whose calibration rate is <= ``target_hz`` (module docstring)."""
    curves = {s: rate_curve(keys[s], calibration) for s in seeds}

    def thresholds(share):
        return {s: _threshold_for_share(curves[s], share) for s in seeds}

    lo, hi = 0.0, float(target_hz)
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if calibration.of(fires(keys, thresholds(mid))).rate_hz <= target_hz else (lo, mid)
    return thresholds(lo)


def fires(keys: dict[str, np.ndarray], cuts: dict[str, int]) -> np.ndarray:
    """Per event: any seed of the menu fires."""
    return np.logical_or.reduce([keys[s] >= c for s, c in cuts.items()])


def single_seeds(rate_keys: dict, calibration, held_out, signal_keys: dict, target: float, lsb: dict) -> dict:
    """Each seed alone at ``target`` (lowest code at or below it on calibration), quoted on the held-out half; per
    signal the best kinematic seed (chosen on the signal's selection half) and the anomaly seed's paired gain over it
    on the quoted half."""
    cuts = {s: _threshold_for_share(rate_curve(rate_keys[s], calibration), target) for s in rate_keys}
    seeds = {}
    for s, c in cuts.items():
        point = held_out.of(rate_keys[s] >= c)
        seeds[s] = {"threshold": c * lsb[s], "threshold_code": c, "held_out_rate_hz": point.rate_hz,
                    "held_out_rate_hz_err": point.rate_err_hz, "held_out_n_eff_fired": point.n_eff_fired}
    per_signal = {}
    for name, (keys, quoted, selection) in signal_keys.items():
        kinematic = [s for s in cuts if s != "anomaly"]
        best = max(kinematic, key=lambda s: (float(np.mean(keys[s][selection] >= cuts[s])),
                                             -seeds[s]["held_out_rate_hz"]))
        a, b = (keys["anomaly"] >= cuts["anomaly"])[quoted], (keys[best] >= cuts[best])[quoted]
        gain = paired_gain(a, b)
        per_signal[name] = {"efficiency": {s: float(np.mean(keys[s][quoted] >= cuts[s])) for s in cuts},
                            "best_kinematic": best, "anomaly": efficiency_of(a).value,
                            "anomaly_err": efficiency_of(a).err, "best_kinematic_efficiency": efficiency_of(b).value,
                            "best_kinematic_err": efficiency_of(b).err, "gain": gain.value, "gain_err": gain.err}
    return {"seeds": seeds, "signals": per_signal}


def menu_study(rate_keys: dict, calibration, held_out, signal_keys: dict[str, tuple[dict, np.ndarray, np.ndarray]],
               targets: list[float], lsb: dict[str, float]) -> dict:
    """The kinematic menu and the menu with the anomaly seed at each target total rate (module docstring).

    ``rate_keys``: :func:`menu_keys` of the rate sample's events; ``signal_keys``: name → (its keys, the quoted
    events mask, the selection events mask); ``lsb``: per seed, its key's LSB (GeV, or the score's). Returns per
    target (kHz key) the two menus' thresholds, held-out rates and per-signal
    efficiencies, with the paired gain of adding the anomaly seed.
    """
    kinematic = [s for s in MENU_SEEDS if s in rate_keys]
    out = {}
    for target in targets:
        entry = {}
        for label, seeds in (("kinematic", kinematic), ("with_anomaly", [*kinematic, "anomaly"])):
            cuts = tune_menu(rate_keys, seeds, calibration, target)
            point = held_out.of(fires(rate_keys, cuts))
            entry[label] = {
                "thresholds": {s: c * lsb[s] for s, c in cuts.items()},
                "threshold_codes": cuts, "held_out_rate_hz": point.rate_hz, "held_out_rate_hz_err": point.rate_err_hz,
                "held_out_n_eff_fired": point.n_eff_fired, "resolved": point.resolved,
                "calibration_rate_hz": calibration.of(fires(rate_keys, cuts)).rate_hz}
        per_signal = {}
        for name, (keys, quoted, _) in signal_keys.items():
            a = fires(keys, entry["with_anomaly"]["threshold_codes"])[quoted]
            b = fires(keys, entry["kinematic"]["threshold_codes"])[quoted]
            gain = paired_gain(a, b)
            per_signal[name] = {"kinematic": efficiency_of(b).value, "kinematic_err": efficiency_of(b).err,
                                "with_anomaly": efficiency_of(a).value, "with_anomaly_err": efficiency_of(a).err,
                                "gain": gain.value, "gain_err": gain.err, "events": int(quoted.sum())}
        entry["signals"] = per_signal
        entry["single_seeds"] = single_seeds(rate_keys, calibration, held_out, signal_keys, target, lsb)
        out[f"{target / 1e3:g}"] = entry
    return out
