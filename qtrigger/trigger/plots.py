"""Trigger curves and plots: rate vs efficiency, binned efficiencies with Clopper-Pearson bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qtrigger.inputs.seed_jets import NO_CODE, _no_key, event_keys
from qtrigger.plotting import SIMULATION_LABEL, style
from qtrigger.trigger.rates import RateFn, _tail_sums, binomial_fraction, rates_at

STEP_NOTE = "particle-level jets, no detector response: a pT-cut seed is a step, not a turn-on"
ONE_SIGMA = 0.6826894921370859


def rate_efficiency_curve(
    jet_values: np.ndarray,
    jet_event: np.ndarray,
    n_events: int,
    event_weight: np.ndarray,
    rate_fn: RateFn,
    signal_events: np.ndarray,
    min_jets: int = 1,
    jet_mask: np.ndarray | None = None,
    max_points: int = 400,
) -> dict[str, np.ndarray]:
    """Rate and per-event signal efficiency (unit weights) for up to ``max_points`` thresholds.

    Thresholds are the distinct event keys (thinned evenly if more). Returns arrays
    ``threshold``, ``rate_hz``, ``rate_err_hz``, ``efficiency``, ``efficiency_err``.
    """
    keys = event_keys(np.asarray(jet_values), jet_event, n_events, min_jets, jet_mask)
    observed = np.unique(keys[keys != _no_key(keys)])
    if len(observed) > max_points:
        observed = np.unique(observed[np.linspace(0, len(observed) - 1, max_points).round().astype(int)])
    rates, errs = rates_at(keys, np.asarray(event_weight, dtype=np.float64), rate_fn, observed)
    signal_keys = keys[np.asarray(signal_events, dtype=bool)]
    n_fired, _, _ = _tail_sums(signal_keys, np.ones(len(signal_keys)), observed)
    eff, eff_err = binomial_fraction(n_fired, len(signal_keys))
    return {"threshold": observed, "rate_hz": rates, "rate_err_hz": errs, "efficiency": eff, "efficiency_err": eff_err}


def binned_efficiency(x: np.ndarray, passed: np.ndarray, bins) -> dict[str, np.ndarray]:
    """Efficiency per bin of ``x`` with 68.3% Clopper-Pearson intervals (NaN for empty bins)."""
    from scipy.stats import beta

    x, passed = np.asarray(x, dtype=np.float64), np.asarray(passed, dtype=bool)
    edges = np.asarray(bins, dtype=np.float64)
    n = np.histogram(x, edges)[0]
    k = np.histogram(x[passed], edges)[0]
    alpha = 1 - ONE_SIGMA
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(n > 0, k / np.maximum(n, 1), np.nan)
        lo = np.where(k > 0, beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        hi = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    lo, hi = np.where(n > 0, lo, np.nan), np.where(n > 0, hi, np.nan)
    return {"center": 0.5 * (edges[1:] + edges[:-1]), "half_width": 0.5 * np.diff(edges), "efficiency": eff,
            "err_low": eff - lo, "err_high": hi - eff, "n": n}


def _pyplot():
    return style()


def _finish(plt, fig, ax, path, note: str | None) -> Path:
    ax.set_title(f"{SIMULATION_LABEL}" + (f": {note}" if note else ""), fontsize=12, loc="left")
    ax.legend(fontsize=14)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_rate_vs_efficiency(path, curves: dict[str, dict], target_rate_hz: float | None = None,
                            note: str | None = STEP_NOTE) -> Path:
    """Trigger ROC: rate (log, +-1 sigma band) vs per-event signal efficiency, one curve per seed.

    ``curves`` maps a label to a :func:`rate_efficiency_curve` result.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 8))
    for label, c in curves.items():
        shown = c["rate_hz"] > 0  # log scale; the band is drawn where rate - sigma > 0
        eff, rate, err = c["efficiency"][shown], c["rate_hz"][shown], c["rate_err_hz"][shown]
        (line,) = ax.plot(eff, rate, "-", label=label)
        ax.fill_between(eff, rate - err, rate + err, where=rate > err, color=line.get_color(), alpha=0.25, lw=0)
    if target_rate_hz:
        ax.axhline(target_rate_hz, color="grey", ls="--", label=f"target {target_rate_hz / 1e3:g} kHz")
    ax.set_yscale("log")
    ax.set_xlabel("signal event efficiency")
    ax.set_ylabel("rate [Hz]")
    return _finish(plt, fig, ax, path, note)


def plot_binned_efficiency(path, x: np.ndarray, passes: dict[str, np.ndarray], bins, xlabel: str,
                           ylabel: str = "efficiency", note: str | None = STEP_NOTE) -> Path:
    """Efficiency vs ``x`` with Clopper-Pearson error bars, one series per seed (``passes``: label -> bool).

    Per-jet efficiency vs jet pT or |eta| (x = signal jets' pT, passes = jet passes), or per-event
    efficiency vs leading signal-jet pT (x = :func:`leading_jet_pt`, passes = event fires).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 8))
    for (label, passed), marker in zip(passes.items(), "osD^v"):
        b = binned_efficiency(x, passed, bins)
        ax.errorbar(b["center"], b["efficiency"], xerr=b["half_width"], yerr=[b["err_low"], b["err_high"]],
                    fmt=marker, ms=5, label=label)
    ax.set_ylim(0, 1.15)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _finish(plt, fig, ax, path, note)


def plot_jet_efficiency(path, x, passes, bins, xlabel: str = r"jet $p_T$ [GeV]", note: str | None = STEP_NOTE):
    """Per-jet signal efficiency vs ``x`` (jet pT or |eta|) for each seed at the same rate."""
    return plot_binned_efficiency(path, x, passes, bins, xlabel, "per-jet signal efficiency", note)


def plot_event_efficiency(path, leading_pt, fires, bins, xlabel: str = r"leading signal-jet $p_T$ [GeV]",
                          note: str | None = STEP_NOTE):
    """Per-event signal efficiency vs the leading signal-jet pT for each seed at the same rate."""
    return plot_binned_efficiency(path, leading_pt, fires, bins, xlabel, "per-event signal efficiency", note)


# --------------------------------------------------------------------------- the study's figures


def _seed_curve(seed, background, held_out, signal_jets, signal_events, max_points: int = 300) -> dict:
    """Held-out rate and signal efficiency as the seed's tuned threshold moves (other thresholds fixed)."""

    keys = seed.keys(background)[held_out.events]
    observed = np.unique(keys[keys != NO_CODE])
    if len(observed) > max_points:
        observed = np.unique(observed[np.linspace(0, len(observed) - 1, max_points).round().astype(int)])
    rates, errs, _, _ = held_out.at(keys, observed)
    signal_keys = seed.keys(signal_jets)[signal_events]
    eff = (signal_keys[None, :] >= observed[:, None]).mean(axis=1) if len(signal_keys) else np.zeros(len(observed))
    return {"rate_hz": rates, "rate_err_hz": errs, "efficiency": eff}


def study_plots(directory, ev, point, words, score_lsb) -> list[Path]:
    """Rate vs efficiency (held-out) and event efficiency vs leading-jet pT and HT for the seeds at one rate."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    quotes = {"network: " + point.network.seed.describe(words, score_lsb): point.network}
    if point.kinematic is not None:
        quotes["best kinematic: " + point.kinematic.seed.describe(words)] = point.kinematic
    if "single_jet" in point.baselines:
        quotes["single jet: " + point.baselines["single_jet"].seed.describe(words)] = point.baselines["single_jet"]
    curves = {label: _seed_curve(q.seed, ev.rate, ev.held_out, ev.main, ev.signal.events) for label, q in quotes.items()}
    note = f"held-out rate half; {STEP_NOTE}"
    paths = [plot_rate_vs_efficiency(directory / "rate_vs_efficiency.png", curves, point.target_rate_hz, note)]
    signal = ev.signal.events
    fires = {label.split(":")[0]: q.seed.fires(ev.main)[signal] for label, q in quotes.items()}
    leading = ev.main.pt[signal, 0] * words.pt_lsb_gev
    has_jet = ev.main.valid[signal, 0]
    bins = np.array([20, 30, 40, 60, 80, 100, 150, 200, 300, 500])
    paths.append(plot_event_efficiency(directory / "event_efficiency_vs_leading_pt.png", leading[has_jet],
                                       {k: v[has_jet] for k, v in fires.items()}, bins,
                                       xlabel=r"leading jet $p_T$ [GeV] (signal test events)"))
    ht = ev.main.ht[signal] * words.pt_lsb_gev
    paths.append(plot_binned_efficiency(directory / "event_efficiency_vs_ht.png", ht, fires,
                                        np.array([0, 100, 150, 200, 250, 300, 400, 500, 700, 1000]), r"$H_T$ [GeV]",
                                        "per-event signal efficiency"))
    return paths
