"""What the user reads: CLI lines and seed-document verdicts from the ``trigger`` metrics (JSON only).

Every number states its sample, error and effective event count; a 0-of-n efficiency prints
its 95 % upper limit; the bias warning is printed next to the rates it concerns.
"""

from __future__ import annotations

SEED_EFFICIENCY_GOAL = 0.95
SEED_LATENCY_NS = 4000.0


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _efficiency(q: dict) -> str:
    if q.get("signal_efficiency_upper_limit") is not None:
        return f"< {100 * q['signal_efficiency_upper_limit']:.1f} % (95 % CL, 0 of {q['signal_events']})"
    low, high = q["signal_efficiency_interval"]
    band = q.get("signal_efficiency_band") or [None, None]
    return (f"{100 * q['signal_efficiency']:.1f} +{100 * (high - q['signal_efficiency']):.1f} "
            f"-{100 * (q['signal_efficiency'] - low):.1f} % (band {_pct(band[0])}..{_pct(band[1])})")


def _seed_line(kind: str, q: dict) -> str:
    return (f"  {kind:<10} {q['seed']['description']}: {q['rate_hz'] / 1e3:.1f} ± {q['rate_hz_err'] / 1e3:.1f} kHz "
            f"(n_eff_fired {q['n_eff_fired']:.0f}), efficiency {_efficiency(q)}, "
            f"offline-selected {_pct(q.get('offline_efficiency'))}")


def trigger_summary_lines(result_json: dict) -> list[str]:
    """Terminal lines for the trigger metrics: per rate point the best network and kinematic seeds.

    ``result_json`` is metrics.json's ``trigger`` section (:meth:`TriggerResult.to_json`).
    """
    t = result_json
    if not t or not t.get("enabled"):
        return [t.get("note", "trigger study skipped") if t else "trigger study skipped"]
    if "at_rate" not in t:  # written by an older version
        return [f"trigger: {t['rate_hz'] / 1e3:.1f} ± {t['rate_hz_err'] / 1e3:.1f} kHz, signal efficiency "
                f"{_pct(t.get('signal_efficiency'))} (older run: no held-out quotes)"]
    sample = t.get("rate_sample", {})
    signal = t.get("signal_sample", {})
    lines = [f"trigger seeds ({t['method']} rate, L = {t['lumi_cm2s']:g} cm^-2 s^-1): chosen on the calibration half, "
             f"quoted on the held-out half ({sample.get('held_out', 'n/a')})",
             f"  efficiencies: {signal.get('quoted_on', 'signal test events')}, Clopper-Pearson 68 %; band = "
             f"threshold at held-out rate target ± 1 sigma; offline selection: {signal.get('offline_selection', 'n/a')}"]
    presel = t.get("preselection")
    if presel and presel.get("description") not in (None, "none"):
        lines.append(f"  preselection of the event_network seed: {presel['description']}: keeps "
                     f"{_pct(presel['signal_efficiency'])} of signal test events, held-out rate "
                     f"{presel['held_out_rate_hz'] / 1e3:.0f} kHz; kinematic seeds searched without it")
    for key, point in t["at_rate"].items():
        lines.append(f"at {key} kHz:")
        lines.append(_seed_line("network", point["network"]))
        if point.get("kinematic"):
            lines.append(_seed_line("kinematic", point["kinematic"]))
        gain = point.get("gain_over_best_kinematic")
        if gain:
            lines.append(f"  gain       {100 * gain['value']:+.1f} ± {100 * gain['err']:.1f} points (paired: "
                         f"+{gain['gained']} / -{gain['lost']} of {gain['n']} signal events)")
        families = point.get("families") or {}
        for family, q in families.items() if len(families) > 1 else ():  # the best seed of each network family
            g = q.get("gain_over_best_kinematic")
            gain_text = "" if not g else f", gain {100 * g['value']:+.1f} ± {100 * g['err']:.1f} points"
            lines.append(f"    {family:<12} {q['seed']['description']}: {q['rate_hz'] / 1e3:.1f} ± "
                         f"{q['rate_hz_err'] / 1e3:.1f} kHz, efficiency {_efficiency(q)}{gain_text}")
        ref = point.get("gbdt_reference")
        if ref:
            g = ref.get("gain_over_best_kinematic") or {}
            lines.append(f"  GBDT ref.  {_pct(ref['signal_efficiency'])} at {ref['rate_hz'] / 1e3:.1f} ± "
                         f"{ref['rate_hz_err'] / 1e3:.1f} kHz (n_eff_fired {ref['n_eff_fired']:.0f}), gain "
                         f"{100 * g.get('value', float('nan')):+.1f} ± {100 * g.get('err', float('nan')):.1f} points")
        nolep = point.get("no_lepton_jet")
        if nolep:
            g = nolep["gain_over_best_kinematic"]
            lines.append(f"  no lepton-like jet ({nolep['events']} signal events): gain {100 * g['value']:+.1f} ± "
                         f"{100 * g['err']:.1f} points")
    for key, check in (t.get("rate_at_run_threshold") or {}).items():
        if check.get("pull") is not None:
            lines.append(f"run's seed at {key} kHz on this background: {check['rate_hz'] / 1e3:.1f} ± "
                         f"{check['rate_hz_err'] / 1e3:.1f} kHz vs run {check['run_rate_hz'] / 1e3:.1f} ± "
                         f"{check['run_rate_hz_err'] / 1e3:.1f} kHz: pull {check['pull']:+.2f}")
    if "rate_at_run_threshold_hz" in t and t["rate_at_run_threshold_hz"] is not None:
        lines.append(f"run's own thresholds on this background: {t['rate_at_run_threshold_hz'] / 1e3:.1f} ± "
                     f"{t['rate_at_run_threshold_hz_err'] / 1e3:.1f} kHz "
                     f"(n_eff_fired {t.get('rate_at_run_threshold_n_eff_fired') or 0:.0f})")
    if t.get("bias_warning"):
        lines.append(f"WARNING: {t['bias_warning']}")
    decision = t.get("decision_hls") or {}
    if decision.get("csim_checked"):
        lines.append(f"accept bit (g++, {decision['header']}): {decision['disagreements']} of {decision['events']} "
                     "events differ from Python")
    return lines


def seed_target_rows(metrics: dict) -> list[tuple[str, str, str, str]]:
    """(quantity, seed-document target, measured, met / not met / undetermined / not measured)."""
    t = metrics.get("trigger", {})
    estimate = metrics.get("hls", {}).get("estimate", {})
    budget = metrics.get("hls", {}).get("budget", {}).get("checks", {}).get("latency_ns", {})
    targets = t.get("targets", {})

    def verdict(ok):
        return "not measured" if ok is None else ("met" if ok else "NOT met")

    rate, eff, rej = t.get("rate_hz"), t.get("signal_efficiency"), t.get("background_rejection")
    latency = estimate.get("latency_ns")
    rate_text = "n/a" if rate is None else (f"{rate / 1e3:.1f} ± {t['rate_hz_err'] / 1e3:.1f} kHz"
                                            + (f" (n_eff_fired {t['n_eff_fired']:.0f}, held-out)" if "n_eff_fired" in t
                                               else ""))
    eff_text = "n/a" if eff is None else f"{100 * eff:.1f} ± {100 * t['signal_efficiency_err']:.1f} %"
    return [
        ("Output rate", "40 MHz -> 100 kHz", rate_text,
         targets.get("rate") or verdict(None if rate is None else rate <= 100e3 + t.get("rate_hz_err", 0))),
        ("Signal efficiency (per event)", "> 95 %", eff_text,
         targets.get("signal_efficiency") or verdict(None if eff is None else eff > SEED_EFFICIENCY_GOAL)),
        *([] if t.get("level") == "event" else [
            ("Background rejection (per jet)", "> 99 %", f"{100 * rej:.2f} %" if rej is not None else "n/a",
             verdict(None if rej is None else rej > 0.99))]),
        ("Latency vs L1 budget", "< 4 µs (seed document)", f"{latency:g} ns (estimate)" if latency is not None else "n/a",
         verdict(None if latency is None else latency < SEED_LATENCY_NS)),
        ("Latency vs per-algorithm budget", f"< {budget.get('budget', 100):g} ns",
         f"{latency:g} ns (estimate)" if latency is not None else "n/a", verdict(budget.get("fits"))),
    ]
