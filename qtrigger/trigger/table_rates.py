"""The rate of one sample (or one half of it) as a :class:`~qtrigger.trigger.rates.WeightedRate`: cross-section,
zero-bias or per-bunch-crossing normalisation of the events of a rate table (docs/trigger.md)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from qtrigger.data.crossing import shared_interaction_groups, table_crossing_weights_hz
from qtrigger.data.samples import MB_TO_CM2, SampleInfo, event_xsec_weights_mb
from qtrigger.errors import QTriggerError
from qtrigger.trigger.rates import (
    DEFAULT_LUMI_CM2S,
    DEFAULT_MIN_N_EFF,
    LHC_BUNCHES,
    LHC_F_REV_HZ,
    WeightedRate,
    _files_text,
    _require_minbias,
    _require_xsec,
)


def weighted_rate(info: SampleInfo, method: str, events: np.ndarray, event_file: np.ndarray,
                  gen_weight: np.ndarray, files, lumi_cm2s: float = DEFAULT_LUMI_CM2S,
                  n_bunches: int = LHC_BUNCHES, f_rev: float = LHC_F_REV_HZ,
                  min_n_eff: float = DEFAULT_MIN_N_EFF) -> WeightedRate:
    """The :class:`WeightedRate` of the ``events`` (per-event mask over a table) of one sample.

    ``event_file`` indexes ``files`` per event (``JetTable.event_file``/``JetTable.files``);
    ``gen_weight`` is the per-event ``genWeight``; ``min_n_eff`` marks its rates resolved.
    """

    events = np.asarray(events, dtype=bool)
    if not events.any():
        raise QTriggerError(f"no events of {info.where()} to measure a rate on")
    where = f"{int(events.sum()):,} events of {_files_text(info.files)}"
    if method == "cross_section":
        _require_xsec(info)
        weight = event_xsec_weights_mb(info, np.asarray(event_file)[events], np.asarray(gen_weight)[events], files)
        return WeightedRate(weight, lumi_cm2s * MB_TO_CM2 * float(weight.sum()), method, events,
                            f"cross-section normalisation, L = {lumi_cm2s:g} cm^-2 s^-1, {where}", min_n_eff)
    if method == "zero_bias":
        _require_minbias(info)
        w = np.asarray(gen_weight, dtype=np.float64)[events]
        if len(w) and not np.all(w == w[0]):
            raise QTriggerError(f"zero-bias rate counts events, but {info.where()} has unequal genWeight")
        return WeightedRate(np.ones(int(events.sum())), f_rev * n_bunches, method, events,
                            f"zero-bias normalisation, {n_bunches} bunches, {where}", min_n_eff)
    raise ValueError(f"unknown rate method {method!r}; expected 'cross_section' or 'zero_bias'")


def crossing_rate(weights_hz: np.ndarray, events: np.ndarray, description: str = "",
                  min_n_eff: float = DEFAULT_MIN_N_EFF, group: np.ndarray | None = None) -> WeightedRate:
    """The :class:`WeightedRate` of bunch crossings from per-crossing weights in Hz over a table
    (:func:`qtrigger.data.crossing.crossing_weights_hz`, binned and zero-bias events side by side): R = sum of
    the fired weights. Events of weight 0 (vetoed binned events, zero-bias crossings above the lowest bin edge)
    are left out, so ``n_fired`` counts crossings that count. ``group`` (per event over the table, optional)
    labels crossings that share a library interaction (:func:`qtrigger.data.crossing.shared_interaction_groups`)."""
    weights_hz = np.asarray(weights_hz, dtype=np.float64)
    events = np.asarray(events, dtype=bool) & (weights_hz > 0)
    if not events.any():
        raise QTriggerError("no bunch crossings with a weight to measure a rate on")
    weight = weights_hz[events]
    return WeightedRate(weight, float(weight.sum()), "crossing", events,
                        description or f"per bunch crossing, {int(events.sum()):,} events", min_n_eff,
                        None if group is None else np.asarray(group)[events])


def sample_rate(info: SampleInfo, method: str, events: np.ndarray, table, tree: str = "Events",
                lumi_cm2s: float = DEFAULT_LUMI_CM2S, n_bunches: int = LHC_BUNCHES, f_rev: float = LHC_F_REV_HZ,
                min_n_eff: float = DEFAULT_MIN_N_EFF) -> WeightedRate:
    """The :class:`WeightedRate` of the ``events`` of a rate table (``qtrigger.data.reader.JetTable``):
    :func:`weighted_rate` for ``cross_section``/``zero_bias``; for ``crossing`` (binned hard events and
    zero-bias crossings at one mu, ``info`` from :func:`qtrigger.data.crossing.rate_sample_info`) one weight per
    bunch crossing, normalised on these events (:func:`crossing_rate`). Zero-bias crossings that share a
    pileup-library interaction are grouped in the errors (:mod:`qtrigger.trigger.shared`)."""
    events = np.asarray(events, dtype=bool)
    group = shared_interaction_groups(table.files, table.event_file, table.event_entry, events, tree)
    if method != "crossing":
        rate = weighted_rate(info, method, events, table.event_file, table.event_weight, table.files, lumi_cm2s,
                             n_bunches, f_rev, min_n_eff)
        return replace(rate, group=None if group is None else group[events])
    weights = table_crossing_weights_hz(info, events, table.files, table.event_file, table.event_entry,
                                        table.event_weight, lumi_cm2s, f_rev * n_bunches, tree)
    description = (f"per bunch crossing (pTHat-binned hard events + zero-bias crossings at mu = {info.mu:g}), "
                   f"L = {lumi_cm2s:g} cm^-2 s^-1, {n_bunches} bunches, {int(np.asarray(events).sum()):,} events "
                   f"of {_files_text(info.files)}")
    return crossing_rate(weights, events, description, min_n_eff, group)
