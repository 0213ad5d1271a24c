"""Event decisions from per-jet values: eligible jets, the ``min_jets``-th largest value (event key).

Jets are flat per-jet arrays plus ``jet_event`` (index of the jet's event in the per-event
arrays, as in :class:`qtrigger.data.JetTable`); per-event arrays include events without jets.
An event fires at threshold ``t`` iff its key (the ``min_jets``-th largest eligible value) is
``>= t``; firing sets are nested in ``t``, so rates for every threshold follow from one sort.
"""

from __future__ import annotations

import numpy as np

from qtrigger.errors import QTriggerError


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
