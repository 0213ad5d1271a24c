"""The anomaly seed's trigger study: "sum mu^2 >= t" tuned on the rate sample, quoted per named signal sample.

The ``anomaly`` seed is an event-score seed (:data:`~qtrigger.trigger.seeds.EVENT_SCORE_FAMILIES`): its threshold
is the lowest code whose rate on the calibration half of the rate sample is <= the target, whatever the signal.
Per named signal sample (``trigger.signal_samples``, never read for training, selection or thresholds) the study
of :mod:`qtrigger.trigger.event_study` is run with that sample's events split in two halves: the best kinematic
seed (``jets``, ``ht``) is chosen on the first half and every efficiency is quoted on the second, beside the
held-out rate and n_eff; the anomaly seed's gain over the best kinematic seed is paired (same signal events).
The rate sample is read and scored once. The menu gain at a fixed total rate (HT, single jet, e/gamma, muon and MET
seeds, alone and with the anomaly seed) is :mod:`qtrigger.trigger.object_menu`. The score's correlation with HT
(Pearson and Spearman) is taken on the training sample's test events (zero-bias crossings when the autoencoder
trains on them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from qtrigger.data.crossing import rate_sample_info
from qtrigger.inputs.seed_jets import jet_words
from qtrigger.trigger.event_study import event_trigger_study, scored_rate_sample
from qtrigger.trigger.menu import khz_key
from qtrigger.trigger.object_menu import MENU_SEEDS, menu_keys, menu_study
from qtrigger.trigger.rates import split_events
from qtrigger.trigger.table_rates import sample_rate


def _point_summary(point, words, score_lsb) -> dict:
    """One rate point of one signal: the anomaly seed and the best kinematic seed, same held-out rate half."""
    net, kin, gain = point.network, point.kinematic, point.gain
    out = {"anomaly": {"seed": net.seed.describe(words, score_lsb), "rate_hz": net.rate.rate_hz,
                       "rate_hz_err": net.rate.rate_err_hz, "n_eff_fired": net.rate.n_eff_fired,
                       "resolved": net.rate.resolved, "calibration_n_eff_fired": net.calibration_n_eff_fired,
                       "efficiency": net.efficiency.value,
                       "efficiency_err": net.efficiency.err, "events": int(net.efficiency.total)}}
    if kin is not None:
        out["best_kinematic"] = {"seed": kin.seed.describe(words), "rate_hz": kin.rate.rate_hz,
                                 "rate_hz_err": kin.rate.rate_err_hz, "n_eff_fired": kin.rate.n_eff_fired,
                                 "efficiency": kin.efficiency.value, "efficiency_err": kin.efficiency.err}
    if gain is not None:
        out["gain_over_best_kinematic"] = {"value": gain.value, "err": gain.err, "gained": gain.gained,
                                           "lost": gain.lost, "n": gain.n, "method": "paired (same signal events)"}
    return out


def score_ht_correlation(ht_gev: np.ndarray, score: np.ndarray, where: str) -> dict:
    """Pearson and Spearman correlation of the anomaly score with HT over the given events."""
    ht_gev, score = np.asarray(ht_gev, np.float64), np.asarray(score, np.float64)
    ok = len(score) > 2 and np.std(score) > 0 and np.std(ht_gev) > 0
    return {"events": int(len(score)), "where": where,
            "pearson": float(np.corrcoef(ht_gev, score)[0, 1]) if ok else None,
            "spearman": float(spearmanr(ht_gev, score).statistic) if ok else None}


def _menus(config, rate, signals: dict, score_fn, preprocessor, score_lsb: float) -> dict:
    """:func:`~qtrigger.trigger.object_menu.menu_study` on the rate sample's halves (the split of every seed)."""
    t = config.trigger
    table, jets, x, events = rate[0], rate[1], rate[2], rate[3]
    files = sorted({table.files[f] for f in np.unique(table.event_file[events])})
    info = rate_sample_info(files, t.normalisation)
    kw = dict(tree=config.data.tree, lumi_cm2s=t.lumi_cm2s, n_bunches=t.n_bunches, min_n_eff=t.min_n_eff)
    calibration_events, held_out_events = split_events(events, t.rate_split_seed)
    calibration = sample_rate(info, t.normalisation, calibration_events, table, **kw)
    held_out = sample_rate(info, t.normalisation, held_out_events, table, **kw)
    signal_keys = {name: (menu_keys(sig.inputs, preprocessor, score_fn(sig.inputs)),
                          sig.is_signal & (sig.split.event_part == 2), sig.is_signal & (sig.split.event_part == 1))
                   for name, sig in signals.items()}
    targets = [t.target_rate_hz, *[r for r in t.extra_rates_hz if r != t.target_rate_hz]]
    formats = next(iter(signals.values())).spec.input_formats
    lsb = {seed: formats[name].lsb for seed, name in MENU_SEEDS.items() if name in formats} | {"anomaly": score_lsb}
    study = menu_study(menu_keys(x, preprocessor, jets.event_score), calibration, held_out, signal_keys, targets, lsb)
    return {"allocation": "equal rate share per seed on the calibration half, the largest share whose OR is <= the "
                          "target; quoted on the held-out half and each signal's quoted half",
            "seeds": {seed: name for seed, name in MENU_SEEDS.items() if name in preprocessor.names},
            "at_rate": study}


def anomaly_trigger_study(config, data, signals: dict, score_fn, network, run_dir: Path | None, hls_dir=None,
                          project_name: str | None = None) -> dict:
    """The ``trigger`` metrics of an autoencoder run (module docstring).

    ``data``: the training sample's :class:`~qtrigger.levels.event.EventData` (background); ``signals``: name →
    EventData of a named signal sample (labels 1, split into a selection and a quoted half); ``score_fn`` scores
    inputs with the exact integer chain (sum mu^2 codes); ``network``: the scored network (its score type; with
    ``hls_dir`` and ``project_name`` the accept bit is checked in g++ on the first signal's events).
    """
    words, score_type = jet_words(config), network.output_type
    rate = None
    per_signal, first = {}, None
    for k, (name, sig) in enumerate(signals.items()):
        rate = rate or scored_rate_sample(config, sig, score_fn)
        result = event_trigger_study(config, sig, score_fn, score_type, run_dir if k == 0 else None, gbdt=False,
                                     network=network if k == 0 and hls_dir is not None else None,
                                     hls_dir=hls_dir, project_name=project_name, keep_decision_events=k == 0,
                                     rate_sample=rate)
        first = first or result
        per_signal[name] = {khz_key(p.target_rate_hz): _point_summary(p, words, score_type.lsb)
                            for p in result.points}
    out = first.to_json()
    out["level"] = "event (autoencoder)"
    out["quoted_signal"] = next(iter(signals))
    out["anomaly"] = {
        "score": "sum of the encoder's mu_i^2, exact integer codes (LSB " f"{score_type.lsb:g})",
        "signals": per_signal,
        "signal_use": "efficiencies only: each sample's first half chooses the best kinematic seed, the second half "
                      "is quoted; the anomaly threshold is set on the rate sample alone",
    }
    out["anomaly"]["menu"] = _menus(config, rate, signals, score_fn, data.preprocessor, score_type.lsb)
    test = data.split.test
    ht = data.built.jets.ht[test] * words.pt_lsb_gev
    out["anomaly"]["score_ht_correlation"] = score_ht_correlation(
        ht, score_fn(data.inputs[test]), f"training sample's test events ({int(test.sum()):,}; background only)")
    return out
