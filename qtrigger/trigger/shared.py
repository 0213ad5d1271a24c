"""Statistical errors of rates when events share an interaction (docs/trigger.md, "Shared pileup interactions").

A pileup library draws each interaction up to ``pileupMaxReuse`` times. A library interaction with a hard jet
then fires every crossing that draws it: those crossings are not independent, and ``sum w^2`` over them
underestimates the error. Events are grouped by the interaction that makes them (``group``: one integer per event,
equal for events that share it) and the variance of a weighted count is summed over groups,
``sum_g (sum_{fired, g} w)^2``; the effective number of fired events is ``(sum w)^2`` over that sum. With one
event per group both reduce to the usual ``sum w^2``.
"""

from __future__ import annotations

import numpy as np


def group_codes(group: np.ndarray) -> np.ndarray:
    """Dense codes 0..G-1 of per-event group labels (any hashable numeric labels)."""
    return np.unique(np.asarray(group), return_inverse=True)[1].ravel()


def grouped_totals(weight: np.ndarray, codes: np.ndarray) -> tuple[float, np.ndarray]:
    """(``sum_g W_g^2``, per event its group's total ``W_g``) over all events."""
    totals = np.bincount(codes, weights=weight)
    return float((totals**2).sum()), totals[codes]


def grouped_tail_sums(keys: np.ndarray, weight: np.ndarray, codes: np.ndarray, thresholds: np.ndarray):
    """For each threshold t, over the events with key >= t: (number, ``sum w``, ``sum_g A_g^2``, ``sum_g A_g W_g``),
    with ``A_g`` the fired weight of group g and ``W_g`` its total weight (the terms of the grouped binomial
    variance, :func:`qtrigger.trigger.rates.weighted_fraction`)."""
    order = np.argsort(keys, kind="stable")[::-1]  # the events that fire at a threshold come first
    w, code = weight[order], codes[order]
    # each event's group weight already fired before it (the events above it in key)
    by_group = np.argsort(code, kind="stable")
    cum = np.cumsum(w[by_group]) - w[by_group]
    first = np.r_[0, np.flatnonzero(np.diff(code[by_group])) + 1]
    starts = np.repeat(cum[first], np.diff(np.r_[first, len(code)]))
    before = np.empty_like(w)
    before[by_group] = cum - starts
    _, group_total = grouped_totals(w, code)
    sumw, square, cross = _head_sums(w), _head_sums(2 * before * w + w**2), _head_sums(w * group_total)
    sorted_keys = keys[order][::-1]
    n_fired = len(keys) - np.searchsorted(sorted_keys, thresholds, side="left")
    return n_fired, sumw[n_fired], square[n_fired], cross[n_fired]


def _head_sums(values: np.ndarray) -> np.ndarray:
    """Sums over the first m values, m = 0..len."""
    return np.r_[0.0, np.cumsum(values)]
