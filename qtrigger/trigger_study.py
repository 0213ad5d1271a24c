"""The trigger study of one run: the network as an L1 seed at a target rate, on test events.

Uses :mod:`qtrigger.trigger` for the arithmetic. Everything is per *event* of the test
split: the background sample(s) give the rate (cross-section normalisation by default),
the signal sample(s) the efficiency. The seed looks at each event's leading
``hls.jets_per_event`` selected jets (what the firmware sees) with ``pt >= min_jet_pt``,
and fires when ``trigger.min_jets`` of them have score code >= the threshold code.
References at the same rate: a jet-pT cut alone, and a gradient-boosted tree on the same
inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qtrigger import trigger as tr
from qtrigger.errors import QTriggerError

SEED_TARGETS = {"rate_hz": 100e3, "signal_efficiency": 0.95, "background_rejection": 0.99, "latency_ns_l1": 4000.0}
FLOAT_CODE_SCALE = 2.0**20  # float scores (float twin, BDT) are searched on a fine grid of codes


def leading_rank(jet_event: np.ndarray) -> np.ndarray:
    """Rank of each jet within its event (0 = first), for jets stored event by event in pT order."""
    starts = np.r_[0, np.flatnonzero(np.diff(jet_event)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(jet_event)]))
    return np.arange(len(jet_event)) - group_start


def _sample_roles(config, table) -> tuple[list[int], list[int]]:
    roles = {s.name: s.role for s in config.data.samples}
    signal = [i for i, name in enumerate(table.samples) if roles.get(name) == "signal"]
    background = [i for i, name in enumerate(table.samples) if roles.get(name) == "background"]
    return signal, background


def trigger_study(config, prepared, jet_codes: np.ndarray, output_type, run_dir: Path, hls_dir: Path | None,
                  project_name: str | None) -> dict:
    """Threshold for the target rate, efficiencies with errors, pT-cut and BDT references, plots."""
    table, split = prepared.table, prepared.split
    signal_samples, background_samples = _sample_roles(config, table)
    if not signal_samples or not background_samples:
        return {"enabled": False, "note": "no sample has role signal and role background; trigger study skipped"}
    test_events = split.event_part == 2
    background_events = test_events & np.isin(table.event_sample, background_samples)
    signal_events = test_events & np.isin(table.event_sample, signal_samples)
    background_files = sorted({table.files[f] for f in np.unique(table.event_file[np.isin(table.event_sample, background_samples)])})
    info = tr.read_sample_info(background_files)
    rate_fn = tr.SampleRate(info, config.trigger.normalisation, events=background_events, lumi_cm2s=config.trigger.lumi_cm2s,
                            n_bunches=config.trigger.n_bunches)

    mask = split.test
    jet_event, jet_pt = table.event[mask], table.extra["pt"][mask]
    jet_eta = table.extra["eta"][mask]
    min_pt = config.trigger.min_jet_pt if config.trigger.min_jet_pt is not None else config.data.selection.pt_min
    eligible = (leading_rank(jet_event) < config.hls.jets_per_event) & (jet_pt >= min_pt)
    is_signal_label = _signal_labels(config, prepared.labels[mask])
    jet_sample = table.event_sample[jet_event]
    jet_is_signal = is_signal_label & np.isin(jet_sample, signal_samples)
    jet_is_background = ~is_signal_label & np.isin(jet_sample, background_samples)
    n_events, weight, target, k = table.n_events, table.event_weight, config.trigger.target_rate_hz, config.trigger.min_jets

    common = dict(jet_event=jet_event, n_events=n_events, event_weight=weight, rate_fn=rate_fn, target_rate_hz=target,
                  min_jets=k, jet_mask=eligible)
    threshold = tr.calibrate_threshold(jet_codes, **common)
    effs = tr.efficiencies(jet_codes, jet_event, n_events, threshold.threshold_code, signal_events, jet_is_signal,
                           jet_is_background, jet_mask=eligible, min_jets=k)
    cut = tr.pt_cut_for_rate(jet_pt, **common, signal_events=signal_events, jet_is_signal=jet_is_signal)
    result = {
        "enabled": True,
        "method": config.trigger.normalisation,
        "target_rate_hz": target,
        "threshold_code": int(threshold.threshold_code),
        "threshold": threshold.value(output_type) if output_type is not None else threshold.threshold_code / FLOAT_CODE_SCALE,
        "score": config.trigger.score,
        "rate_hz": threshold.rate_hz,
        "rate_hz_err": threshold.rate_err_hz,
        "calibration": threshold.as_dict(),
        "min_jet_pt": min_pt,
        "min_jets": k,
        "jets_per_event": config.hls.jets_per_event,
        "lumi_cm2s": config.trigger.lumi_cm2s,
        "background_sample": {"files": background_files, "xsec_mb": info.xsec_mb, "pthat_min": info.pthat_min,
                              "test_events": int(background_events.sum())},
        "signal_test_events": int(signal_events.sum()),
        **_efficiency_fields(effs),
        "cut_baseline": {"pt_threshold": cut.pt_cut, "rate_hz": cut.rate_hz, "rate_hz_err": cut.rate_err_hz,
                         "signal_efficiency": cut.efficiency.event_efficiency,
                         "signal_efficiency_err": cut.efficiency.event_efficiency_err},
        "completeness_note": _completeness_note(info, min_pt),
    }
    result["gain_over_cut"] = result["signal_efficiency"] - result["cut_baseline"]["signal_efficiency"]
    if config.trigger.bdt and config.labels.mode == "binary":
        result["bdt"] = _bdt(config, prepared, common, signal_events, jet_is_signal, jet_is_background)
        result["gap_to_bdt"] = result["bdt"]["signal_efficiency"] - result["signal_efficiency"]
    if hls_dir is not None and project_name:
        result["decision_hls"] = _decision_hls(config, hls_dir, project_name, output_type, threshold.threshold_code,
                                               jet_codes[eligible], jet_event[eligible])
    _plots(run_dir / "plots", jet_codes, jet_pt, jet_eta, common, threshold.threshold_code, cut.pt_cut, signal_events,
           jet_is_signal, eligible)
    return result


def _signal_labels(config, labels: np.ndarray) -> np.ndarray:
    if config.labels.mode == "binary":
        return labels == 1
    return labels == config.labels.class_names.index(config.labels.score.plus)


def _efficiency_fields(effs) -> dict:
    d = effs.as_dict()
    return {
        "signal_efficiency": d["event_efficiency"], "signal_efficiency_err": d["event_efficiency_err"],
        "signal_jet_efficiency": d["jet_efficiency"], "signal_jet_efficiency_err": d["jet_efficiency_err"],
        "background_rejection": d["background_rejection"], "background_rejection_err": d["background_jet_efficiency_err"],
    }


def _completeness_note(info, min_pt: float) -> str:
    if info.pthat_min and min_pt < 1.5 * info.pthat_min:
        return (f"background generated with pTHat > {info.pthat_min:g} GeV is complete only above ~{1.5 * info.pthat_min:g} GeV "
                f"jet pT; the seed accepts jets from {min_pt:g} GeV, so the rate is underestimated")
    return (f"background complete above the seed's minimum jet pT {min_pt:g} GeV (pTHat > {info.pthat_min or 0:g} GeV); "
            "particle level, no pileup: a real L1 rate would be higher")


def _bdt(config, prepared, common, signal_events, jet_is_signal, jet_is_background) -> dict:
    split, x, y = prepared.split, prepared.inputs, prepared.labels
    bdt = tr.bdt_reference(x[split.train], y[split.train], x[split.test], y[split.test], seed=config.training.seed)
    codes = np.rint(np.asarray(bdt.scores, np.float64) * FLOAT_CODE_SCALE).astype(np.int64)
    threshold = tr.calibrate_threshold(codes, **common)
    effs = tr.efficiencies(codes, common["jet_event"], common["n_events"], threshold.threshold_code, signal_events,
                           jet_is_signal, jet_is_background, jet_mask=common["jet_mask"], min_jets=common["min_jets"])
    return {"auc": bdt.auc, "rate_hz": threshold.rate_hz, **_efficiency_fields(effs)}


def _decision_hls(config, hls_dir, project_name, output_type, threshold_code, codes, events) -> dict:
    _, compact = np.unique(events, return_inverse=True)
    tr.write_decision_hls(hls_dir, project_name, output_type, threshold_code, config.hls.jets_per_event)
    try:
        disagreements = tr.check_decision_csim(hls_dir, project_name, output_type, threshold_code, config.hls.jets_per_event,
                                               jet_codes=codes, jet_event=compact)
    except QTriggerError as err:
        return {"written": True, "csim_checked": False, "note": str(err)}
    return {"written": True, "csim_checked": True, "events": int(compact.max() + 1) if len(compact) else 0,
            "disagreements": int(disagreements)}


def _plots(plots: Path, codes, jet_pt, jet_eta, common, threshold_code, pt_cut, signal_events, jet_is_signal, eligible) -> None:
    plots.mkdir(parents=True, exist_ok=True)
    curve_args = {k: common[k] for k in ("jet_event", "n_events", "event_weight", "rate_fn", "min_jets", "jet_mask")}
    curves = {"network (firmware score)": tr.rate_efficiency_curve(codes, signal_events=signal_events, **curve_args),
              "jet pT cut": tr.rate_efficiency_curve(jet_pt, signal_events=signal_events, **curve_args)}
    tr.plot_rate_vs_efficiency(plots / "rate_vs_efficiency.png", curves, common["target_rate_hz"])
    sig = jet_is_signal
    passes = {"network": (codes >= threshold_code)[sig] & eligible[sig], "jet pT cut": (jet_pt >= pt_cut)[sig] & eligible[sig]}
    tr.plot_jet_efficiency(plots / "efficiency_vs_pt.png", jet_pt[sig], passes, np.array([20, 30, 40, 60, 80, 100, 150, 200, 300, 500]))
    tr.plot_jet_efficiency(plots / "efficiency_vs_eta.png", np.abs(jet_eta[sig]), passes, np.linspace(0, 2.5, 11),
                           xlabel=r"jet $|\eta|$")
    n_events, jet_event = common["n_events"], common["jet_event"]
    leading = tr.leading_jet_pt(jet_pt, jet_event, n_events, jet_mask=sig)
    fires = {"network": tr.event_fires(eligible & (codes >= threshold_code), jet_event, n_events, common["min_jets"]),
             "jet pT cut": tr.event_fires(eligible & (jet_pt >= pt_cut), jet_event, n_events, common["min_jets"])}
    has_signal_jet = signal_events & np.isfinite(leading)
    tr.plot_event_efficiency(plots / "event_efficiency_vs_leading_pt.png", leading[has_signal_jet],
                             {k: v[has_signal_jet] for k, v in fires.items()}, np.array([20, 30, 40, 60, 80, 100, 150, 200, 300, 500]))


def seed_target_rows(metrics: dict) -> list[tuple[str, str, str, str]]:
    """(quantity, seed-document target, measured, met?) — never 'met' without a measurement."""
    t = metrics.get("trigger", {})
    estimate = metrics.get("hls", {}).get("estimate", {})
    budget = metrics.get("hls", {}).get("budget", {}).get("checks", {}).get("latency_ns", {})

    def verdict(ok):
        return "not measured" if ok is None else ("met" if ok else "NOT met")

    rate = t.get("rate_hz")
    eff = t.get("signal_efficiency")
    rej = t.get("background_rejection")
    latency = estimate.get("latency_ns")
    return [
        ("Output rate", "40 MHz -> 100 kHz", f"{rate / 1e3:.1f} ± {t['rate_hz_err'] / 1e3:.1f} kHz" if rate is not None else "n/a",
         verdict(None if rate is None else rate <= SEED_TARGETS["rate_hz"] + t.get("rate_hz_err", 0))),
        ("Signal efficiency (per event)", "> 95 %", f"{100 * eff:.1f} ± {100 * t['signal_efficiency_err']:.1f} %" if eff is not None else "n/a",
         verdict(None if eff is None else eff > SEED_TARGETS["signal_efficiency"])),
        ("Background rejection (per jet)", "> 99 %", f"{100 * rej:.2f} %" if rej is not None else "n/a",
         verdict(None if rej is None else rej > SEED_TARGETS["background_rejection"])),
        ("Latency vs L1 budget", "< 4 µs (seed document)", f"{latency:g} ns (estimate)" if latency is not None else "n/a",
         verdict(None if latency is None else latency < SEED_TARGETS["latency_ns_l1"])),
        ("Latency vs per-algorithm budget", f"< {budget.get('budget', 100):g} ns", f"{latency:g} ns (estimate)" if latency is not None else "n/a",
         verdict(budget.get("fits"))),
    ]
