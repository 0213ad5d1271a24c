"""Trigger rates with errors: cross-section (``L sigma F``) and zero-bias normalisation.

Cross-section rate ``R = L * sigma * F``, ``F = S / W`` (``S`` = fired weight, ``W`` = weight of
the events given, or ``genEventSumw`` when all are given), with the weighted binomial error
``Var(F) = [(1 - 2F) sum_fired w^2 + F^2 W2] / W^2`` (``F(1-F)/N`` for unit weights).
Zero-bias rate ``R = (k / N) f_rev n_bunches`` for minimum-bias samples (one event = one
filled crossing). ``n_eff`` = (sum w)^2 / sum w^2 states the statistical power of a weighted sum.

Every quoted rate knows its floor (:class:`RatePoint`): a rate with nothing fired, or with
``n_eff_fired`` below ``min_n_eff`` (``trigger.min_n_eff``, default 10), is *unresolved* and is
quoted as a 68 % CL upper limit, never as a value: ``R_up = (scale / W) mu_68(n_eff_fired) w_max``,
with ``mu_68(n) = P^-1(n + 1, 0.68)`` the one-sided 68 % CL Poisson upper limit on the mean after
``n`` observed (effective) events (the inverse regularised lower incomplete gamma function; 1.14
for n = 0) and ``w_max`` the heaviest weight among the fired events and the next ``min_n_eff``
events to fire (the highest keys below the threshold, ties included): the events this sample
would need to resolve the rate. Where no other event can fire: the heaviest fired event, or the
sample's heaviest event when nothing fired either.
``R_up >= R`` always (``n_eff w_max >= sum_fired w``); for unit weights it is the Poisson limit.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import gammaincinv

from qtrigger.data.samples import SampleInfo
from qtrigger.errors import QTriggerError
from qtrigger.inputs.seed_jets import NO_CODE
from qtrigger.trigger.shared import group_codes, grouped_tail_sums, grouped_totals

log = logging.getLogger(__name__)

MB_TO_CM2 = 1e-27
DEFAULT_LUMI_CM2S = 2e34
LHC_BUNCHES = 2748
LHC_F_REV_HZ = 11245.6
DEFAULT_MIN_N_EFF = 10.0  # trigger.min_n_eff: a rate on fewer effective fired events is unresolved
UPPER_LIMIT_CL = 0.68

RateFn = Callable[[np.ndarray, np.ndarray], tuple[float, float]]


def _require_xsec(info: SampleInfo) -> float:
    if info.xsec_mb is None:
        raise QTriggerError(
            f"no cross-section for {info.where()}: its Runs tree has no genXsec_mb (real CMS NanoAOD stores "
            "none); set one with dataclasses.replace(info, xsec_mb=..., xsec_err_mb=...) or use a zero-bias rate"
        )
    return info.xsec_mb


def _require_minbias(info: SampleInfo) -> None:
    if not info.is_minbias:
        has_flag = not any(m.endswith(": isMinBias") for m in info.missing)
        state = "isMinBias = 0" if has_flag else "no isMinBias in its Runs tree"
        raise QTriggerError(f"zero-bias rate needs a minimum-bias sample, but {info.where()} has {state}")


def weighted_fraction(sumw_fired, sumw2_fired, sumw_all, sumw2_all, cross_fired=None) -> tuple[np.ndarray, np.ndarray]:
    """``F = S / W`` and its weighted binomial error ``sqrt[(1-2F) sum_fired w^2 + F^2 W2] / W``.

    Vectorised over the fired sums. Reduces to ``sqrt(F (1 - F) / N)`` for unit weights. For events grouped by a
    shared interaction (:mod:`qtrigger.trigger.shared`) the squares are summed over groups and ``cross_fired``
    (``sum_g A_g W_g``) takes the place of the fired squares in the middle term:
    ``sqrt[sum_g A_g^2 - 2F sum_g A_g W_g + F^2 sum_g W_g^2] / W``.
    """
    if sumw_all <= 0:
        raise QTriggerError(f"the sum of event weights is {sumw_all:g}: cannot normalise a rate or efficiency")
    fraction = np.asarray(sumw_fired, dtype=np.float64) / sumw_all
    square = np.asarray(sumw2_fired, dtype=np.float64)
    cross = square if cross_fired is None else np.asarray(cross_fired, dtype=np.float64)
    var = (square - 2 * fraction * cross + fraction**2 * sumw2_all) / sumw_all**2
    return fraction, np.sqrt(np.clip(var, 0.0, None))


def binomial_fraction(k, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``p = k / n`` and ``sqrt(p (1 - p) / n)`` (vectorised over k)."""
    if n <= 0:
        raise QTriggerError("no events: cannot compute a fraction")
    p = np.asarray(k, dtype=np.float64) / n
    return p, np.sqrt(np.clip(p * (1 - p), 0.0, None) / n)


def _fires_and_weights(fires: np.ndarray, event_weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    fires = np.asarray(fires, dtype=bool)
    weight = np.ones(len(fires)) if event_weight is None else np.asarray(event_weight, dtype=np.float64)
    if weight.shape != fires.shape:
        raise ValueError(f"fires {fires.shape} and event_weight {weight.shape} differ in shape")
    return fires, weight


def _normalisation(info: SampleInfo, event_weight: np.ndarray) -> tuple[float, float]:
    """(W, W2): the Runs sums when all the sample's events are given, else the given events' sums."""
    n = len(event_weight)
    if n > info.n_events:
        raise QTriggerError(f"{n} events given but genEventCount = {info.n_events} for {info.where()}")
    if n < info.n_events:
        return float(event_weight.sum()), float((event_weight**2).sum())
    total = float(event_weight.sum())
    if not math.isclose(total, info.sumw, rel_tol=1e-3, abs_tol=1e-9):
        raise QTriggerError(
            f"event weights sum to {total:g} but genEventSumw = {info.sumw:g} for {info.where()}: pass genWeight"
        )
    return info.sumw, info.sumw2


def _cross_section_rate(sumw_fired, sumw2_fired, weight, info, lumi_cm2s, include_xsec_err):
    """Vectorised cross-section rate from fired weight sums (see module docstring)."""
    xsec = _require_xsec(info)
    fraction, fraction_err = weighted_fraction(sumw_fired, sumw2_fired, *_normalisation(info, weight))
    scale = lumi_cm2s * xsec * MB_TO_CM2
    rate, err = scale * fraction, scale * fraction_err
    if include_xsec_err and info.xsec_err_mb:
        err = np.hypot(err, rate * info.xsec_err_mb / xsec)
    return rate, err


def rate_cross_section(
    fires: np.ndarray,
    event_weight: np.ndarray,
    info: SampleInfo,
    lumi_cm2s: float = DEFAULT_LUMI_CM2S,
    include_xsec_err: bool = False,
) -> tuple[float, float]:
    """(rate_hz, rate_err_hz) = L sigma (sum_fired w / W) with the weighted binomial error.

    ``fires`` and ``event_weight`` cover the events of this one sample (all of them, or a
    random subset normalised to its own weight sum).
    """
    fires, weight = _fires_and_weights(fires, event_weight)
    fired = weight[fires]
    rate, err = _cross_section_rate(fired.sum(), (fired**2).sum(), weight, info, lumi_cm2s, include_xsec_err)
    return float(rate), float(err)


def _zero_bias_rate(n_fired, n_total: int, info: SampleInfo, n_bunches: int, f_rev: float):
    _require_minbias(info)
    if n_total > info.n_events:
        raise QTriggerError(f"{n_total} events given but genEventCount = {info.n_events} for {info.where()}")
    p, p_err = binomial_fraction(n_fired, n_total)
    return f_rev * n_bunches * p, f_rev * n_bunches * p_err


def rate_zero_bias(
    fires: np.ndarray, info: SampleInfo, n_bunches: int = LHC_BUNCHES, f_rev: float = LHC_F_REV_HZ
) -> tuple[float, float]:
    """(rate_hz, rate_err_hz) = fraction firing x f_rev x n_bunches, binomial error; minimum bias only."""
    fires = np.asarray(fires, dtype=bool)
    rate, err = _zero_bias_rate(int(fires.sum()), len(fires), info, n_bunches, f_rev)
    return float(rate), float(err)


def _tail_sums(keys: np.ndarray, weight: np.ndarray, thresholds: np.ndarray):
    """For each threshold t: (number, sum w, sum w^2) of the events with key >= t."""
    order = np.argsort(keys, kind="stable")
    sorted_keys, w = keys[order], weight[order]
    tail_w = np.r_[np.cumsum(w[::-1])[::-1], 0.0]
    tail_w2 = np.r_[np.cumsum((w**2)[::-1])[::-1], 0.0]
    index = np.searchsorted(sorted_keys, thresholds, side="left")
    return len(keys) - index, tail_w[index], tail_w2[index]


@dataclass(eq=False)
class SampleRate:
    """A ``rate_fn(fires, event_weight) -> (rate_hz, rate_err_hz)`` for one sample.

    ``fires``/``event_weight`` are per event over the whole table; ``events`` (per-event
    bool, None = all) selects the events of this sample. ``method`` is ``"cross_section"``
    or ``"zero_bias"``. :meth:`rates_at` evaluates many thresholds at once (one sort).
    """

    info: SampleInfo
    method: str = "cross_section"
    events: np.ndarray | None = None
    lumi_cm2s: float = DEFAULT_LUMI_CM2S
    n_bunches: int = LHC_BUNCHES
    f_rev: float = LHC_F_REV_HZ
    include_xsec_err: bool = False

    def __post_init__(self) -> None:
        if self.method == "cross_section":
            _require_xsec(self.info)
            if self.info.is_stitched:
                raise QTriggerError(f"{self.info.where()} is stitched from pTHat bins: its genEventSumw mixes bins; "
                                    "rate it with absolute weights (qtrigger.data.samples.event_xsec_weights_mb, WeightedRate)")
            if self.info.is_minbias:
                log.warning("cross-section rate of a minimum-bias sample counts interactions, not crossings; "
                            "use method='zero_bias'")
        elif self.method == "zero_bias":
            _require_minbias(self.info)
        else:
            raise ValueError(f"unknown rate method {self.method!r}; expected 'cross_section' or 'zero_bias'")

    def _select(self, per_event: np.ndarray) -> np.ndarray:
        return per_event if self.events is None else per_event[np.asarray(self.events, dtype=bool)]

    def _from_sums(self, n_fired, sumw_fired, sumw2_fired, weight):
        if self.method == "cross_section":
            return _cross_section_rate(sumw_fired, sumw2_fired, weight, self.info, self.lumi_cm2s,
                                       self.include_xsec_err)
        if len(weight) and not np.all(weight == weight[0]):
            raise QTriggerError(f"zero-bias rate counts events, but {self.info.where()} has unequal genWeight")
        return _zero_bias_rate(n_fired, len(weight), self.info, self.n_bunches, self.f_rev)

    def __call__(self, fires: np.ndarray, event_weight: np.ndarray) -> tuple[float, float]:
        fires, weight = _fires_and_weights(fires, event_weight)
        fires, weight = self._select(fires), self._select(weight)
        fired = weight[fires]
        rate, err = self._from_sums(int(fires.sum()), fired.sum(), (fired**2).sum(), weight)
        return float(rate), float(err)

    def rates_at(self, keys: np.ndarray, event_weight: np.ndarray, thresholds: np.ndarray):
        """(rates, errors) for every threshold, an event firing iff its key >= threshold."""
        keys, weight = self._select(np.asarray(keys)), self._select(np.asarray(event_weight, dtype=np.float64))
        return self._from_sums(*_tail_sums(keys, weight, np.asarray(thresholds)), weight)


def rates_at(keys: np.ndarray, event_weight: np.ndarray, rate_fn: RateFn, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """(rates, errors) at each threshold; one sort for a :class:`SampleRate`, one call each otherwise."""
    thresholds = np.asarray(thresholds)
    if hasattr(rate_fn, "rates_at"):
        rates, errs = rate_fn.rates_at(keys, event_weight, thresholds)
        return (np.broadcast_to(rates, thresholds.shape).astype(float),
                np.broadcast_to(errs, thresholds.shape).astype(float))
    pairs = np.array([rate_fn(keys >= t, event_weight) for t in thresholds], dtype=np.float64).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


# --------------------------------------------------------------------------- rate of one sample half


def n_eff(sumw, sumw2):
    """Effective number of events ``(sum w)^2 / sum w^2`` (0 where nothing is summed); vectorised."""
    sumw, sumw2 = np.asarray(sumw, dtype=np.float64), np.asarray(sumw2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sumw2 > 0, sumw**2 / np.where(sumw2 > 0, sumw2, 1.0), 0.0)


def poisson_upper_limit(n_observed, cl: float = UPPER_LIMIT_CL):
    """One-sided Poisson upper limit on the mean after ``n_observed`` events: ``P^-1(n + 1, cl)``.

    1.14 for n = 0 at 68 % CL; ``n_observed`` may be an effective (non-integer) count; vectorised.
    """
    return gammaincinv(np.asarray(n_observed, dtype=np.float64) + 1.0, cl)


@dataclass(frozen=True)
class RatePoint:
    """A rate with its error and the statistics behind it (``n_eff_fired`` = effective fired events).

    :attr:`resolved` is False when nothing fired or ``n_eff_fired < min_n_eff``: the rate is then
    quoted only as ``rate_upper_limit_hz`` (68 % CL, module docstring) and never meets a target.
    """

    rate_hz: float
    rate_err_hz: float
    n_fired: int
    n_eff_fired: float
    rate_upper_limit_hz: float | None = None
    min_n_eff: float = DEFAULT_MIN_N_EFF

    @property
    def resolved(self) -> bool:
        """Something fired, on at least ``min_n_eff`` effective events."""
        return self.n_fired > 0 and self.n_eff_fired >= self.min_n_eff

    def as_dict(self) -> dict:
        """JSON-ready (``rate_upper_limit_hz`` only for an unresolved rate)."""
        return {"rate_hz": self.rate_hz, "rate_hz_err": self.rate_err_hz, "n_fired": self.n_fired,
                "n_eff_fired": self.n_eff_fired, "resolved": self.resolved, "min_n_eff": self.min_n_eff,
                "rate_upper_limit_hz": None if self.resolved else self.rate_upper_limit_hz}


def limit_weight(keys: np.ndarray, weight: np.ndarray, threshold, n_next: float) -> float:
    """The heaviest weight among the events with key >= ``threshold`` and the next ``n_next`` to fire.

    The next events are those with the highest keys below the threshold (every event sharing the
    last such key included); keys ``NO_CODE`` never fire. Where no event is left to fire: the
    heaviest fired event, or the sample's heaviest event when nothing fired either.
    """
    fired = keys >= threshold
    waiting = np.sort(keys[~fired & (keys != NO_CODE)])
    if not len(waiting):
        return float(weight[fired].max()) if fired.any() else float(weight.max(initial=0.0))
    last = waiting[max(len(waiting) - int(np.ceil(n_next)), 0)]
    return float(weight[keys >= last].max())  # the fired and the next events (last is never NO_CODE)


@dataclass(frozen=True, eq=False)
class WeightedRate:
    """The rate of events of one sample (or one half of it): ``R = scale_hz * sum_fired w / sum w``.

    Cross-section normalisation: ``w`` are absolute weights in mb
    (:func:`qtrigger.data.samples.event_xsec_weights_mb`) and ``scale_hz = L * sum w`` (the total
    cross-section when each pTHat bin is normalised on the events given). Zero bias: unit
    weights, ``scale_hz = f_rev * n_bunches``. Errors: weighted binomial (:func:`weighted_fraction`).
    ``events`` selects this sample's events from per-event arrays over a whole table. ``group`` (per selected
    event, optional) labels events that share an interaction (a reused pileup-library interaction): errors and
    ``n_eff`` then sum over groups (:mod:`qtrigger.trigger.shared`).
    """

    weight: np.ndarray
    scale_hz: float
    method: str
    events: np.ndarray
    description: str = ""
    min_n_eff: float = DEFAULT_MIN_N_EFF
    group: np.ndarray | None = None

    def _selected(self, keys) -> np.ndarray:
        keys = np.asarray(keys)
        return keys[self.events] if len(keys) != len(self.weight) else keys

    def at(self, keys: np.ndarray, thresholds) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(rate, error, n_fired, n_eff_fired) for each threshold; an event fires iff its key >= threshold.

        ``keys`` is per event over the whole table (selected with ``events``) or already selected.
        """
        keys = self._selected(keys)
        thresholds = np.asarray(thresholds)
        if self.group is None:
            n_fired, sumw, sumw2 = _tail_sums(keys, self.weight, thresholds)
            cross, sumw2_all = None, float((self.weight**2).sum())
        else:
            codes = group_codes(self.group)
            n_fired, sumw, sumw2, cross = grouped_tail_sums(keys, self.weight, codes, thresholds)
            sumw2_all, _ = grouped_totals(self.weight, codes)
        fraction, err = weighted_fraction(sumw, sumw2, float(self.weight.sum()), sumw2_all, cross)
        return self.scale_hz * fraction, self.scale_hz * err, np.asarray(n_fired), n_eff(sumw, sumw2)

    def point(self, keys: np.ndarray, threshold: int) -> RatePoint:
        """The rate of "key >= threshold" with its upper limit (used when unresolved, module docstring)."""
        keys = self._selected(keys)
        rate, err, n, neff = (float(v[0]) for v in self.at(keys, np.array([threshold])))
        hz_per_weight = self.scale_hz / float(self.weight.sum())
        limit = hz_per_weight * float(poisson_upper_limit(neff)) * limit_weight(keys, self.weight, threshold,
                                                                               self.min_n_eff)
        return RatePoint(rate, err, int(n), neff, limit, self.min_n_eff)

    def of(self, fires: np.ndarray) -> RatePoint:
        """The rate of a per-event decision (per event over the whole table, or already selected).

        Without an order of the events, the "next to fire" of an upper limit are all events that did not.
        """
        return self.point(np.asarray(fires, dtype=bool).astype(np.int64), 1)

    def __call__(self, fires: np.ndarray, event_weight: np.ndarray | None = None) -> tuple[float, float]:
        """A ``RateFn`` (``event_weight`` is ignored: the weights are this sample's)."""
        point = self.of(fires)
        return point.rate_hz, point.rate_err_hz

    def rates_at(self, keys: np.ndarray, event_weight, thresholds) -> tuple[np.ndarray, np.ndarray]:
        """(rates, errors) as :meth:`SampleRate.rates_at` (``event_weight`` is ignored)."""
        rate, err, _, _ = self.at(keys, thresholds)
        return rate, err


def _files_text(files) -> str:
    """The files for one line: all of them when few, else how many and their common directory (absolute when the
    list mixes absolute and relative paths)."""
    if len(files) <= 2:
        return ", ".join(files)
    folders = [os.path.dirname(f) or "." for f in files]
    if len({os.path.isabs(d) for d in folders}) > 1:
        folders = [os.path.abspath(d) for d in folders]
    return f"{len(files)} files in {os.path.commonpath(folders)}/"


def split_events(events: np.ndarray, seed: int, fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Seeded by-event split of the ``events`` mask: (calibration, held-out), ``fraction`` to calibration."""
    events = np.asarray(events, dtype=bool)
    draw = np.random.default_rng(seed).random(len(events))
    return events & (draw < fraction), events & (draw >= fraction)
