"""What the user reads: CLI lines and seed-document verdicts from the ``trigger`` metrics (JSON only).

Every number states its sample, error and effective event count; a 0-of-n efficiency prints
its 95 % upper limit; an unresolved rate (nothing fired, or ``n_eff_fired`` below
``trigger.min_n_eff``) prints its 68 % CL upper limit and is warned about; the bias warning is
printed next to the rates it concerns.
"""

from __future__ import annotations

SEED_EFFICIENCY_GOAL = 0.95
SEED_LATENCY_NS = 4000.0


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def hz_text(rate_hz: float, err_hz: float) -> str:
    """``"98.0 ± 4.0 kHz"`` from 1 kHz up, ``"171 ± 9.3 Hz"`` below (never a rounded ``0.0 ± 0.0``)."""
    if rate_hz >= 1e3:
        return f"{rate_hz / 1e3:.1f} ± {err_hz / 1e3:.1f} kHz"
    return f"{rate_hz:.3g} ± {err_hz:.2g} Hz"


def limit_text(limit_hz: float | None) -> str:
    """A 68 % CL upper limit, in kHz from 1 kHz up and in Hz below."""
    if limit_hz is None:
        return "n/a"
    return f"{limit_hz / 1e3:.3g} kHz" if limit_hz >= 1e3 else f"{limit_hz:.3g} Hz"


def rate_text(q: dict) -> str:
    """A quoted rate: value ± error, or for an unresolved one its 68 % CL upper limit and why.

    ``q`` holds ``rate_hz``, ``rate_hz_err``, ``n_eff_fired`` and (since issue 27) ``resolved``,
    ``rate_upper_limit_hz``, ``min_n_eff``; older metrics without ``resolved`` read as resolved.
    """
    if q.get("resolved", True):
        return hz_text(q["rate_hz"], q["rate_hz_err"])
    return (f"< {limit_text(q.get('rate_upper_limit_hz'))} (68 % CL, unresolved: n_eff_fired "
            f"{q.get('n_eff_fired') or 0:.1f} < trigger.min_n_eff {q.get('min_n_eff', 10):g})")


def rate_neff_text(q: dict, where: str = "") -> str:
    """:func:`rate_text` followed by ``(n_eff_fired N[, where])`` (an unresolved rate already names it)."""
    if not q.get("resolved", True):
        return rate_text(q)
    return f"{rate_text(q)} (n_eff_fired {q['n_eff_fired']:.0f}{where})"


def unresolved_warning(t: dict) -> str | None:
    """One warning naming every unresolved quoted rate of the trigger metrics ``t`` (None if all resolved)."""
    where = [f"{kind} seed at {key} kHz" for key, point in (t.get("at_rate") or {}).items()
             for kind in ("network", "kinematic", "event_network", "gbdt_reference")
             if (point.get(kind) or {}).get("resolved") is False]
    where += [f"run's seed at {key} kHz" for key, check in (t.get("rate_at_run_threshold") or {}).items()
              if check.get("resolved") is False]
    if not where:
        return None
    return (f"{len(where)} quoted rate(s) unresolved by the rate sample ({', '.join(where)}): nothing fired or "
            "n_eff_fired < trigger.min_n_eff; quoted as 68 % CL upper limits and never 'met'; use a larger rate "
            "sample or a higher target rate")


def _efficiency(q: dict) -> str:
    if q.get("signal_efficiency_upper_limit") is not None:
        return f"< {100 * q['signal_efficiency_upper_limit']:.1f} % (95 % CL, 0 of {q['signal_events']})"
    low, high = q["signal_efficiency_interval"]
    band = q.get("signal_efficiency_band") or [None, None]
    return (f"{100 * q['signal_efficiency']:.1f} +{100 * (high - q['signal_efficiency']):.1f} "
            f"-{100 * (q['signal_efficiency'] - low):.1f} % (band {_pct(band[0])}..{_pct(band[1])})")


def _seed_line(kind: str, q: dict) -> str:
    return (f"  {kind:<10} {q['seed']['description']}: {rate_neff_text(q)}, efficiency {_efficiency(q)}, "
            f"offline-selected {_pct(q.get('offline_efficiency'))}")


def _run_threshold_lines(t: dict) -> list[str]:
    """The run's own seeds applied to this background (``evaluate``): rate vs the run's, pull when both resolve."""
    lines = []
    for key, check in (t.get("rate_at_run_threshold") or {}).items():
        unresolved = check.get("resolved") is False or check.get("run_resolved") is False
        if check.get("pull") is None and not unresolved:
            continue
        run = {"rate_hz": check["run_rate_hz"], "rate_hz_err": check["run_rate_hz_err"],
               "resolved": check.get("run_resolved", True), "rate_upper_limit_hz": None}
        pull = "n/a (unresolved)" if check.get("pull") is None else f"{check['pull']:+.2f}"
        run_text = rate_text(run) if run["resolved"] else "unresolved"
        lines.append(f"run's seed at {key} kHz on this background: {rate_text(check)} vs run {run_text}: pull {pull}")
    if t.get("rate_at_run_threshold_hz") is not None:
        main = {"rate_hz": t["rate_at_run_threshold_hz"], "rate_hz_err": t["rate_at_run_threshold_hz_err"],
                "n_eff_fired": t.get("rate_at_run_threshold_n_eff_fired") or 0,
                "resolved": t.get("rate_at_run_threshold_resolved", True),
                "rate_upper_limit_hz": t.get("rate_at_run_threshold_upper_limit_hz"),
                "min_n_eff": t.get("rate_at_run_threshold_min_n_eff", 10)}
        lines.append(f"run's own thresholds on this background: {rate_neff_text(main)}")
    return lines


def trigger_summary_lines(result_json: dict) -> list[str]:
    """Terminal lines for the trigger metrics: per rate point the best network and kinematic seeds.

    ``result_json`` is metrics.json's ``trigger`` section (:meth:`TriggerResult.to_json`).
    """
    t = result_json
    if not t or not t.get("enabled"):
        return [t.get("note", "trigger study skipped") if t else "trigger study skipped"]
    if "at_rate" not in t:  # written by an older version
        return [f"trigger: {hz_text(t['rate_hz'], t['rate_hz_err'])}, signal efficiency "
                f"{_pct(t.get('signal_efficiency'))} (older run: no held-out quotes)"]
    sample = t.get("rate_sample", {})
    signal = t.get("signal_sample", {})
    pileup = f", pileup mu {sample['mu']:g}" if sample.get("mu") else ""
    lines = [f"trigger seeds ({t['method']} rate, L = {t['lumi_cm2s']:g} cm^-2 s^-1{pileup}): chosen on the calibration half, "
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
            lines.append(f"    {family:<12} {q['seed']['description']}: {rate_text(q)}, "
                         f"efficiency {_efficiency(q)}{gain_text}")
        ref = point.get("gbdt_reference")
        if ref:
            g = ref.get("gain_over_best_kinematic") or {}
            lines.append(f"  GBDT ref.  {_pct(ref['signal_efficiency'])} at {rate_neff_text(ref)}, gain "
                         f"{100 * g.get('value', float('nan')):+.1f} ± {100 * g.get('err', float('nan')):.1f} points")
        nolep = point.get("no_lepton_jet")
        if nolep:
            g = nolep["gain_over_best_kinematic"]
            lines.append(f"  no lepton-like jet ({nolep['events']} signal events): gain {100 * g['value']:+.1f} ± "
                         f"{100 * g['err']:.1f} points")
    lines += _run_threshold_lines(t)
    for warning in (t.get("bias_warning"), unresolved_warning(t), t.get("pileup_warning")):
        if warning:
            lines.append(f"WARNING: {warning}")
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
    measured = "n/a" if rate is None else (rate_neff_text(t, ", held-out") if "n_eff_fired" in t else rate_text(t))
    eff_text = "n/a" if eff is None else f"{100 * eff:.1f} ± {100 * t['signal_efficiency_err']:.1f} %"
    return [
        ("Output rate", "40 MHz -> 100 kHz", measured,
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
