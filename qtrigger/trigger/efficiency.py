"""Efficiencies of a seed: per event (signal events that fire), per jet, background rejection.

Per-event signal efficiency counts every event of the signal sample (events without eligible
jets never fire). Per-jet efficiencies count signal jets (denominator includes ineligible jets).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from qtrigger.trigger.events import _check_jets, event_fires
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
