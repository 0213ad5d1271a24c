"""Efficiencies of a seed: per event (signal events that fire), per jet, background rejection.

Per-event signal efficiency counts every event of the signal sample (events without eligible
jets never fire). Per-jet efficiencies count signal jets (denominator includes ineligible jets).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from qtrigger.inputs.seed_jets import _check_jets, event_fires
from qtrigger.trigger.rates import weighted_fraction


@dataclass
class EfficiencyResult:
    """Signal efficiencies (per event and per jet) and per-jet background rejection at a threshold."""

    threshold: float
    event_efficiency: float
    event_efficiency_err: float
    n_signal_events: int
    jet_efficiency: float
    jet_efficiency_err: float
    n_signal_jets: int
    background_jet_efficiency: float
    background_jet_efficiency_err: float
    background_rejection: float
    n_background_jets: int

    def as_dict(self) -> dict:
        """JSON-ready."""
        return asdict(self)


def _fraction(passed: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """Weighted fraction passing with its weighted binomial error (NaN for an empty set)."""
    if len(passed) == 0:
        return float("nan"), float("nan")
    fired = weight[passed]
    f, err = weighted_fraction(fired.sum(), (fired**2).sum(), weight.sum(), (weight**2).sum())
    return float(f), float(err)


def efficiencies(
    jet_values: np.ndarray,
    jet_event: np.ndarray,
    n_events: int,
    threshold,
    signal_events: np.ndarray,
    jet_is_signal: np.ndarray,
    jet_is_background: np.ndarray | None = None,
    jet_mask: np.ndarray | None = None,
    min_jets: int = 1,
    event_weight: np.ndarray | None = None,
) -> EfficiencyResult:
    """Efficiencies of ``value >= threshold`` (codes or pT) on eligible jets, as in the module docstring.

    ``signal_events``: per-event mask of the signal sample(s) (:func:`events_of`).
    ``jet_is_signal``/``jet_is_background``: per-jet masks (background defaults to not signal).
    ``event_weight``: per event (None = unit weights; then errors are plain binomial).
    """
    values = np.asarray(jet_values)
    jet_event = _check_jets(jet_event, n_events, values, jet_is_signal, jet_is_background, jet_mask)
    eligible = np.ones(len(values), bool) if jet_mask is None else np.asarray(jet_mask, dtype=bool)
    passed = eligible & (values >= threshold)
    weight = np.ones(n_events) if event_weight is None else np.asarray(event_weight, dtype=np.float64)
    signal_events = np.asarray(signal_events, dtype=bool)
    fires = event_fires(passed, jet_event, n_events, min_jets)
    signal_jet = np.asarray(jet_is_signal, dtype=bool)
    background_jet = ~signal_jet if jet_is_background is None else np.asarray(jet_is_background, dtype=bool)
    event_eff = _fraction(fires[signal_events], weight[signal_events])
    jet_eff = _fraction(passed[signal_jet], weight[jet_event[signal_jet]])
    bkg_eff = _fraction(passed[background_jet], weight[jet_event[background_jet]])
    return EfficiencyResult(
        threshold=float(threshold), event_efficiency=event_eff[0], event_efficiency_err=event_eff[1],
        n_signal_events=int(signal_events.sum()), jet_efficiency=jet_eff[0], jet_efficiency_err=jet_eff[1],
        n_signal_jets=int(signal_jet.sum()), background_jet_efficiency=bkg_eff[0],
        background_jet_efficiency_err=bkg_eff[1], background_rejection=1.0 - bkg_eff[0],
        n_background_jets=int(background_jet.sum()),
    )


# --------------------------------------------------------------------------- intervals and paired gains

CENTRAL_CL = 0.6826894921370859  # 68.3 % central interval (1 sigma)
LIMIT_CL = 0.95  # one-sided upper limit quoted for 0 of n


@dataclass(frozen=True)
class Efficiency:
    """A fraction ``passed / total`` with a 68.3 % central interval ``[low, high]``.

    ``method`` names how the interval was made: ``clopper_pearson`` (unweighted counts, from
    ``scipy.stats.binomtest``) or ``clopper_pearson_neff`` (weighted: the interval of
    ``n_eff`` events with the weighted fraction, ``n_eff = (sum w)^2 / sum w^2``). For 0 passing,
    ``upper_limit`` is the 95 % one-sided upper limit and the value is quoted as ``< limit``.
    """

    passed: float
    total: float
    value: float
    low: float
    high: float
    method: str
    upper_limit: float | None = None

    @property
    def err(self) -> float:
        """Symmetrised half-width of the interval (for tables that need one number)."""
        return 0.5 * (self.high - self.low)

    def text(self, digits: int = 1) -> str:
        """``35.7 +0.9 -0.9 % (2,996 events)``, or ``< 52.7 % (95 % CL, 0 of 4 events)``."""
        n = f"{self.total:,.0f}" if self.method == "clopper_pearson" else f"n_eff {self.total:,.0f}"
        if self.total == 0:
            return "n/a (no events)"
        if self.upper_limit is not None:
            return f"< {100 * self.upper_limit:.{digits}f} % (95 % CL, 0 of {n} events)"
        return (f"{100 * self.value:.{digits}f} +{100 * (self.high - self.value):.{digits}f} "
                f"-{100 * (self.value - self.low):.{digits}f} % ({n} events)")

    def as_dict(self) -> dict:
        """JSON-ready."""
        return asdict(self)


def _beta_interval(k: float, n: float) -> tuple[float, float]:
    """Clopper-Pearson bounds for real-valued k of n (the beta-quantile form of binomtest's interval)."""
    from scipy.stats import beta

    alpha = 1 - CENTRAL_CL
    low = float(beta.ppf(alpha / 2, k, n - k + 1)) if k > 0 else 0.0
    high = float(beta.ppf(1 - alpha / 2, k + 1, n - k)) if k < n else 1.0
    return low, high


def clopper_pearson(passed: int, total: int) -> Efficiency:
    """``passed / total`` with the 68.3 % Clopper-Pearson interval (95 % upper limit when 0 pass)."""
    from scipy.stats import binomtest

    passed, total = int(passed), int(total)
    if total <= 0:
        return Efficiency(0, 0, float("nan"), float("nan"), float("nan"), "clopper_pearson")
    interval = binomtest(passed, total).proportion_ci(confidence_level=CENTRAL_CL, method="exact")
    limit = None
    if passed == 0:
        limit = float(binomtest(0, total, alternative="less").proportion_ci(confidence_level=LIMIT_CL,
                                                                            method="exact").high)
    return Efficiency(passed, total, passed / total, float(interval.low), float(interval.high), "clopper_pearson",
                      limit)


def efficiency_of(passed: np.ndarray) -> Efficiency:
    """Clopper-Pearson efficiency of a boolean array (one entry per event or jet, unit weights)."""
    passed = np.asarray(passed, dtype=bool)
    return clopper_pearson(int(passed.sum()), len(passed))


def weighted_efficiency(passed: np.ndarray, weight: np.ndarray) -> Efficiency:
    """Weighted fraction ``sum_passed w / sum w``; interval: Clopper-Pearson on ``n_eff`` events.

    ``n_eff = (sum w)^2 / sum w^2`` and ``k_eff = fraction * n_eff`` (method
    ``clopper_pearson_neff``; exact for unit weights).
    """
    passed, weight = np.asarray(passed, dtype=bool), np.asarray(weight, dtype=np.float64)
    total, total2 = float(weight.sum()), float((weight**2).sum())
    if total <= 0 or total2 <= 0:
        return Efficiency(0, 0, float("nan"), float("nan"), float("nan"), "clopper_pearson_neff")
    fraction = float(weight[passed].sum()) / total
    n_eff = total**2 / total2
    low, high = _beta_interval(fraction * n_eff, n_eff)
    limit = None
    if fraction == 0:
        from scipy.stats import beta

        limit = float(beta.ppf(LIMIT_CL, 1, n_eff))
    return Efficiency(fraction * n_eff, n_eff, fraction, low, high, "clopper_pearson_neff", limit)


@dataclass(frozen=True)
class PairedGain:
    """Efficiency difference ``A - B`` of two seeds on the same events, with its paired error.

    Only events where the seeds disagree carry information: ``gained`` (A fires, B not) and
    ``lost`` (B fires, A not) of ``n``: ``value = (gained - lost) / n`` and
    ``err = sqrt(gained + lost - (gained - lost)^2 / n) / n`` (the variance of a mean of
    per-event differences in {-1, 0, 1}).
    """

    value: float
    err: float
    gained: int
    lost: int
    n: int

    def as_dict(self) -> dict:
        """JSON-ready."""
        return asdict(self)


def paired_gain(fires_a: np.ndarray, fires_b: np.ndarray) -> PairedGain:
    """Gain of seed A over seed B (efficiency points as a fraction) on the same events."""
    a, b = np.asarray(fires_a, dtype=bool), np.asarray(fires_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired_gain needs the same events: {a.shape} vs {b.shape}")
    n = len(a)
    if n == 0:
        return PairedGain(float("nan"), float("nan"), 0, 0, 0)
    gained, lost = int((a & ~b).sum()), int((b & ~a).sum())
    diff = gained - lost
    var = max(gained + lost - diff**2 / n, 0.0) / n**2
    return PairedGain(diff / n, float(np.sqrt(var)), gained, lost, n)
