"""Jet constituents as the trigger sees them: the leading particle candidates of each jet, fixed-point words.

The third input builder beside :mod:`qtrigger.inputs.codes` (a jet's summary features) and
:mod:`qtrigger.inputs.event` (an event's leading jets). It reads the generator's candidate
collection (``JetCand_{pt,eta,phi,charge,class,d0,z0,jetIdx}`` and ``PV_z``, see
docs/generation.md) for the jets of a :class:`~qtrigger.data.reader.JetTable` and returns, per jet,
a fixed-size, pT-ordered, zero-padded array of integer codes with a mask (awkward/numpy, no
Python loops over events, jets or candidates).

Per candidate (``CONSTITUENT_FORMATS``; every word fixed-point at the source, rounded half to
even, saturated): ``pt`` (GeV), ``deta`` = eta - jet eta, ``dphi`` = phi - jet phi wrapped into
[-pi, pi) (both in the angle LSB pi/720), ``charge``, ``class`` (0 charged hadron, 1 neutral
hadron, 2 photon, 3 electron, 4 muon), ``d0`` (cm, smeared transverse impact parameter) and
``dz`` = z0 - PV_z (cm; 0 for neutral candidates, whose d0 and z0 are 0). Candidates are ordered
by pT code, ties keep the file's order; the first ``cap`` fill the slots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qtrigger.config import CONSTITUENT_FORMATS, FeatureFormat
from qtrigger.data.reader import JetTable, _iterate_file, check_nonfinite, open_events_tree
from qtrigger.errors import QTriggerError
from qtrigger.inputs.codes import Preprocessor, feature_code_range

CAND_BRANCHES = ("JetCand_pt", "JetCand_eta", "JetCand_phi", "JetCand_charge", "JetCand_class", "JetCand_d0",
                 "JetCand_z0", "JetCand_jetIdx")
# The branches a candidate's words are computed from, one bit each in a candidate's non-finite mask
# (d0, z0 and PV_z only for charged candidates: a neutral one's d0 and dz words are 0).
NONFINITE_SOURCES = ("JetCand_pt", "JetCand_eta", "JetCand_phi", "JetCand_charge", "JetCand_class", "JetCand_d0",
                     "JetCand_z0", "Jet_phi", "PV_z")
DEFAULT_CAP = 16
KEY_STRIDE = 1 << 16  # (entry, jet index) -> one int64 key; a NanoAOD event holds far fewer jets


@dataclass
class Constituents:
    """Per jet of a JetTable (same row order): ``codes[jet, slot, field]`` and ``mask[jet, slot]``."""

    names: tuple[str, ...]
    codes: np.ndarray  # (n_jets, cap, n_fields) int32, 0 in empty slots
    mask: np.ndarray  # (n_jets, cap) bool
    formats: dict[str, FeatureFormat]
    saturated: dict[str, float]  # per field: fraction of filled slots whose code saturated
    dropped: int = 0  # candidates beyond the cap
    nonfinite_jets: np.ndarray | None = None  # per jet: a candidate input is NaN/inf (its slots are left empty)
    nonfinite: dict[str, int] | None = None  # per source branch: jets with a NaN/inf value in it

    @property
    def cap(self) -> int:
        """Slots per jet."""
        return int(self.codes.shape[1])

    def subset(self, jets: np.ndarray) -> "Constituents":
        """The same fields for the jets where ``jets`` (a mask) is true."""
        bad = None if self.nonfinite_jets is None else self.nonfinite_jets[jets]
        return Constituents(self.names, self.codes[jets], self.mask[jets], self.formats, self.saturated, self.dropped,
                            bad, self.nonfinite)

    def values(self) -> np.ndarray:
        """Physical values of the codes (code x LSB), float64, 0 in empty slots."""
        lsb = np.array([self.formats[n].lsb for n in self.names])
        return self.codes * lsb


def _tree_keys(path: str, tree: str) -> set[str]:
    return set(open_events_tree(path, tree).keys())


def has_constituents(path: str, tree: str = "Events") -> bool:
    """True when the file's tree holds every ``JetCand_*`` branch."""
    return set(CAND_BRANCHES) <= _tree_keys(path, tree)


def check_constituent_branches(files: list[str], tree: str = "Events") -> None:
    """One-line error naming the first file without the candidate branches."""
    for path in files:
        keys = _tree_keys(path, tree)
        missing = [b for b in CAND_BRANCHES if b not in keys]
        if missing:
            raise QTriggerError(f"{path}: no jet constituents ({', '.join(missing)} absent); a constituent network "
                                "needs them: generate the sample without --no-candidates (docs/generation.md)")


def quantize_field(values: np.ndarray, fmt: FeatureFormat) -> tuple[np.ndarray, np.ndarray]:
    """Values to codes of ``fmt`` (round half to even, saturate) and which saturated."""

    lo, hi = feature_code_range(fmt.bits, fmt.signed)
    raw = np.rint(np.asarray(values, np.float64) / fmt.lsb)
    return np.clip(raw, lo, hi).astype(np.int32), (raw < lo) | (raw > hi)


def wrap_angle(d: np.ndarray) -> np.ndarray:
    """Angle differences into [-pi, pi)."""
    return (np.asarray(d, np.float64) + math.pi) % (2 * math.pi) - math.pi


def _file_candidates(path: str, entries: np.ndarray, jet_index: np.ndarray, tree: str, step_size) -> dict:
    """Candidate fields (physical) of the given (entry, jet index) jets of one file, with their jet's position."""
    import awkward as ak


    keys = entries * KEY_STRIDE + jet_index
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    branches = [*CAND_BRANCHES, "Jet_eta", "Jet_phi"]
    has_pv = "PV_z" in _tree_keys(path, tree)
    branches += ["PV_z"] if has_pv else []
    parts = []
    stop = int(entries.max()) + 1 if len(entries) else 0
    for chunk in _iterate_file(path, tree, branches, step_size, stop, False):
        start = chunk.attrs["entry_start"]
        n_cand = ak.to_numpy(ak.num(chunk["JetCand_pt"], axis=1))
        local = np.repeat(np.arange(len(chunk), dtype=np.int64), n_cand)
        jet_idx = ak.to_numpy(ak.flatten(chunk["JetCand_jetIdx"])).astype(np.int64)
        cand_keys = (start + local) * KEY_STRIDE + jet_idx
        pos = np.clip(np.searchsorted(sorted_keys, cand_keys), 0, max(len(sorted_keys) - 1, 0))
        hit = (sorted_keys[pos] == cand_keys) if len(sorted_keys) else np.zeros(len(cand_keys), bool)
        n_jet = ak.to_numpy(ak.num(chunk["Jet_eta"], axis=1))
        jet_start = np.concatenate([[0], np.cumsum(n_jet)[:-1]]).astype(np.int64)
        flat_jet = jet_start[local] + jet_idx
        jet_eta = ak.to_numpy(ak.flatten(chunk["Jet_eta"])).astype(np.float64)
        jet_phi = ak.to_numpy(ak.flatten(chunk["Jet_phi"])).astype(np.float64)
        field = {b: ak.to_numpy(ak.flatten(chunk[b])) for b in CAND_BRANCHES[:-1]}
        charge = np.nan_to_num(field["JetCand_charge"], nan=1, posinf=1, neginf=-1).astype(np.int64)
        pv = ak.to_numpy(chunk["PV_z"]).astype(np.float64)[local] if has_pv else np.zeros(len(local))
        sel = hit & (flat_jet < len(jet_eta))
        sources = {**{b: field[b][sel] for b in NONFINITE_SOURCES[:7]}, "Jet_phi": jet_phi[flat_jet[sel]],
                   "PV_z": pv[sel]}
        parts.append({
            "nonfinite": nonfinite_bits(sources, charge[sel] != 0),
            "row": order[pos[sel]],
            "pt": field["JetCand_pt"][sel].astype(np.float64),
            "deta": field["JetCand_eta"][sel] - jet_eta[flat_jet[sel]],
            "dphi": wrap_angle(field["JetCand_phi"][sel] - jet_phi[flat_jet[sel]]),
            "charge": charge[sel].astype(np.float64),
            "class": field["JetCand_class"][sel].astype(np.float64),
            "d0": np.where(charge[sel] != 0, field["JetCand_d0"][sel], 0.0),
            "dz": np.where(charge[sel] != 0, field["JetCand_z0"][sel] - pv[sel], 0.0),
        })
    return {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, np.int64 if k == "nonfinite" else None)
            for k in ("row", "nonfinite", "pt", "deta", "dphi", "charge", "class", "d0", "dz")}


def nonfinite_bits(sources: dict[str, np.ndarray], charged: np.ndarray) -> np.ndarray:
    """Per candidate, bit k set when ``NONFINITE_SOURCES[k]`` is NaN/inf where it reaches a word."""
    bits = np.zeros(len(charged), np.int64)
    for k, branch in enumerate(NONFINITE_SOURCES):
        bad = ~np.isfinite(sources[branch])
        if branch in ("JetCand_d0", "JetCand_z0", "PV_z"):
            bad &= charged
        bits |= bad.astype(np.int64) << k
    return bits


def nonfinite_by_jet(rows: np.ndarray, bits: np.ndarray, n_jets: int) -> tuple[np.ndarray, dict[str, int]]:
    """Which jets have a NaN/inf candidate input, and per source branch how many jets."""
    per_jet = np.zeros(n_jets, np.int64)
    np.bitwise_or.at(per_jet, rows, bits)
    counts = {b: int(((per_jet >> k) & 1).sum()) for k, b in enumerate(NONFINITE_SOURCES)}
    return per_jet != 0, {b: n for b, n in counts.items() if n}


def read_constituents(table, cap: int = DEFAULT_CAP, formats: dict[str, FeatureFormat] | None = None,
                      tree: str = "Events", step_size: str | int = "50 MB", on_nonfinite: str = "drop") -> Constituents:
    """The leading ``cap`` candidates of every jet of ``table`` as codes (module docstring).

    A jet with a NaN/inf candidate input (``NONFINITE_SOURCES``) keeps empty slots and is marked in
    ``nonfinite_jets`` (:func:`finite_constituents` drops it), or with ``on_nonfinite="error"`` its file
    is refused naming the branches and the number of jets.
    """
    if cap < 1:
        raise QTriggerError(f"constituent cap {cap}: expected at least 1 slot per jet")
    formats = {**CONSTITUENT_FORMATS, **(formats or {})}
    names = tuple(CONSTITUENT_FORMATS)
    jet_file = table.event_file[table.event]
    used = [f for f in range(len(table.files)) if np.any(jet_file == f)]
    check_constituent_branches([table.files[f] for f in used], tree)
    pieces = []
    for f in used:
        jets = np.flatnonzero(jet_file == f)
        got = _file_candidates(table.files[f], table.event_entry[table.event[jets]], table.jet_index[jets].astype(np.int64),
                               tree, step_size)
        got["row"] = jets[got["row"].astype(np.int64)]
        bad, by_branch = nonfinite_by_jet(got["row"], got["nonfinite"], table.n_jets)
        check_nonfinite(table.files[f], int(bad.sum()), by_branch, on_nonfinite, "constituents")
        pieces.append(got)
    cat = {k: np.concatenate([p[k] for p in pieces]) if pieces else np.zeros(0) for k in
           ("row", "nonfinite", "pt", *names[1:])}
    bad_jets, by_branch = nonfinite_by_jet(cat["row"].astype(np.int64), cat["nonfinite"].astype(np.int64), table.n_jets)
    finite = ~bad_jets[cat["row"].astype(np.int64)]  # a dropped jet's candidates never reach a word
    cat = {k: v[finite] for k, v in cat.items()}
    cands = _slots(cat, table.n_jets, cap, names, formats)
    cands.nonfinite_jets, cands.nonfinite = bad_jets, by_branch
    return cands


def _slots(cat: dict, n_jets: int, cap: int, names: tuple[str, ...], formats: dict[str, FeatureFormat]) -> Constituents:
    """Candidates (physical fields with their jet's row) to pT-ordered, zero-padded codes per jet."""
    row = cat["row"].astype(np.int64)
    codes, saturated = {}, {}
    for name in names:
        codes[name], sat = quantize_field(cat[name], formats[name])
        saturated[name] = float(sat.mean()) if len(sat) else 0.0
    order = np.lexsort((np.arange(len(row)), -codes["pt"].astype(np.int64), row))  # by jet, pT code desc, file order
    row_sorted = row[order]
    first = np.searchsorted(row_sorted, row_sorted, side="left")
    rank = np.arange(len(row_sorted)) - first
    keep = rank < cap
    out = np.zeros((n_jets, cap, len(names)), np.int32)
    mask = np.zeros((n_jets, cap), bool)
    rows, slots = row_sorted[keep], rank[keep]
    for k, name in enumerate(names):
        out[rows, slots, k] = codes[name][order][keep]
    mask[rows, slots] = True
    return Constituents(names, out, mask, formats, saturated, int((~keep).sum()))


def constituent_codes(table, features, cap: int, tree: str = "Events", step_size: str | int = "50 MB",
                      on_nonfinite: str = "drop") -> Constituents:
    """The ``features.names`` fields of the leading ``cap`` constituents of every jet of ``table``, in
    that field order (``features``: a ``FeaturesConfig`` with ``level: constituent``; its ``formats``
    may override the fields' words)."""
    formats = {name: features.format_of(name) for name in features.names}
    cands = read_constituents(table, cap=cap, formats=formats, tree=tree, step_size=step_size, on_nonfinite=on_nonfinite)
    columns = [cands.names.index(name) for name in features.names]
    return Constituents(tuple(features.names), cands.codes[..., columns], cands.mask, cands.formats,
                        {name: cands.saturated[name] for name in features.names}, cands.dropped,
                        cands.nonfinite_jets, cands.nonfinite)


def finite_constituents(table: JetTable, features, cap: int, data) -> tuple[JetTable, Constituents]:
    """:func:`constituent_codes` of the jets of ``table`` under ``data.on_nonfinite`` (``data``: a run's
    ``DataConfig``): jets with a NaN/inf candidate input are dropped from both and counted per branch in
    the table (``drop``), or their file is refused (``error``), as jets with a NaN/inf feature are."""
    cands = constituent_codes(table, features, cap, data.tree, data.step_size, data.on_nonfinite)
    bad = cands.nonfinite_jets
    if bad is None or not bad.any():
        return table, cands
    if bad.all():
        raise QTriggerError(f"every one of the {table.n_jets} selected jets has a NaN/inf constituent input "
                            f"(data.on_nonfinite=drop): {', '.join(sorted(cands.nonfinite))}; files: "
                            f"{', '.join(table.files)}")
    return table.drop_nonfinite(bad, cands.nonfinite), cands.subset(~bad)


def constituent_inputs(cands: Constituents, features, train: np.ndarray):
    """Network inputs of a constituent network from its jets' codes (:func:`finite_constituents`):
    ``(jets, cap, len(features.names))`` and the fitted :class:`~qtrigger.inputs.codes.Preprocessor`
    (padded slots are 0 in every field).

    Unless ``features.shifts`` gives them, the power-of-two shifts come from a robust spread of each
    field over the filled slots of the ``train`` jets, half the 16th..84th percentile range (one
    sigma for a Gaussian): with the standard deviation, the ~2 % of K0S/Lambda tracks at
    centimetres of d0 would set the d0 scale and squeeze the prompt and b-decay tracks (tens to
    hundreds of um) far below 1.
    """

    filled_train = cands.codes[train][cands.mask[train]]
    shifts = {**robust_shifts(filled_train, features.names), **(features.shifts or {})}
    preprocessor = Preprocessor.fit(filled_train, features.model_copy(update={"shifts": shifts}), list(features.names))
    preprocessor.saturated_fraction = dict(cands.saturated)
    return preprocessor.transform(cands.codes), preprocessor


def robust_shifts(codes: np.ndarray, names) -> dict[str, int]:
    """Per column: the power-of-two shift bringing half the 16th..84th percentile range of ``codes`` to O(1)."""
    if not len(codes):
        return {name: 0 for name in names}
    low, high = np.percentile(codes, [16, 84], axis=0)
    spread = (high - low) / 2
    return {name: max(0, round(math.log2(s))) if s > 0 else 0 for name, s in zip(names, spread)}
