"""Threshold calibration: the lowest integer code whose rate is <= a target.

The rate is a step function of the code: every code in ``(c_prev, c]`` (``c`` an observed event
key) selects the same events, so the reported code is ``c_prev + 1``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType
from qtrigger.inputs.seed_jets import _no_key, event_keys
from qtrigger.trigger.rates import RateFn, rates_at


@dataclass
class ThresholdResult:
    """The lowest threshold meeting a rate target, with its neighbours and statistical band.

    ``equivalent`` = (lowest, highest) code selecting the same events on this sample.
    ``band`` = (lowest code with rate <= target + sigma, lowest code with rate <= target -
    sigma), sigma = ``rate_err_hz``: the codes the calibration would pick if the measured
    rates moved by +-1 sigma. It always contains ``threshold_code``; it is (code, code) when
    the rate steps between codes are larger than the statistical error.
    """

    threshold_code: int
    rate_hz: float
    rate_err_hz: float
    target_rate_hz: float
    below_code: int
    rate_below_hz: float
    rate_below_err_hz: float
    above_code: int
    rate_above_hz: float
    rate_above_err_hz: float
    equivalent: tuple[int, int]
    band: tuple[int, int]
    min_jets: int
    n_candidates: int

    def value(self, output_type: FixedType) -> float:
        """The threshold in score units for the network's output type."""
        return self.threshold_code * output_type.lsb

    def as_dict(self) -> dict:
        """JSON-ready."""
        return asdict(self)


def _search(keys: np.ndarray, event_weight: np.ndarray, rate_fn: RateFn, target: float, min_jets: int):
    """Candidates (distinct keys + one above all), their rates/errors, and the first index at target."""
    if not target >= 0:
        raise ValueError(f"target rate must be >= 0 Hz, got {target}")
    observed = np.unique(keys[keys != _no_key(keys)])
    if len(observed) == 0:
        raise QTriggerError(f"no event has {min_jets} eligible jet(s): nothing can fire")
    integer = np.issubdtype(keys.dtype, np.integer)
    beyond = observed[-1] + 1 if integer else np.nextafter(observed[-1], np.inf)
    candidates = np.r_[observed, beyond].astype(keys.dtype)
    rates, errs = rates_at(keys, np.asarray(event_weight, dtype=np.float64), rate_fn, candidates)
    meets = rates <= target
    if not meets.any():
        raise QTriggerError(f"no threshold reaches {target:g} Hz (rate with nothing firing is {rates[-1]:g} Hz)")
    return candidates, rates, errs, int(np.argmax(meets))


def _lowest_equivalent(candidates: np.ndarray, index: int) -> int:
    """Lowest integer code selecting the same events as ``candidates[index]``."""
    return int(candidates[index]) if index == 0 else int(candidates[index - 1]) + 1


def _first_code(candidates: np.ndarray, rates: np.ndarray, limit: float) -> int:
    """Lowest integer code with rate <= limit (the all-off code when no rate is that low)."""
    meets = np.flatnonzero(rates <= limit)
    return _lowest_equivalent(candidates, meets[0]) if len(meets) else int(candidates[-1])


def calibrate_threshold(
    jet_codes: np.ndarray,
    jet_event: np.ndarray,
    n_events: int,
    event_weight: np.ndarray,
    rate_fn: RateFn,
    target_rate_hz: float = 100e3,
    min_jets: int = 1,
    jet_mask: np.ndarray | None = None,
) -> ThresholdResult:
    """Lowest integer score code whose event rate is <= ``target_rate_hz`` (see module docstring).

    ``rate_fn(fires, event_weight)`` gets per-event arrays over all ``n_events`` (use a
    :class:`SampleRate` restricted to the background events; it is evaluated for all codes
    with one sort). ``jet_mask`` marks eligible jets (e.g. ``jet_pt >= min_jet_pt``).
    """
    codes = np.asarray(jet_codes)
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"jet_codes must be integer codes (FixedType.to_codes), got dtype {codes.dtype}")
    keys = event_keys(codes, jet_event, n_events, min_jets, jet_mask)
    weight = np.asarray(event_weight, dtype=np.float64)
    candidates, rates, errs, j = _search(keys, weight, rate_fn, target_rate_hz, min_jets)
    code = _lowest_equivalent(candidates, j)
    (below, above), (below_err, above_err) = rates_at(keys, weight, rate_fn, np.array([code - 1, code + 1]))
    band = (_first_code(candidates, rates, target_rate_hz + errs[j]), _first_code(candidates, rates,
                                                                               target_rate_hz - errs[j]))
    return ThresholdResult(
        threshold_code=code, rate_hz=float(rates[j]), rate_err_hz=float(errs[j]),
        target_rate_hz=float(target_rate_hz),
        below_code=code - 1, rate_below_hz=float(below), rate_below_err_hz=float(below_err),
        above_code=code + 1, rate_above_hz=float(above), rate_above_err_hz=float(above_err),
        equivalent=(code, int(candidates[j])), band=band, min_jets=int(min_jets), n_candidates=len(candidates),
    )
