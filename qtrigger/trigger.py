"""Trigger physics on per-jet scores: event decisions, rates with errors, thresholds, references.

Everything here is numpy/scipy/scikit-learn/uproot (no TensorFlow) and vectorised over jets
and events. Jets are given as flat per-jet arrays plus ``jet_event`` (the index of the jet's
event in the per-event arrays, as in :class:`qtrigger.data.JetTable`); per-event arrays have
``n_events`` entries and include events without any jet.

Definitions
-----------
Jet decision
    A jet *passes* when it is *eligible* (``jet_mask``, e.g. ``jet_pt >= min_jet_pt``; all
    jets when None) and its firmware score code is ``>= threshold_code``. Codes are the
    integers ``score / LSB`` of the network's output ``ap_fixed`` type
    (:meth:`qtrigger.fixedpoint.FixedType.to_codes`), so the threshold is exact in firmware.
Event decision
    An event *fires* when at least ``min_jets`` of its jets pass. Events with no (eligible)
    jets never fire. Equivalently: with ``key`` = the ``min_jets``-th largest eligible code
    of the event (:func:`event_keys`), the event fires at threshold ``t`` iff ``key >= t``.
    Because firing sets are nested in ``t``, rates for every threshold follow from one sort
    and cumulative sums.
Sample normalisation (``Runs`` tree, :func:`read_sample_info`)
    ``genEventCount``, ``genEventSumw`` (W), ``genEventSumw2`` are required; the cross-section
    ``genXsec_mb``/``genXsecErr_mb`` and ``isMinBias``/``pthatMin`` are written by our
    generator but absent from real CMS NanoAOD (then cross-section normalisation refuses in
    one line). Several files of one process: weight sums and counts add, cross-sections are
    averaged weighted by event counts (error ``sqrt(sum (n_k err_k)^2) / sum n_k``).
Cross-section rate (:func:`rate_cross_section`)
    ``R = L * sigma * F`` with ``F = S / W``, ``S = sum_fired w``, sigma in mb
    (1 mb = 1e-27 cm^2). W (and ``W2 = sum w^2``) are ``genEventSumw``/``genEventSumw2`` when
    all the sample's events are given, else the sums over the events given (a random subset
    such as a test split). Error: ``S`` and the non-firing sum ``Q = W - S`` are sums over
    the N drawn events with variances ``sum_fired w^2`` and ``sum_notfired w^2``; propagating
    through ``F = S / (S + Q)`` gives the weighted binomial variance

        ``Var(F) = [(1 - 2F) * sum_fired w^2 + F^2 * W2] / W^2``

    which is ``F (1 - F) / N`` for unit weights. ``dR = L * sigma * sqrt(Var F)``; the
    generator's cross-section error is added in quadrature only on request. Sanity scale:
    Pythia 8 HardQCD pTHat > 30 GeV, sigma = 0.163 mb -> L sigma = 3.26 MHz at 2e34 cm^-2 s^-1.
    For minimum-bias samples use the zero-bias rate: ``L sigma_inel`` counts interactions,
    not bunch crossings.
Zero-bias rate (:func:`rate_zero_bias`)
    ``R = (k / N) * f_rev * n_bunches`` (30.9 MHz when everything fires, 2748 bunches,
    11245.6 Hz), error ``f_rev * n_bunches * sqrt(p (1 - p) / N)``. Each minimum-bias event
    stands for one filled bunch crossing (true when it carries the pileup of the target
    luminosity). Refused unless ``isMinBias`` is 1.
Threshold (:func:`calibrate_threshold`)
    The lowest integer code whose rate is <= the target. The rate is a step function of the
    code: every code in ``(c_prev, c]`` (``c`` an observed event key) selects the same events,
    so the reported code is ``c_prev + 1`` and ``code - 1`` is the last code above target.
Efficiencies (:func:`efficiencies`)
    Per-event signal efficiency: fraction of *signal events*, i.e. every event of the signal
    sample(s) (no truth requirement, events without eligible jets count as not firing), that
    fire. Per-jet signal efficiency: fraction of signal jets (e.g. truth b jets) that pass
    (denominator includes ineligible jets). Background rejection per jet: 1 - fraction of
    background jets that pass. Errors: weighted binomial as above (plain binomial for unit
    weights).
Reference seeds
    :func:`pt_cut_for_rate`: the jet-pT threshold alone at the same rate.
    :func:`bdt_reference`: scikit-learn ``HistGradientBoostingClassifier`` on the same inputs.

Caveat: our jets are particle-level (no detector response, no resolution). A pT-threshold
seed's per-jet efficiency vs jet pT is therefore a step at the cut, not a physical turn-on.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType
from qtrigger.metrics import roc_auc

log = logging.getLogger(__name__)

MB_TO_CM2 = 1e-27
DEFAULT_LUMI_CM2S = 2e34
LHC_BUNCHES = 2748
LHC_F_REV_HZ = 11245.6
RUNS_REQUIRED = ("genEventCount", "genEventSumw", "genEventSumw2")
RUNS_XSEC = ("genXsec_mb", "genXsecErr_mb")
RUNS_OPTIONAL = ("isMinBias", "pthatMin")
STEP_NOTE = "particle-level jets, no detector response: a pT-cut seed is a step, not a turn-on"
ONE_SIGMA = 0.6826894921370859

RateFn = Callable[[np.ndarray, np.ndarray], tuple[float, float]]


# --------------------------------------------------------------------------- event decisions


def _check_jets(jet_event: np.ndarray, n_events: int, *per_jet: np.ndarray | None) -> np.ndarray:
    """``jet_event`` as int64 after checking its range and the per-jet array lengths."""
    jet_event = np.asarray(jet_event, dtype=np.int64)
    for array in per_jet:
        if array is not None and len(array) != len(jet_event):
            raise ValueError(f"per-jet arrays differ in length: {len(array)} vs {len(jet_event)} jet_event")
    if len(jet_event) and (jet_event.min() < 0 or jet_event.max() >= n_events):
        raise ValueError(f"jet_event must lie in [0, {n_events}), got [{jet_event.min()}, {jet_event.max()}]")
    return jet_event


def _check_min_jets(min_jets: int) -> int:
    if int(min_jets) < 1:
        raise ValueError(f"min_jets must be >= 1, got {min_jets}")
    return int(min_jets)


def event_fires(jet_pass: np.ndarray, jet_event: np.ndarray, n_events: int, min_jets: int = 1) -> np.ndarray:
    """Per event: at least ``min_jets`` of its jets pass (events without jets never fire)."""
    jet_pass = np.asarray(jet_pass, dtype=bool)
    jet_event = _check_jets(jet_event, n_events, jet_pass)
    n_pass = np.bincount(jet_event[jet_pass], minlength=n_events)
    return n_pass >= _check_min_jets(min_jets)


def event_keys(
    jet_values: np.ndarray,
    jet_event: np.ndarray,
    n_events: int,
    min_jets: int = 1,
    jet_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Per event, the ``min_jets``-th largest value among its eligible jets.

    The event fires at threshold ``t`` (``value >= t``) iff its key is ``>= t``. Events with
    fewer than ``min_jets`` eligible jets get the smallest int64 (integer values) or -inf.
    """
    values = np.asarray(jet_values)
    jet_event = _check_jets(jet_event, n_events, values, jet_mask)
    k = _check_min_jets(min_jets)
    if jet_mask is not None:
        keep = np.asarray(jet_mask, dtype=bool)
        values, jet_event = values[keep], jet_event[keep]
    integer = np.issubdtype(values.dtype, np.integer)
    values = values.astype(np.int64 if integer else np.float64)
    keys = np.full(n_events, np.iinfo(np.int64).min if integer else -np.inf, dtype=values.dtype)
    order = np.lexsort((values, jet_event))  # by event, then ascending value
    counts = np.bincount(jet_event, minlength=n_events)
    end = np.cumsum(counts)
    enough = counts >= k
    keys[enough] = values[order][end[enough] - k]
    return keys


def _no_key(keys: np.ndarray):
    return np.iinfo(np.int64).min if np.issubdtype(keys.dtype, np.integer) else -np.inf


def events_of(table, samples: list[str] | str) -> np.ndarray:
    """Per-event mask of the events of the named samples of a :class:`~qtrigger.data.JetTable`."""
    names = [samples] if isinstance(samples, str) else list(samples)
    unknown = [s for s in names if s not in table.samples]
    if unknown:
        raise QTriggerError(f"unknown sample(s) {unknown}; the table has {table.samples}")
    return np.isin(table.event_sample, [table.samples.index(s) for s in names])


def leading_jet_pt(jet_pt: np.ndarray, jet_event: np.ndarray, n_events: int,
                   jet_mask: np.ndarray | None = None) -> np.ndarray:
    """Per event, the largest pT among the jets in ``jet_mask`` (NaN where there is none)."""
    keys = event_keys(np.asarray(jet_pt, dtype=np.float64), jet_event, n_events, 1, jet_mask)
    return np.where(np.isfinite(keys), keys, np.nan)


# --------------------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class SampleInfo:
    """Normalisation of one process (one or more files), from the ``Runs`` tree.

    ``xsec_mb``/``xsec_err_mb``/``pthat_min`` are None when the files do not store them
    (real CMS NanoAOD); ``missing`` lists ``"file: branch"`` for every absent optional branch.
    """

    n_events: int
    sumw: float
    sumw2: float
    xsec_mb: float | None
    xsec_err_mb: float | None
    is_minbias: bool
    pthat_min: float | None
    files: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    def where(self) -> str:
        """The files, for messages."""
        return ", ".join(self.files) or "this sample"


def _read_runs(path: str) -> dict:
    """Sums over the entries of one file's ``Runs`` tree, plus which optional branches it lacks."""
    from qtrigger.data import open_events_tree

    runs = open_events_tree(path, "Runs")
    present = set(runs.keys())
    name = {b: b if b in present else b + "_" for b in RUNS_REQUIRED}  # older NanoAOD: genEventSumw_
    lacking = [b for b in RUNS_REQUIRED if name[b] not in present]
    if lacking:
        raise QTriggerError(f"{path}: Runs tree lacks {', '.join(lacking)} (needed to normalise the sample)")
    optional = [b for b in RUNS_XSEC + RUNS_OPTIONAL if b in present]
    arrays = runs.arrays([name[b] for b in RUNS_REQUIRED] + optional, library="np")
    counts = arrays[name["genEventCount"]].astype(np.float64)
    out = {
        "path": path,
        "n": int(counts.sum()),
        "sumw": float(arrays[name["genEventSumw"]].sum()),
        "sumw2": float(arrays[name["genEventSumw2"]].sum()),
        "missing": [b for b in RUNS_XSEC + RUNS_OPTIONAL if b not in present],
    }
    weight = counts / counts.sum() if counts.sum() > 0 else np.full(len(counts), 1.0 / max(1, len(counts)))
    if "genXsec_mb" in arrays and "genXsecErr_mb" in arrays:
        out["xsec"] = float((weight * arrays["genXsec_mb"]).sum())
        out["xsec_err"] = float(np.sqrt(((weight * arrays["genXsecErr_mb"]) ** 2).sum()))
    for branch, key in (("isMinBias", "minbias"), ("pthatMin", "pthat")):
        if branch in arrays:
            values = np.unique(arrays[branch])
            if len(values) != 1:
                raise QTriggerError(f"{path}: Runs entries disagree on {branch} ({values.tolist()})")
            out[key] = values[0].item()
    return out


def _same_value(parts: list[dict], key: str, branch: str):
    """The one value of ``key`` shared by every file that has it (None if none has it)."""
    values = {p["path"]: p[key] for p in parts if key in p}
    if len(set(values.values())) > 1:
        listing = ", ".join(f"{path} ({branch}={value:g})" for path, value in values.items())
        raise QTriggerError(f"files are not one process: {listing}; read them as separate samples")
    return next(iter(values.values()), None)


def read_sample_info(files: list[str] | str) -> SampleInfo:
    """Normalisation of one process from its files' ``Runs`` trees (combined as documented above)."""
    files = [str(files)] if isinstance(files, (str, Path)) else [str(f) for f in files]
    if not files:
        raise QTriggerError("read_sample_info: no files given")
    parts = [_read_runs(path) for path in files]
    n = np.array([p["n"] for p in parts], dtype=np.float64)
    xsec = xsec_err = None
    if all("xsec" in p for p in parts) and n.sum() > 0:
        xsec = float((n * [p["xsec"] for p in parts]).sum() / n.sum())
        xsec_err = float(np.sqrt(((n * [p["xsec_err"] for p in parts]) ** 2).sum()) / n.sum())
    minbias = _same_value(parts, "minbias", "isMinBias")
    pthat = _same_value(parts, "pthat", "pthatMin")
    return SampleInfo(
        n_events=int(n.sum()),
        sumw=float(sum(p["sumw"] for p in parts)),
        sumw2=float(sum(p["sumw2"] for p in parts)),
        xsec_mb=xsec,
        xsec_err_mb=xsec_err,
        is_minbias=bool(minbias),
        pthat_min=None if pthat is None else float(pthat),
        files=tuple(files),
        missing=tuple(f"{p['path']}: {b}" for p in parts for b in p["missing"]),
    )


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


# --------------------------------------------------------------------------- rates


def weighted_fraction(sumw_fired, sumw2_fired, sumw_all, sumw2_all) -> tuple[np.ndarray, np.ndarray]:
    """``F = S / W`` and its weighted binomial error ``sqrt[(1-2F) sum_fired w^2 + F^2 W2] / W``.

    Vectorised over the fired sums. Reduces to ``sqrt(F (1 - F) / N)`` for unit weights.
    """
    if sumw_all <= 0:
        raise QTriggerError(f"the sum of event weights is {sumw_all:g}: cannot normalise a rate or efficiency")
    fraction = np.asarray(sumw_fired, dtype=np.float64) / sumw_all
    var = ((1 - 2 * fraction) * np.asarray(sumw2_fired, dtype=np.float64) + fraction**2 * sumw2_all) / sumw_all**2
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


# --------------------------------------------------------------------------- thresholds


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


# --------------------------------------------------------------------------- efficiencies


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


# --------------------------------------------------------------------------- references


@dataclass
class PtCutResult:
    """The jet-pT threshold (``pt >= pt_cut``) giving a target rate, and its efficiency.

    Any cut in ``(previous_pt, pt_cut]`` selects the same events on the rate sample.
    """

    pt_cut: float
    previous_pt: float | None
    rate_hz: float
    rate_err_hz: float
    target_rate_hz: float
    efficiency: EfficiencyResult | None

    def as_dict(self) -> dict:
        """JSON-ready."""
        return asdict(self)


def pt_cut_for_rate(
    jet_pt: np.ndarray,
    jet_event: np.ndarray,
    n_events: int,
    event_weight: np.ndarray,
    rate_fn: RateFn,
    target_rate_hz: float = 100e3,
    min_jets: int = 1,
    jet_mask: np.ndarray | None = None,
    signal_events: np.ndarray | None = None,
    jet_is_signal: np.ndarray | None = None,
) -> PtCutResult:
    """Lowest observed jet-pT value ``c`` whose rate with ``pt >= c`` is <= target, and its efficiencies.

    The search runs over the distinct per-event keys (one sort); efficiencies (unit weights)
    are computed when ``signal_events`` and ``jet_is_signal`` are given (weighted by ``event_weight``).
    """
    pt = np.asarray(jet_pt, dtype=np.float64)
    keys = event_keys(pt, jet_event, n_events, min_jets, jet_mask)
    candidates, rates, errs, j = _search(keys, np.asarray(event_weight, np.float64), rate_fn, target_rate_hz, min_jets)
    cut = float(candidates[j])
    efficiency = None
    if signal_events is not None and jet_is_signal is not None:
        efficiency = efficiencies(pt, jet_event, n_events, cut, signal_events, jet_is_signal,
                                  jet_mask=jet_mask, min_jets=min_jets, event_weight=event_weight)
    return PtCutResult(cut, float(candidates[j - 1]) if j > 0 else None, float(rates[j]), float(errs[j]),
                       float(target_rate_hz), efficiency)


@dataclass
class BDTResult:
    """Test-set scores of the BDT reference, its AUC (None if too few jets) and the model."""

    scores: np.ndarray
    auc: float | None
    n_iter: int
    model: object = field(repr=False)


def bdt_reference(x_train, y_train, x_test, y_test, seed: int, max_iter: int = 300,
                  learning_rate: float = 0.1) -> BDTResult:
    """Seeded ``HistGradientBoostingClassifier`` (early stopping on 20% of train) for binary labels."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    y_train = np.asarray(y_train)
    if set(np.unique(y_train).tolist()) - {0, 1}:
        raise ValueError("bdt_reference needs binary 0/1 labels")
    model = HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=learning_rate, early_stopping=True, validation_fraction=0.2,
        n_iter_no_change=10, random_state=seed,
    )
    model.fit(np.asarray(x_train), y_train)
    scores = model.predict_proba(np.asarray(x_test))[:, 1]
    return BDTResult(scores, roc_auc(np.asarray(y_test), scores), int(model.n_iter_), model)


# --------------------------------------------------------------------------- HLS decision


def ap_types_dir() -> Path:
    """The ``ap_types`` headers shipped inside hls4ml (found without importing hls4ml)."""
    import importlib.util

    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise QTriggerError("hls4ml is not installed: its ap_types headers are needed to compile the decision")
    path = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    if not (path / "ap_fixed.h").is_file():
        raise QTriggerError(f"{path}: ap_fixed.h not found in the hls4ml installation")
    return path


def _ap_type(t: FixedType) -> str:
    return f"ap_{'' if t.signed else 'u'}fixed<{t.width}, {t.integer}, AP_{t.rounding}, AP_{t.saturation}>"


def _check_decision_args(project_name: str, output_type: FixedType, jets_per_event: int) -> None:
    if not re.fullmatch(r"[A-Za-z_]\w*", project_name):
        raise ValueError(f"project_name must be a C identifier, got {project_name!r}")
    if output_type.width > 60:
        raise ValueError(f"score type {output_type} is wider than 60 bits")
    if int(jets_per_event) < 1:
        raise ValueError(f"jets_per_event must be >= 1, got {jets_per_event}")


def _decision_header(project_name: str, t: FixedType, threshold_code: int, n_jets: int) -> str:
    code = int(np.clip(threshold_code, t.min_code, t.max_code + 1))  # same decisions for every code
    bits = "ap_uint" if not t.signed else "ap_int"
    guard = f"{project_name.upper()}_DECISION_H_"
    return f"""// {project_name}_decision.h -- L1 trigger decision on the network score (written by qtrigger.trigger).
// A jet is accepted when score >= threshold, compared exactly on the integer code (score / LSB):
// code >= THRESHOLD_CODE = {code} (threshold value {code * t.lsb!r}). An event is accepted when any
// of its N_JETS jets is accepted (OR, fully unrolled). Empty jet slots should carry SCORE_MIN_CODE
// (or use the overload with a valid mask).
#ifndef {guard}
#define {guard}

#include "ap_fixed.h"
#include "ap_int.h"

namespace {project_name}_decision {{

typedef {_ap_type(t)} score_t;
typedef ap_int<{t.width + 2}> code_t;  // holds every code and max code + 1 (never accept)
static const int N_JETS = {int(n_jets)};
static const int SCORE_WIDTH = {t.width};
static const long long SCORE_MIN_CODE = {t.min_code}LL;
static const long long THRESHOLD_CODE = {code}LL;

// The integer code of a score: its {t.width} bits read as a {'signed' if t.signed else 'unsigned'} integer.
inline code_t score_code(score_t score) {{
#pragma HLS INLINE
    ap_uint<SCORE_WIDTH> bits = score.range(SCORE_WIDTH - 1, 0);
    {bits}<SCORE_WIDTH> code = bits;
    return code_t(code);
}}

inline bool accept_jet(score_t score) {{
#pragma HLS INLINE
    return score_code(score) >= code_t(THRESHOLD_CODE);
}}

inline bool accept_event(score_t scores[N_JETS]) {{
#pragma HLS INLINE
    bool accept = false;
accept_event_jets:
    for (int j = 0; j < N_JETS; j++) {{
#pragma HLS UNROLL
        accept = accept | accept_jet(scores[j]);
    }}
    return accept;
}}

inline bool accept_event(score_t scores[N_JETS], bool valid[N_JETS]) {{
#pragma HLS INLINE
    bool accept = false;
accept_event_valid_jets:
    for (int j = 0; j < N_JETS; j++) {{
#pragma HLS UNROLL
        accept = accept | (valid[j] & accept_jet(scores[j]));
    }}
    return accept;
}}

}}  // namespace {project_name}_decision

#endif  // {guard}
"""


def _decision_driver(project_name: str) -> str:
    return f"""// {project_name}_decision_test.cpp -- reads "n_events" then per event "n code_1 .. code_n" (raw
// integer codes), writes per event: accept_event(scores, valid) accept_event(padded scores) n_accepted_jets.
#include <cstdio>
#include "{project_name}_decision.h"
using namespace {project_name}_decision;

int main(int argc, char **argv) {{
    if (argc != 3) {{ std::fprintf(stderr, "usage: %s input output\\n", argv[0]); return 2; }}
    std::FILE *in = std::fopen(argv[1], "r"), *out = std::fopen(argv[2], "w");
    if (!in || !out) return 2;
    long n_events = 0;
    if (std::fscanf(in, "%ld", &n_events) != 1) return 3;
    for (long e = 0; e < n_events; e++) {{
        int n = 0;
        if (std::fscanf(in, "%d", &n) != 1 || n < 0 || n > N_JETS) return 3;
        score_t scores[N_JETS];
        bool valid[N_JETS];
        int n_accepted = 0;
        for (int j = 0; j < N_JETS; j++) {{
            long long code = SCORE_MIN_CODE;
            valid[j] = j < n;
            if (valid[j] && std::fscanf(in, "%lld", &code) != 1) return 3;
            scores[j].range(SCORE_WIDTH - 1, 0) = ap_uint<SCORE_WIDTH>(code);
            n_accepted += (valid[j] && accept_jet(scores[j])) ? 1 : 0;
        }}
        std::fprintf(out, "%d %d %d\\n", (int)accept_event(scores, valid), (int)accept_event(scores), n_accepted);
    }}
    std::fclose(in);
    std::fclose(out);
    return 0;
}}
"""


def write_decision_hls(directory, project_name: str, output_type: FixedType, threshold_code: int,
                       jets_per_event: int) -> Path:
    """Write ``<project_name>_decision.h`` (score_t, accept_jet, accept_event) and its C++ test driver.

    Codes outside the type are clipped to ``[min_code, max_code + 1]`` (same decisions).
    Returns the header path; the driver is ``<project_name>_decision_test.cpp`` next to it.
    """
    _check_decision_args(project_name, output_type, jets_per_event)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    header = directory / f"{project_name}_decision.h"
    header.write_text(_decision_header(project_name, output_type, int(threshold_code), int(jets_per_event)))
    (directory / f"{project_name}_decision_test.cpp").write_text(_decision_driver(project_name))
    return header


def random_decision_events(output_type: FixedType, threshold_code: int, jets_per_event: int, n_events: int,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(jet_codes, jet_event) of random events: 0..N jets each, ~40% of codes at threshold-1/+0/+1,
    ~10% at the type's limits, the rest uniform over the type."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, jets_per_event + 1, n_events)
    jet_event = np.repeat(np.arange(n_events), counts)
    n = len(jet_event)
    lo, hi = output_type.min_code, output_type.max_code
    near = np.clip(threshold_code + rng.integers(-1, 2, n), lo, hi)
    limits = np.where(rng.random(n) < 0.5, lo, hi)
    kind = rng.random(n)
    codes = np.where(kind < 0.4, near, np.where(kind < 0.5, limits, rng.integers(lo, hi + 1, n)))
    return codes.astype(np.int64), jet_event


def _write_decision_input(path: Path, jet_codes: np.ndarray, jet_event: np.ndarray, n_events: int) -> None:
    order = np.argsort(jet_event, kind="stable")
    counts = np.bincount(jet_event, minlength=n_events)
    per_event = np.split(jet_codes[order], np.cumsum(counts)[:-1])
    lines = [" ".join(map(str, [len(c), *c.tolist()])) for c in per_event]
    path.write_text(f"{n_events}\n" + "\n".join(lines) + "\n")


def check_decision_csim(
    directory,
    project_name: str,
    output_type: FixedType,
    threshold_code: int,
    jets_per_event: int,
    n_events: int = 10_000,
    seed: int = 0,
    jet_codes: np.ndarray | None = None,
    jet_event: np.ndarray | None = None,
) -> int:
    """Compile the decision with g++ against hls4ml's ap_types and count disagreements with Python.

    Events are random (:func:`random_decision_events`) unless ``jet_codes``/``jet_event`` are
    given (events with more than ``jets_per_event`` jets then keep their first jets). An event
    disagrees when any of accept_event(valid mask), accept_event(padded) or its number of
    accepted jets differs from Python. Returns the number of disagreeing events (0 = exact).
    """
    gxx = shutil.which("g++")
    if gxx is None:
        raise QTriggerError("g++ not found on PATH: cannot compile the HLS decision (install g++)")
    header = write_decision_hls(directory, project_name, output_type, threshold_code, jets_per_event)
    directory = header.parent
    if jet_codes is None:
        jet_codes, jet_event = random_decision_events(output_type, threshold_code, jets_per_event, n_events, seed)
    jet_codes, jet_event, n_events = _first_jets(jet_codes, jet_event, n_events, jets_per_event, output_type)
    _write_decision_input(directory / "decision_input.txt", jet_codes, jet_event, n_events)
    exe = directory / f"{project_name}_decision_test"
    _run([gxx, "-std=c++11", "-O1", f"-I{ap_types_dir()}", f"-I{directory}",
          str(directory / f"{project_name}_decision_test.cpp"), "-o", str(exe)], "compiling the decision")
    _run([str(exe), str(directory / "decision_input.txt"), str(directory / "decision_output.txt")],
         "running the decision test")
    got = np.loadtxt(directory / "decision_output.txt", dtype=np.int64, ndmin=2).reshape(-1, 3)
    return int((got != _python_decisions(jet_codes, jet_event, n_events, threshold_code,
                                          jets_per_event, output_type)).any(axis=1).sum())


def _first_jets(jet_codes, jet_event, n_events, jets_per_event, output_type):
    """Validated codes, keeping at most ``jets_per_event`` jets per event (in the given order)."""
    jet_codes = np.asarray(jet_codes, dtype=np.int64)
    jet_event = _check_jets(jet_event, int(n_events), jet_codes)
    if len(jet_codes) and (jet_codes.min() < output_type.min_code or jet_codes.max() > output_type.max_code):
        raise ValueError(f"jet codes outside [{output_type.min_code}, {output_type.max_code}] of {output_type}")
    order = np.argsort(jet_event, kind="stable")
    counts = np.bincount(jet_event, minlength=n_events)
    rank = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = np.zeros(len(jet_codes), bool)
    keep[order[rank < jets_per_event]] = True
    return jet_codes[keep], jet_event[keep], int(n_events)


def _python_decisions(jet_codes, jet_event, n_events, threshold_code, jets_per_event, output_type) -> np.ndarray:
    """Per event: [fires with valid mask, fires with padded slots, number of accepted jets]."""
    passed = jet_codes >= threshold_code
    n_accepted = np.bincount(jet_event[passed], minlength=n_events)
    padded_slot_fires = output_type.min_code >= threshold_code
    has_padding = np.bincount(jet_event, minlength=n_events) < jets_per_event
    return np.column_stack([n_accepted >= 1, (n_accepted >= 1) | (has_padding & padded_slot_fires), n_accepted])


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        first = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[0]
        raise QTriggerError(f"{what} failed: {first}")


# --------------------------------------------------------------------------- curves and plots


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        import mplhep

        plt.style.use(mplhep.style.CMS)
    except Exception:  # the style is cosmetic
        pass
    return plt


def _finish(plt, fig, ax, path, note: str | None) -> Path:
    if note:
        ax.set_title(note, fontsize=12, loc="left")
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
