"""Menu-style seeds: families with and without the network tag, and their coarse-grid search.

Families (``p``, ``H`` are pT/HT codes, ``t`` a score code; a *tag* is ``score >= t``):

- ``jets_tagged``: >= n jets with pT >= p and score >= t   (outer grid n, p; tuned: t)
- ``ht_tagged``:   HT >= H and >= n jets with pT >= p and score >= t   (outer n, p, t; tuned: H)
- ``ht_ntag``:     HT >= H and >= n jets with pT >= p, >= k of them with score >= t   (outer n, p, k <= n, t;
  tuned: H). ``ht_tagged`` is k = n, the ``ht`` family k = 0. Its t grid is set by the per-jet
  efficiency of reference jets (:func:`tag_grid`), the loosest keeping >= 95 % of them.
- ``jets``:        >= n jets with pT >= p   (outer n; tuned: p) -- single jet, di-, tri-, quad-jet
- ``ht``:          HT >= H and >= n jets with pT >= p   (outer n, p; tuned: H; n = 0 is plain HT)
- ``event_network``: the preselection (a fixed ``ht`` seed: HT >= H and >= n jets with pT >= p)
  and the event-level network's score >= t   (outer: the preselection only; tuned: t)
- ``anomaly``: the same with a VAE encoder's anomaly score sum mu^2 (``training.objective: autoencoder``)

The kinematic families are the network families with the tag removed. For every outer grid
point the tuned ("last") threshold is set to the lowest code whose rate on the calibration half
is <= the target; the grid point with the highest signal efficiency on the selection signal
events wins (ties: lower rate). The winner is then quoted on the held-out half (``study``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from qtrigger.inputs.seed_jets import NO_CODE, JetWords, SeedJets, nth_largest
from qtrigger.trigger.rates import WeightedRate

NETWORK_FAMILIES = ("jets_tagged", "ht_tagged", "ht_ntag", "event_network", "anomaly")
EVENT_SCORE_FAMILIES = ("event_network", "anomaly")  # preselection and one event score (a logit, or sum mu^2)
PER_JET_FAMILIES = ("jets_tagged", "ht_tagged", "ht_ntag")  # need a per-jet score
KINEMATIC_FAMILIES = ("jets", "ht")
FAMILIES = NETWORK_FAMILIES + KINEMATIC_FAMILIES
TUNED = {"jets_tagged": "score", "ht_tagged": "ht", "ht_ntag": "ht", "jets": "jet_pt", "ht": "ht",
         "event_network": "score", "anomaly": "score"}
TAG_EFFICIENCIES = tuple(round(0.95 - 0.05 * i, 2) for i in range(19))  # ht_ntag's t grid: 95, 90, ... 5 %
ALWAYS = np.iinfo(np.int64).max  # the k-th tag score of a seed that needs no tag (k = 0)


@dataclass(frozen=True)
class Seed:
    """One seed of a family with all its thresholds as integer codes (``None`` = not used).

    ``n_tagged`` (``ht_ntag`` only): how many of the ``n_jets`` counted jets must be tagged.
    """

    family: str
    n_jets: int
    jet_pt_code: int | None = None
    score_code: int | None = None
    ht_code: int | None = None
    n_tagged: int | None = None

    @property
    def tagged(self) -> bool:
        """True for the network families."""
        return self.family in NETWORK_FAMILIES

    @property
    def tuned(self) -> str:
        """Which threshold is tuned to the rate: ``score``, ``jet_pt`` or ``ht``."""
        return TUNED[self.family]

    def keys(self, jets: SeedJets) -> np.ndarray:
        """Per event, the value the tuned threshold is compared with (``NO_CODE`` if the rest fails)."""
        if self.family in EVENT_SCORE_FAMILIES:
            if jets.event_score is None:
                raise ValueError(f"the {self.family} seed needs per-event score codes (SeedJets.event_score)")
            return np.where(self.preselection().fires(jets), jets.event_score, NO_CODE)
        if self.family == "jets_tagged":
            scores = np.where(jets.valid & (jets.pt >= self.jet_pt_code), jets.score, NO_CODE)
            return nth_largest(scores, self.n_jets)
        if self.family == "jets":
            return nth_largest(np.where(jets.valid, jets.pt, NO_CODE), self.n_jets)
        if self.family == "ht_ntag":
            return self.ntag_keys(self.ntag_parts(jets), jets)
        if self.tagged:  # >= n tagged jets with pT >= p  <=>  the n-th largest of their scores passes
            return self.ht_tagged_keys(self.tagged_nth_score(jets), jets)
        counted = jets.valid & (jets.pt >= (self.jet_pt_code or 0))
        return np.where(counted.sum(axis=1) >= self.n_jets, jets.ht, NO_CODE)

    def preselection(self) -> "Seed":
        """An ``event_network`` seed's preselection as the ``ht`` seed it is."""
        return Seed("ht", self.n_jets, self.jet_pt_code, None, self.ht_code or 0)

    def tagged_nth_score(self, jets: SeedJets) -> np.ndarray:
        """Per event, the n-th largest score among valid jets with pT >= p (independent of the tag threshold)."""
        return nth_largest(np.where(jets.valid & (jets.pt >= self.jet_pt_code), jets.score, NO_CODE), self.n_jets)

    def ht_tagged_keys(self, nth_score: np.ndarray, jets: SeedJets) -> np.ndarray:
        """``ht_tagged`` keys from :meth:`tagged_nth_score`: HT where the tag count passes, else NO_CODE."""
        return np.where(nth_score >= self.score_code, jets.ht, NO_CODE)

    def ntag_parts(self, jets: SeedJets) -> tuple[np.ndarray, np.ndarray]:
        """``ht_ntag``, per event: (>= n valid jets with pT >= p, the k-th largest score among them).

        Independent of the tag and HT thresholds (one sort per (n, p, k) in the search). The
        k-th score is ``ALWAYS`` for k = 0 and ``NO_CODE`` when fewer than k of them are scored.
        """
        counted = jets.valid & (jets.pt >= (self.jet_pt_code or 0))
        enough = counted.sum(axis=1) >= self.n_jets
        k = int(self.n_tagged or 0)
        kth = np.full(jets.n_events, ALWAYS, dtype=np.int64) if k == 0 else \
            nth_largest(np.where(counted, jets.score, NO_CODE), k)
        return enough, kth

    def ntag_keys(self, parts: tuple[np.ndarray, np.ndarray], jets: SeedJets) -> np.ndarray:
        """``ht_ntag`` keys from :meth:`ntag_parts`: HT where the jet and tag counts pass, else NO_CODE."""
        enough, kth = parts
        return np.where(enough & (kth >= self.score_code), jets.ht, NO_CODE)

    def with_tuned(self, code: int) -> Seed:
        """This seed with its tuned threshold set to ``code``."""
        field = {"score": "score_code", "jet_pt": "jet_pt_code", "ht": "ht_code"}[self.tuned]
        return replace(self, **{field: int(code)})

    def tuned_code(self) -> int:
        """The tuned threshold's code."""
        return {"score": self.score_code, "jet_pt": self.jet_pt_code, "ht": self.ht_code}[self.tuned]

    def fires(self, jets: SeedJets) -> np.ndarray:
        """Per event: the seed accepts."""
        return self.keys(jets) >= self.tuned_code()

    def describe(self, words: JetWords, score_lsb: float | None = None) -> str:
        """Human-readable thresholds, e.g. ``HT >= 250.0 GeV and >= 2 jets with pT >= 20 GeV, score >= 0.5``."""
        if self.family in EVENT_SCORE_FAMILIES:
            score = f"{self.score_code * score_lsb:.6g}" if score_lsb and self.score_code is not None \
                else f"code {self.score_code}"
            presel = self.preselection().describe(words) if (self.ht_code or self.n_jets) else "no preselection"
            return f"event score >= {score} after preselection ({presel})"
        parts = []
        if self.ht_code is not None:
            parts.append(f"HT >= {words.gev(self.ht_code):g} GeV")
        if self.n_jets > 0:
            jets = f">= {self.n_jets} jet{'s' if self.n_jets > 1 else ''}"
            if self.jet_pt_code is not None:
                jets += f" with pT >= {words.gev(self.jet_pt_code):g} GeV"
            if self.score_code is not None:
                score = f"{self.score_code * score_lsb:.6g}" if score_lsb else f"code {self.score_code}"
                if self.n_tagged is not None:
                    jets += f", >= {self.n_tagged} of them with score >= {score}"
                else:
                    jets += f" and score >= {score}"
            parts.append(jets)
        return " and ".join(parts)

    def as_dict(self, words: JetWords, score_lsb: float | None = None) -> dict:
        """JSON-ready: family, codes, values in GeV / score units, and the description."""
        out = {"family": self.family, "n_jets": self.n_jets, "jet_pt_code": self.jet_pt_code,
               "score_code": self.score_code, "ht_code": self.ht_code, "n_tagged": self.n_tagged,
               "tuned": self.tuned,
               "jet_pt_gev": None if self.jet_pt_code is None else words.gev(self.jet_pt_code),
               "ht_gev": None if self.ht_code is None else words.gev(self.ht_code),
               "score": None if self.score_code is None or not score_lsb else self.score_code * score_lsb,
               "description": self.describe(words, score_lsb)}
        return out


@dataclass(frozen=True)
class GridSpec:
    """The coarse grid of the outer thresholds (the tuned one is searched at full resolution)."""

    pt_min_gev: float = 20.0
    pt_step_gev: float = 5.0
    jet_pt_max_gev: float = 150.0
    ht_jet_pt_max_gev: float = 80.0
    score_steps: int = 64
    max_jets: int = 4
    preselection: tuple[int, int | None, int] | None = None  # event_network: (n jets, pT code, HT code)

    def pt_codes(self, words: JetWords, top_gev: float) -> list[int]:
        """pT grid codes from ``pt_min_gev`` to ``top_gev`` in ``pt_step_gev`` steps."""
        values = np.arange(self.pt_min_gev, top_gev + 1e-9, self.pt_step_gev)
        return sorted({int(c) for c in words.pt_code(values)})


def score_grid(codes: np.ndarray, steps: int) -> list[int]:
    """``steps`` evenly spaced score codes over ``[min, max]`` of the given codes (1/steps of the range)."""
    codes = np.asarray(codes)
    codes = codes[codes != NO_CODE]
    if len(codes) == 0:
        return []
    low, high = int(codes.min()), int(codes.max())
    return sorted({int(low + k * (high - low + 1) // steps) for k in range(steps)})


def tag_grid(reference: np.ndarray, efficiencies=TAG_EFFICIENCIES) -> list[int]:
    """Score codes at which the given fractions of the reference jets are tagged (``score >= t``).

    For each efficiency e: the highest code t whose tag keeps >= e of the reference scores
    (the e-quantile from above), so the loosest point of the default grid keeps >= 95 %.
    Empty without reference scores.
    """
    codes = np.sort(np.asarray(reference, dtype=np.int64)[np.asarray(reference) != NO_CODE])
    if len(codes) == 0:
        return []
    n = len(codes)
    # keeping >= e of n jets: t = the ceil(e n)-th largest code
    index = [n - max(1, int(np.ceil(e * n - 1e-9))) for e in efficiencies]
    return sorted({int(codes[i]) for i in index})


def outer_grid(family: str, grid: GridSpec, words: JetWords, n_scored: int, n_slots: int,
               scores: list[int], tags: list[int] | None = None) -> list[Seed]:
    """Every outer grid point of a family, as seeds whose tuned threshold is still unset.

    ``scores``: the tag grid of ``ht_tagged``; ``tags``: that of ``ht_ntag`` (default ``scores``).
    """
    if family in EVENT_SCORE_FAMILIES:  # one point: the configured preselection
        n, p, h = grid.preselection or (0, None, 0)
        return [Seed(family, n, jet_pt_code=p, ht_code=h)]
    if family == "jets_tagged":
        return [Seed(family, n, jet_pt_code=p) for n in range(1, min(grid.max_jets, n_scored) + 1)
                for p in grid.pt_codes(words, grid.jet_pt_max_gev)]
    if family == "ht_tagged":  # the same (n, p) grid as the kinematic ht family, times the score grid
        return [Seed(family, n, jet_pt_code=p, score_code=t) for n in range(1, min(grid.max_jets, n_scored) + 1)
                for p in grid.pt_codes(words, grid.ht_jet_pt_max_gev) for t in scores]
    if family == "ht_ntag":  # the kinematic ht (n, p) grid, k = 1..n tagged among the n_scored slots, tag grid
        return [Seed(family, n, jet_pt_code=p, score_code=t, n_tagged=k)
                for n in range(1, min(grid.max_jets, n_slots) + 1)
                for p in grid.pt_codes(words, grid.ht_jet_pt_max_gev)
                for k in range(1, min(n, n_scored) + 1) for t in (scores if tags is None else tags)]
    if family == "jets":
        return [Seed(family, n) for n in range(1, min(grid.max_jets, n_slots) + 1)]
    if family == "ht":
        plain = [Seed(family, 0, jet_pt_code=None)]
        return plain + [Seed(family, n, jet_pt_code=p) for n in range(1, min(grid.max_jets, n_slots) + 1)
                        for p in grid.pt_codes(words, grid.ht_jet_pt_max_gev)]
    raise ValueError(f"unknown seed family {family!r}; expected one of {FAMILIES}")


@dataclass(frozen=True)
class ScanRow:
    """One outer grid point at one target: the tuned seed, its calibration rate and selection efficiency."""

    target_rate_hz: float
    seed: Seed
    calibration_rate_hz: float
    calibration_rate_err_hz: float
    selection_efficiency: float


def lowest_code_at_rate(keys: np.ndarray, rate: WeightedRate, targets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each target: the lowest integer code whose rate is <= target, and that rate and error.

    ``keys`` are this rate sample's event keys. A code between two observed keys selects the
    same events as the next observed key, so the code is (previous observed key) + 1. When
    even the loosest code is below the target, the lowest observed key is returned.
    """
    observed = np.unique(keys[keys != NO_CODE])
    if len(observed) == 0:
        candidates = np.array([0], dtype=np.int64)
    else:
        candidates = np.r_[observed, observed[-1] + 1].astype(np.int64)
    rates, errs, _, _ = rate.at(keys, candidates)
    targets = np.asarray(targets, dtype=np.float64)
    # rates fall with the code: the first candidate at or below each target
    index = np.array([int(np.argmax(rates <= t)) if (rates <= t).any() else len(candidates) - 1 for t in targets])
    codes = np.where(index > 0, candidates[np.maximum(index - 1, 0)] + 1, candidates[index])
    return codes.astype(np.int64), rates[index], errs[index]


def search_family(family: str, outer: list[Seed], background: SeedJets, rate: WeightedRate, signal: SeedJets,
                  signal_events: np.ndarray, targets) -> list[ScanRow]:
    """Tune every outer grid point of ``family`` to each target on the calibration ``rate`` sample.

    ``background`` holds the rate sample's events (``rate.events`` selects the calibration half),
    ``signal``/``signal_events`` the events the efficiency is chosen on.
    """
    rows = []
    signal_events = np.asarray(signal_events, dtype=bool)
    # keys only for the events used: the calibration half and the selection signal events
    background, signal = background.take(rate.events), signal.take(signal_events)
    nth: dict[tuple, tuple] = {}  # ht_tagged, ht_ntag: one sort per (n, p[, k]), not per tag threshold
    for seed in outer:
        if seed.family == "ht_tagged":
            key = (seed.n_jets, seed.jet_pt_code)
            if key not in nth:
                nth.clear()
                nth[key] = (seed.tagged_nth_score(background), seed.tagged_nth_score(signal))
            keys = seed.ht_tagged_keys(nth[key][0], background)
            signal_keys = seed.ht_tagged_keys(nth[key][1], signal)
        elif seed.family == "ht_ntag":
            key = (seed.n_jets, seed.jet_pt_code, seed.n_tagged)
            if key not in nth:
                nth.clear()
                nth[key] = (seed.ntag_parts(background), seed.ntag_parts(signal))
            keys = seed.ntag_keys(nth[key][0], background)
            signal_keys = seed.ntag_keys(nth[key][1], signal)
        else:
            keys = seed.keys(background)
            signal_keys = seed.keys(signal)
        codes, rates, errs = lowest_code_at_rate(keys, rate, targets)
        for target, code, r, e in zip(targets, codes, rates, errs):
            eff = float((signal_keys >= code).mean()) if len(signal_keys) else float("nan")
            rows.append(ScanRow(float(target), seed.with_tuned(code), float(r), float(e), eff))
    return rows


def best_rows(rows: list[ScanRow], families) -> dict[float, ScanRow]:
    """Per target, the row of the given families with the highest selection efficiency (ties: lower rate)."""
    best: dict[float, ScanRow] = {}
    for row in rows:
        if row.seed.family not in families:
            continue
        current = best.get(row.target_rate_hz)
        if current is None or (row.selection_efficiency, -row.calibration_rate_hz) > \
                (current.selection_efficiency, -current.calibration_rate_hz):
            best[row.target_rate_hz] = row
    return best
