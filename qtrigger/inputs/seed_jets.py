"""Event decisions from per-jet values: eligible jets, the ``min_jets``-th largest value (event key).

Jets are flat per-jet arrays plus ``jet_event`` (index of the jet's event in the per-event
arrays, as in :class:`qtrigger.data.reader.JetTable`); per-event arrays include events without jets.
An event fires at threshold ``t`` iff its key (the ``min_jets``-th largest eligible value) is
``>= t``; firing sets are nested in ``t``, so rates for every threshold follow from one sort.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """Per-event mask of the events of the named samples of a :class:`~qtrigger.data.reader.JetTable`."""
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


def leading_rank(jet_event: np.ndarray) -> np.ndarray:
    """Rank of each jet within its event (0 = first), for jets stored event by event in pT order."""
    jet_event = np.asarray(jet_event)
    if len(jet_event) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(jet_event)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(jet_event)]))
    return np.arange(len(jet_event)) - group_start


# --------------------------------------------------------------------------- what the seed firmware sees

NO_CODE = np.iinfo(np.int64).min  # key of an event that cannot fire / score of an unscored slot


@dataclass(frozen=True)
class JetWords:
    """How jet pT and HT enter the seed firmware: unsigned fixed point in GeV, truncated, saturating.

    A jet's pT code is ``floor(pT / pt_lsb_gev)`` clipped to ``[0, 2^pt_bits - 1]`` (the
    ``ap_ufixed`` word the C++ receives). HT is the sum of the pT codes of the seed's jet
    slots with ``pT >= ht_jet_pt_gev`` (|eta| is cut upstream by the jet selection),
    accumulated in ``ht_bits`` bits with saturation at ``2^ht_bits - 1``.
    """

    pt_lsb_gev: float = 0.25
    pt_bits: int = 16
    ht_bits: int = 16
    ht_jet_pt_gev: float = 30.0

    @property
    def pt_max_code(self) -> int:
        """Largest pT code (saturation)."""
        return 2**self.pt_bits - 1

    @property
    def ht_max_code(self) -> int:
        """Largest HT code (saturation)."""
        return 2**self.ht_bits - 1

    def pt_code(self, gev) -> np.ndarray:
        """pT (GeV) to its integer code: truncated and saturated as the firmware word is."""
        codes = np.floor(np.asarray(gev, dtype=np.float64) / self.pt_lsb_gev)
        return np.clip(codes, 0, self.pt_max_code).astype(np.int64)

    def gev(self, code) -> float:
        """The GeV value of a pT or HT code."""
        return float(code) * self.pt_lsb_gev


@dataclass(frozen=True)
class SeedJets:
    """Per event, the jet slots a seed sees: ``(n_events, n_slots)`` pT codes, score codes, validity.

    Slots hold an event's leading jets in pT order; only the first ``n_scored`` slots carry a
    network score (the network runs on ``hls.jets_per_event`` jets); other and empty slots
    have score ``NO_CODE``. ``ht`` is the saturated HT code per event (:class:`JetWords`).
    ``event_score`` holds one score code per event when an event-level network scores the
    event (else None).
    """

    pt: np.ndarray
    score: np.ndarray
    valid: np.ndarray
    ht: np.ndarray
    n_scored: int
    event_score: np.ndarray | None = None

    def with_event_score(self, codes: np.ndarray) -> "SeedJets":
        """The same slots with a per-event score code."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.shape != (self.n_events,):
            raise ValueError(f"event_score must have one code per event ({self.n_events}), got {codes.shape}")
        return SeedJets(self.pt, self.score, self.valid, self.ht, self.n_scored, codes)

    def take(self, rows: np.ndarray) -> "SeedJets":
        """The given events (mask or indices)."""
        return SeedJets(self.pt[rows], self.score[rows], self.valid[rows], self.ht[rows], self.n_scored,
                        None if self.event_score is None else self.event_score[rows])

    @property
    def n_events(self) -> int:
        """Number of events (rows)."""
        return len(self.ht)


def jet_words(config) -> JetWords:
    """The seed's pT/HT words from the trigger config."""
    t = config.trigger
    return JetWords(t.pt_lsb_gev, t.pt_bits, t.ht_bits, t.ht_jet_pt)


def min_jet_pt(config) -> float:
    """Lowest jet pT the seed sees: ``trigger.min_jet_pt`` or the data selection's."""
    return config.trigger.min_jet_pt if config.trigger.min_jet_pt is not None else config.data.selection.pt_min


def seed_jets(jet_pt: np.ndarray, jet_codes: np.ndarray | None, jet_event: np.ndarray, n_events: int,
              n_slots: int, n_scored: int, words: JetWords, jet_mask: np.ndarray | None = None) -> SeedJets:
    """Fill the seed's jet slots from flat per-jet arrays stored event by event in pT order.

    ``jet_mask`` marks the jets that reach the seed (e.g. ``pT >= trigger.min_jet_pt``); the
    first ``n_slots`` of them per event fill the slots, the first ``n_scored`` carry their
    score code (``jet_codes``; None = no scores).
    """
    jet_pt = np.asarray(jet_pt, dtype=np.float64)
    jet_event = _check_jets(jet_event, n_events, jet_pt, jet_codes, jet_mask)
    if n_scored > n_slots:
        raise ValueError(f"n_scored ({n_scored}) must not exceed n_slots ({n_slots})")
    keep = np.ones(len(jet_pt), bool) if jet_mask is None else np.asarray(jet_mask, dtype=bool)
    events = jet_event[keep]
    rank = leading_rank(events)
    in_slot = rank < n_slots
    rows, cols = events[in_slot], rank[in_slot]
    pt = np.zeros((n_events, n_slots), dtype=np.int64)
    score = np.full((n_events, n_slots), NO_CODE, dtype=np.int64)
    valid = np.zeros((n_events, n_slots), dtype=bool)
    pt[rows, cols] = words.pt_code(jet_pt[keep][in_slot])
    valid[rows, cols] = True
    if jet_codes is not None:
        scored = cols < n_scored
        score[rows[scored], cols[scored]] = np.asarray(jet_codes, dtype=np.int64)[keep][in_slot][scored]
    ht_min = words.pt_code(words.ht_jet_pt_gev)
    ht = np.minimum(np.where(valid & (pt >= ht_min), pt, 0).sum(axis=1), words.ht_max_code)
    return SeedJets(pt, score, valid, ht.astype(np.int64), int(n_scored))


def nth_largest(values: np.ndarray, n: int) -> np.ndarray:
    """Per row, the ``n``-th largest value (``NO_CODE`` where the row has fewer than n values > NO_CODE)."""
    if n < 1 or n > values.shape[1]:
        return np.full(values.shape[0], NO_CODE, dtype=np.int64)
    return np.sort(values, axis=1)[:, -n]
