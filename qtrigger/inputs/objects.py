"""Event-level input words of L1 object groups (``features.objects``; issue 32): per event, the leading objects of each
collection and the named energy sums, as the Global Trigger's fixed-point words.

Per object group (:class:`~qtrigger.config.ObjectGroup`):

- slots: the ``n`` leading objects of bunch crossing 0 by pT word (ties keep the file's order), each a pT, an eta and a
  phi word; empty slots are all-zero words;
- sums: for each named ``etSumType``, the pT and phi words of the event's first bunch-crossing-0 entry of that type
  (zero words where the event has none).

Words: where the file carries the hardware words (``hwPt``, ``hwEta``, ``hwPhi``) and the field's format is the GT's
default, they are used as they are; otherwise they come from the floats: pT truncated (pT / LSB, plus one for muons:
the uGMT's word, so that both schemas give the same words), eta rounded, phi rounded and wrapped into 0..steps-1.
Every word is then saturated into its format. Everything is integer array code: the words are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qtrigger.config import FeatureFormat, FeaturesConfig, ObjectGroup
from qtrigger.config.inputs import MUON_COLLECTIONS
from qtrigger.inputs.codes import feature_code_range

PT_TOLERANCE = 1e-6  # LSBs: a float stored from a whole word (e.g. 40.5 GeV) truncates onto that word


@dataclass
class ObjectWords:
    """One row of integer words per event: ``names[i]`` is column ``i`` of ``words``, in format ``formats[i]``."""

    names: list[str]
    words: np.ndarray
    formats: list[FeatureFormat]
    clipped: np.ndarray | None = None  # per event and word: saturated into its format

    def column(self, name: str) -> np.ndarray:
        """The words of one input."""
        return self.words[:, self.names.index(name)]


def object_words(collections: dict[str, dict], features: FeaturesConfig) -> ObjectWords:
    """The words of every ``features.objects`` group from :func:`qtrigger.data.objects.read_object_groups` output."""
    names, columns, formats, clipped = [], [], [], []
    for group in features.objects:
        fields = collections[group.collection]
        block = _sum_words(fields, group, features) if group.is_sum else _slot_words(fields, group, features)
        for name, (column, fmt) in block.items():
            names.append(name)
            columns.append(_saturate(column, fmt))
            clipped.append(columns[-1] != column)
            formats.append(fmt)
    return ObjectWords(names, np.stack(columns, axis=1).astype(np.int64), formats, np.stack(clipped, axis=1))


def _field_words(fields: dict, group: ObjectGroup, field: str, fmt: FeatureFormat) -> object:
    """Jagged words of one field: the file's ``hw`` word under the GT's default format, else from the float."""
    import awkward as ak

    hw = f"hw{field[0].upper()}{field[1:]}"
    if hw in fields and fmt == group.default_format(field):
        return ak.values_astype(fields[hw], np.int64)
    values = ak.values_astype(fields[field], np.float64)
    if field == "pt":
        muon = not group.is_sum and group.collection in MUON_COLLECTIONS
        return ak.values_astype(np.floor(values / fmt.lsb + PT_TOLERANCE), np.int64) + (1 if muon else 0)
    words = ak.values_astype(np.rint(values / fmt.lsb), np.int64)
    if field == "phi":
        words = words % round(2 * math.pi / fmt.lsb)
    return words


def delta_phi_words(phi_a: np.ndarray, steps_a: int, phi_b: np.ndarray, steps_b: int) -> tuple[np.ndarray, int]:
    """Exact Delta-phi of two phi words of different granularity (e.g. muons in 576 steps, calorimeter objects in
    144): the coarser word is scaled onto the finer grid (144 -> 576 is x 4, as the GT converts calorimeter phi
    to the muon scale for calo-muon correlations), then ``a - b`` is wrapped into [-steps/2, steps/2).
    Returns (Delta-phi words, steps of their grid)."""
    steps = max(steps_a, steps_b)
    if steps % steps_a or steps % steps_b:
        raise ValueError(f"phi scales of {steps_a} and {steps_b} steps have no exact common grid")
    a = np.asarray(phi_a, np.int64) * (steps // steps_a)
    b = np.asarray(phi_b, np.int64) * (steps // steps_b)
    return (a - b + steps // 2) % steps - steps // 2, steps


def _saturate(words: np.ndarray, fmt: FeatureFormat) -> np.ndarray:
    lo, hi = feature_code_range(fmt.bits, fmt.signed)
    return np.clip(words, lo, hi)


def _slot_words(fields: dict, group: ObjectGroup, features: FeaturesConfig) -> dict:
    """``<collection><slot>_<field>`` -> (words per event, format) of the ``n`` leading objects."""
    import awkward as ak

    fmts = {f: features.object_format(group, f) for f in group.slot_fields}
    jagged = {f: _field_words(fields, group, f, fmts[f]) for f in fmts}
    kept = _in_acceptance(jagged, fmts, group)
    if kept is not None:
        jagged = {f: words[kept] for f, words in jagged.items()}
    order = ak.argsort(jagged["pt"], axis=1, ascending=False, stable=True)
    out = {}
    for field, fmt in fmts.items():
        padded = ak.fill_none(ak.pad_none(jagged[field][order], group.n, axis=1, clip=True), 0)
        dense = ak.to_numpy(padded).astype(np.int64).reshape(len(padded), group.n)  # saturated by the caller
        for slot in range(group.n):
            out[f"{group.collection}{slot}_{field}"] = (dense[:, slot], fmt)
    return {name: out[name] for name in group.input_names()}


def _in_acceptance(jagged: dict, fmts: dict, group: ObjectGroup) -> object:
    """Which objects may fill slots (``pt_min``, ``abs_eta_max``, on the words: pT word x LSB >= pt_min,
    |eta word x LSB| <= abs_eta_max), or None when the group sets neither."""
    if group.pt_min is None and group.abs_eta_max is None:
        return None
    kept = jagged["pt"] >= 0
    if group.pt_min is not None:
        muon = group.collection in MUON_COLLECTIONS  # the uGMT's pT word is pT / LSB + 1
        kept = kept & ((jagged["pt"] - (1 if muon else 0)) * fmts["pt"].lsb >= group.pt_min - 1e-9)
    if group.abs_eta_max is not None:
        kept = kept & (abs(jagged["eta"]) * fmts["eta"].lsb <= group.abs_eta_max + 1e-9)
    return kept


def _sum_words(fields: dict, group: ObjectGroup, features: FeaturesConfig) -> dict:
    """``<sum name>_<field>`` -> (words per event, format) of each named ``etSumType``."""
    import awkward as ak

    out = {}
    for name, code in group.types.items():
        of_type = fields["etSumType"] == code
        for field in ("pt", "phi"):
            fmt = features.object_format(group, field, name)
            words = _field_words(fields, group, field, fmt)[of_type]
            first = ak.fill_none(ak.firsts(words, axis=1), 0)
            out[f"{name}_{field}"] = (ak.to_numpy(first).astype(np.int64), fmt)
    return out
