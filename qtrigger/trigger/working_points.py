"""Working points quoted on events the choice never saw: held-out rate, efficiency, band, bias.

A seed chosen on the calibration half (:mod:`qtrigger.trigger.seeds`) is quoted here:

- rate, error and ``n_eff_fired`` on the held-out half of the rate sample; a rate with nothing
  fired or ``n_eff_fired`` below ``trigger.min_n_eff`` is *unresolved*: quoted as its 68 % CL upper
  limit (the next events to fire set its scale, :mod:`qtrigger.trigger.rates`), never "met";
- per-event signal efficiency on the quoted signal events (Clopper-Pearson 68.3 %; a 95 %
  upper limit when nothing fires), against all events and against a stated offline selection;
- the *band*: the tuned threshold moved to the lowest codes whose held-out rate is
  ``target + sigma`` and ``target - sigma`` (sigma = the held-out rate error at the chosen
  code), and the efficiency at both;
- the *bias fraction*: the share of the fired held-out weight from events whose leading jet is
  below ``bias_factor`` x the generator cut (pTHat min), where a cut sample misses events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qtrigger.data.samples import generator_cut_gev
from qtrigger.inputs.seed_jets import JetWords, SeedJets
from qtrigger.trigger.efficiency import Efficiency, efficiency_of
from qtrigger.trigger.rates import RatePoint, WeightedRate
from qtrigger.trigger.seeds import ScanRow, Seed, lowest_code_at_rate


@dataclass(frozen=True)
class SignalEvents:
    """The signal events a seed is quoted on, and which of them pass the offline selection."""

    jets: SeedJets
    events: np.ndarray
    offline: np.ndarray
    description: str
    offline_description: str


@dataclass(frozen=True)
class BiasRegion:
    """Events of the rate sample whose leading jet lies in the generator-cut bias region."""

    in_region: np.ndarray
    below_gev: float | None
    generator_cut_gev: float | None


@dataclass(frozen=True)
class SeedQuote:
    """One seed at one target rate: chosen on calibration, quoted on held-out events."""

    label: str
    seed: Seed
    target_rate_hz: float
    calibration_rate_hz: float
    calibration_rate_err_hz: float
    selection_efficiency: float
    rate: RatePoint
    efficiency: Efficiency
    offline_efficiency: Efficiency
    band_codes: tuple[int, int]
    band: tuple[float, float]
    bias_fraction: float | None
    calibration_rate_below_hz: float | None = None
    calibration_n_eff_fired: float | None = None
    calibration_n_fired: int | None = None

    def as_dict(self, words: JetWords, score_lsb: float | None) -> dict:
        """JSON-ready, with the keys of issue 10 (``rate_hz``, ``n_eff_fired``, ``signal_efficiency``...)."""
        return {
            "label": self.label, "seed": self.seed.as_dict(words, score_lsb), "target_rate_hz": self.target_rate_hz,
            **self.rate.as_dict(),
            "signal_efficiency": self.efficiency.value, "signal_efficiency_err": self.efficiency.err,
            "signal_efficiency_interval": [self.efficiency.low, self.efficiency.high],
            "signal_efficiency_upper_limit": self.efficiency.upper_limit,
            "signal_events": int(self.efficiency.total), "signal_fired": int(self.efficiency.passed),
            "signal_efficiency_text": self.efficiency.text(),
            "offline_efficiency": self.offline_efficiency.value, "offline_efficiency_err": self.offline_efficiency.err,
            "offline_efficiency_interval": [self.offline_efficiency.low, self.offline_efficiency.high],
            "offline_events": int(self.offline_efficiency.total),
            "signal_efficiency_band": list(self.band), "band_codes": list(self.band_codes),
            "calibration": {"threshold_code": self.seed.tuned_code(), "rate_hz": self.calibration_rate_hz,
                            "rate_hz_err": self.calibration_rate_err_hz, "rate_below_hz": self.calibration_rate_below_hz,
                            "n_eff_fired": self.calibration_n_eff_fired, "n_fired": self.calibration_n_fired,
                            "selection_efficiency": self.selection_efficiency},
            "bias_fraction": self.bias_fraction,
        }


def bias_region(info, leading_jet_pt: np.ndarray, factor: float) -> BiasRegion:
    """Per event: leading jet below ``factor`` x the sample's generator cut (lowest pTHat edge; none for 0/None).

    ``leading_jet_pt`` is per event (NaN for events without a jet, never in the region).
    """

    cut = generator_cut_gev(info)
    leading = np.nan_to_num(np.asarray(leading_jet_pt, dtype=np.float64), nan=np.inf)
    if cut is None:
        return BiasRegion(np.zeros(len(leading), bool), None, None)
    return BiasRegion(leading < factor * cut, factor * cut, cut)


def bias_fraction(fires: np.ndarray, rate: WeightedRate, bias: BiasRegion | None) -> float | None:
    """Share of the fired weight of ``rate``'s events that lies in the bias region (None without a cut)."""
    if bias is None or bias.below_gev is None:
        return None
    fired = np.asarray(fires, dtype=bool)[rate.events]
    region = bias.in_region[rate.events]
    total = float(rate.weight[fired].sum())
    return float(rate.weight[fired & region].sum()) / total if total > 0 else 0.0


def quote(row: ScanRow, label: str, background: SeedJets, held_out: WeightedRate, signal: SignalEvents,
          bias: BiasRegion | None = None, calibration: WeightedRate | None = None) -> SeedQuote:
    """Quote a calibration-chosen scan row on the held-out rate half and the quoted signal events.

    With ``calibration``, the calibration-half rate one code below the tuned threshold is kept too
    (it exceeds the target: the tuned code is the lowest meeting it), and the fired and effective fired events
    (``n_eff_fired``) of the calibration half at the tuned threshold: how well the sample that set the threshold
    resolves its rate (background only, usable for label-free model selection).
    """
    seed = row.seed
    keys = seed.keys(background)
    fires_background = keys >= seed.tuned_code()
    point = held_out.point(keys, seed.tuned_code())
    signal_keys = seed.keys(signal.jets)
    fires_signal = signal_keys >= seed.tuned_code()
    efficiency = efficiency_of(fires_signal[signal.events])
    offline = efficiency_of(fires_signal[signal.events & signal.offline])
    targets = [row.target_rate_hz + point.rate_err_hz, max(row.target_rate_hz - point.rate_err_hz, 0.0)]
    codes, _, _ = lowest_code_at_rate(keys[held_out.events], held_out, targets)
    quoted = signal_keys[signal.events]
    band_low = float((quoted >= codes[1]).mean()) if len(quoted) else float("nan")
    band_high = float((quoted >= codes[0]).mean()) if len(quoted) else float("nan")
    below = calibration_neff = calibration_n = None
    if calibration is not None:
        rates, _, n_fired, neff = calibration.at(keys, np.array([seed.tuned_code() - 1, seed.tuned_code()]))
        below, calibration_n, calibration_neff = float(rates[0]), int(n_fired[1]), float(neff[1])
    return SeedQuote(label, seed, row.target_rate_hz, row.calibration_rate_hz, row.calibration_rate_err_hz,
                     row.selection_efficiency, point, efficiency, offline, (int(codes[0]), int(codes[1])),
                     (band_low, band_high), bias_fraction(fires_background, held_out, bias), below,
                     calibration_neff, calibration_n)


def rate_verdict(rate: RatePoint, target_hz: float) -> str:
    """``met`` if the held-out rate is within 1 sigma of (or below) the target, ``not met`` beyond
    2 sigma above it, ``undetermined`` in between; ``unresolved`` (never met) when the sample cannot
    resolve the rate (:attr:`RatePoint.resolved`)."""
    if not rate.resolved:
        return "unresolved"
    excess = rate.rate_hz - target_hz
    if excess <= rate.rate_err_hz:
        return "met"
    return "not met" if excess > 2 * rate.rate_err_hz else "undetermined"


def efficiency_verdict(efficiency: Efficiency, goal: float) -> str:
    """``met`` if the whole 68 % interval is above ``goal``, ``not met`` if it is all below, else undetermined."""
    if not efficiency.total:
        return "undetermined"
    if efficiency.low > goal:
        return "met"
    return "not met" if efficiency.high < goal else "undetermined"


# --------------------------------------------------------------------------- a finished run's seeds elsewhere


def seed_from_dict(d: dict) -> Seed:
    """The :class:`Seed` written by :meth:`Seed.as_dict` (metrics.json ``trigger.seed``)."""
    return Seed(d["family"], int(d["n_jets"]), d.get("jet_pt_code"), d.get("score_code"), d.get("ht_code"),
                d.get("n_tagged"))


def rate_at_run_thresholds(trigger_json: dict, rate_jets: SeedJets, rate: WeightedRate) -> dict:
    """The run's own seeds (main and every ``at_rate`` point) applied unchanged to another rate sample."""
    out = {}
    for key, point in trigger_json.get("at_rate", {}).items():
        seed = seed_from_dict(point["seed"])
        measured = rate.point(seed.keys(rate_jets), seed.tuned_code())
        sigma = float(np.hypot(measured.rate_err_hz, point["rate_hz_err"]))
        comparable = sigma > 0 and measured.resolved and point.get("resolved", True)
        out[key] = {"seed": point["seed"]["description"], **measured.as_dict(),
                    "run_rate_hz": point["rate_hz"], "run_rate_hz_err": point["rate_hz_err"],
                    "run_resolved": point.get("resolved", True),
                    "pull": (measured.rate_hz - point["rate_hz"]) / sigma if comparable else None}
    return out


def run_threshold_extra(checked: dict, key: str) -> dict:
    """The ``trigger`` metrics keys of the run's seeds on another background (main point ``key`` flattened)."""
    main = checked.get(key, {})
    return {"rate_at_run_threshold": checked, "rate_at_run_threshold_hz": main.get("rate_hz"),
            "rate_at_run_threshold_hz_err": main.get("rate_hz_err"),
            "rate_at_run_threshold_n_eff_fired": main.get("n_eff_fired"),
            "rate_at_run_threshold_resolved": main.get("resolved"),
            "rate_at_run_threshold_upper_limit_hz": main.get("rate_upper_limit_hz"),
            "rate_at_run_threshold_min_n_eff": main.get("min_n_eff")}
