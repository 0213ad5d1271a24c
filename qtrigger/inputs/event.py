"""Event inputs as the seed firmware sees them: the leading jets' words, Delta-phi, HT and the jet count.

The event-level input builder (``features.level: event``), beside the per-jet one in
:mod:`qtrigger.inputs.codes`. Per event, the seed's jet slots (:func:`qtrigger.inputs.seed_jets.seed_jets`:
selected jets with pT >= the seed's minimum, sorted by pT code, ties keep the earlier jet) give

- for each of the leading ``features.event_jets`` slots, one integer code per ``features.names``
  entry: ``Jet_pt`` is the seed's pT word (truncated, :class:`~qtrigger.inputs.seed_jets.JetWords`),
  ``Jet_phi`` becomes Delta-phi to the leading jet in phi codes (``phi_j - phi_0``; subtract 1440 if
  >= 720, add 1440 if < -720), every other feature its own word (rounded half to even, saturated,
  ``features.formats``); missing jets are all-zero words;
- ``ht``: the seed's HT word; ``n_jets``: the number of filled seed slots.

Every input is a fixed-point code at the source; :class:`~qtrigger.inputs.codes.Preprocessor` then
puts them on the QKeras input quantizer's grid exactly as for per-jet inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qtrigger.config import ANGLE_LSB, FeatureFormat, FeaturesConfig
from qtrigger.data.reader import read_jets
from qtrigger.errors import QTriggerError
from qtrigger.inputs.codes import feature_code_range
from qtrigger.inputs.event_ops import DeltaPhi, Gate, InputOp
from qtrigger.inputs.seed_jets import JetWords, SeedJets, jet_words, leading_rank, min_jet_pt, seed_jets

PHI_HALF_TURN = 720  # pi in phi codes (LSB pi/720)
LEPTON_LIKE_BRANCHES = ("Jet_chEmEF", "Jet_muEF")
LEPTON_LIKE_FRACTION = 0.5
NARROW_WORD_FRACTION = 0.01  # an input saturating on more than 1 % of the entries it is filled for


@dataclass(frozen=True)
class EventInputSpec:
    """What the event builder produces: slot count, per-slot features, words and the seed's jet selection.

    The jet implementation of the event-input interface (the object-group one is
    :class:`qtrigger.inputs.object_event.ObjectInputSpec`; :func:`qtrigger.inputs.object_event.event_input_spec`
    picks one): ``kind``, ``names``, ``input_formats``, ``features_config``, ``branches``, ``word_shape`` (the words
    per event kept beside the seed slots), ``port_formats``/:meth:`port_words` (what the firmware receives beside
    the seed slots), ``program`` (how it makes the input codes, :mod:`qtrigger.inputs.event_ops`), ``count_max``,
    :meth:`read`, :meth:`build`, :meth:`codes`, :meth:`random_words` and :meth:`summary`.
    """

    kind = "jets"

    n_jets: int
    jet_features: tuple[str, ...]
    formats: dict[str, FeatureFormat]
    words: JetWords
    n_slots: int
    min_jet_pt_gev: float

    @classmethod
    def from_config(cls, config) -> "EventInputSpec":
        """From a RunConfig with ``features.level: event`` (the seed words of ``trigger``)."""
        f, t = config.features, config.trigger
        if f.event_jets < 1:
            raise QTriggerError(f"key features.event_jets: need at least 1 jet per event (got {f.event_jets})")
        formats = {name: f.format_of(name) for name in f.names}
        return cls(int(f.event_jets), tuple(f.names), formats, jet_words(config),
                   max(int(t.seed_jets), int(f.event_jets)), float(min_jet_pt(config)))

    def slot_name(self, slot: int, branch: str) -> str:
        """Input name of one slot's feature, e.g. ``j0_pt``, ``j2_dphi``, ``j1_chHEF``."""
        short = "dphi" if branch == "Jet_phi" else branch.removeprefix("Jet_")
        return f"j{slot}_{short}"

    def slot_format(self, branch: str) -> FeatureFormat:
        """The word of one per-slot feature (pT: the seed's pT word)."""
        if branch == "Jet_pt":
            return FeatureFormat(lsb=self.words.pt_lsb_gev, bits=self.words.pt_bits, signed=False)
        return self.formats[branch]

    @property
    def names(self) -> list[str]:
        """Input names in network order: slot-major per-jet features, then ``ht`` and ``n_jets``."""
        return [self.slot_name(k, b) for k in range(self.n_jets) for b in self.jet_features] + ["ht", "n_jets"]

    @property
    def input_formats(self) -> dict[str, FeatureFormat]:
        """Every input's word (LSB, bits, signedness)."""
        out = {self.slot_name(k, b): self.slot_format(b) for k in range(self.n_jets) for b in self.jet_features}
        out["ht"] = FeatureFormat(lsb=self.words.pt_lsb_gev, bits=self.words.ht_bits, signed=False)
        out["n_jets"] = FeatureFormat(lsb=1.0, bits=max(1, int(self.n_slots).bit_length()), signed=False)
        return out

    def features_config(self, shifts: dict[str, int] | None = None) -> FeaturesConfig:
        """A :class:`FeaturesConfig` over the event inputs, for :class:`~qtrigger.inputs.codes.Preprocessor`;
        ``shifts``: ``features.shifts`` (:meth:`input_shifts`)."""
        return FeaturesConfig(names=self.names, formats=self.input_formats, shifts=self.input_shifts(shifts))

    def input_shifts(self, shifts: dict[str, int] | None) -> dict[str, int] | None:
        """``features.shifts`` per event input: a jet branch's shift applies to that feature in every jet slot
        (``Jet_pt`` -> ``j0_pt``, ``j1_pt``, ...; ``Jet_phi`` -> the Delta-phi inputs), ``ht``/``n_jets`` as given."""
        if not shifts:
            return None
        out = {}
        for name, shift in shifts.items():
            slots = [self.slot_name(k, name) for k in range(self.n_jets)] if name in self.jet_features else [name]
            out.update(dict.fromkeys(slots, int(shift)))
        return out

    @property
    def branches(self) -> list[str]:
        """Jet branches the builder reads (the configured ones plus those of the lepton-like flag)."""
        return list(dict.fromkeys([*self.jet_features, *LEPTON_LIKE_BRANCHES]))

    @property
    def word_shape(self) -> tuple[int, ...]:
        """Shape of one event's words: (slots, per-slot features)."""
        return (self.n_jets, len(self.jet_features))

    @property
    def word_ports(self) -> list[tuple[int, int]]:
        """(slot, feature index) of every port word the firmware receives beside the seed slots: each leading slot's
        features except ``Jet_pt`` (that comes from the slot's pT word)."""
        return [(k, f) for k in range(self.n_jets) for f, b in enumerate(self.jet_features) if b != "Jet_pt"]

    @property
    def port_formats(self) -> tuple[FeatureFormat, ...]:
        """The word of every port."""
        return tuple(self.formats[self.jet_features[f]] for _, f in self.word_ports)

    @property
    def count_max(self) -> int:
        """Largest jet-count code."""
        return 2 ** self.input_formats["n_jets"].bits - 1

    @property
    def program(self) -> list[InputOp]:
        """The network inputs over the seed slots and ports (:mod:`qtrigger.inputs.event_ops`), ``ht``/``n_jets``
        excluded: the same codes as :func:`codes_from_words`."""
        port = {slot_feature: p for p, slot_feature in enumerate(self.word_ports)}
        ops = []
        for k in range(self.n_jets):
            for f, branch in enumerate(self.jet_features):
                gate = Gate("slot", k)
                if branch == "Jet_pt":
                    ops.append(InputOp("pt", k, gate))
                elif branch == "Jet_phi":
                    lo, hi = feature_code_range(self.formats[branch].bits, self.formats[branch].signed)
                    ops.append(InputOp("port", port[(k, f)], gate,
                                       DeltaPhi(port[(0, f)], Gate("slot", 0), 1, 1, PHI_HALF_TURN, lo, hi)))
                else:
                    ops.append(InputOp("port", port[(k, f)], gate))
        return ops

    def port_words(self, jets: SeedJets, slot_words: np.ndarray) -> np.ndarray:
        """The port values of every event (empty slots: 0); a ``Jet_pt`` slot word must equal the slot's pT word
        (as :func:`build_event_inputs` writes it)."""
        valid = jets.valid[:, :self.n_jets]
        if "Jet_pt" in self.jet_features:
            f = self.jet_features.index("Jet_pt")
            if np.any(np.where(valid, slot_words[:, :, f] != jets.pt[:, :self.n_jets], False)):
                raise QTriggerError("event RTL rows: a Jet_pt slot word differs from the slot's pT word")
        features = [f for f, b in enumerate(self.jet_features) if b != "Jet_pt"]
        words = np.where(valid[:, :, None], slot_words[:, :, features], 0)
        return words.reshape(len(words), -1).astype(np.int64)

    def read(self, config, samples: dict[str, list[str]], max_events: int | None = None):
        """The jets of ``{sample: files}`` this builder reads (:func:`read_event_table`)."""
        return read_event_table(config, samples, max_events, self)

    def build(self, table) -> "EventInputs":
        """The event inputs of every event of ``table`` (:func:`build_event_inputs`)."""
        return build_event_inputs(table, self)

    def codes(self, words: np.ndarray, jets: SeedJets) -> tuple[np.ndarray, np.ndarray]:
        """Network input codes from the words (:func:`codes_from_words`)."""
        return codes_from_words(words, jets, self)

    def random_words(self, rng: np.random.Generator, pt: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Random slot words at the word limits for the seed slots ``pt``/``valid`` (``Jet_pt``: the pT word)."""
        n_events = len(pt)
        slot_words = np.zeros((n_events, self.n_jets, len(self.jet_features)), dtype=np.int64)
        for f, branch in enumerate(self.jet_features):
            if branch == "Jet_pt":
                slot_words[:, :, f] = pt[:, :self.n_jets]
                continue
            lo, hi = feature_code_range(self.formats[branch].bits, self.formats[branch].signed)
            if branch == "Jet_phi":
                lo, hi = max(lo, -PHI_HALF_TURN), min(hi, PHI_HALF_TURN)
            pick = rng.random((n_events, self.n_jets))
            edge = np.where(rng.random((n_events, self.n_jets)) < 0.5, lo, hi)
            slot_words[:, :, f] = np.where(pick < 0.3, edge, rng.integers(lo, hi + 1, (n_events, self.n_jets)))
        return np.where(valid[:, :self.n_jets, None], slot_words, 0)

    def summary(self) -> dict:
        """What the inputs are, for the run's data summary."""
        return {"event_jets": self.n_jets}


@dataclass
class EventInputs:
    """Per event: the words the seed firmware receives, the network input codes built from them, bookkeeping.

    ``slot_words[e, k, f]`` is slot ``k``'s word of ``jet_features[f]`` (``Jet_pt``: the seed's pT
    word; ``Jet_phi``: the phi code, not yet Delta-phi; 0 for an empty slot); ``codes`` are the
    network input codes (:func:`codes_from_words`).
    """

    names: list[str]
    codes: np.ndarray  # (n_events, n_inputs) int64
    jets: SeedJets  # the seed's slots (pT words, validity, HT); scores unset
    saturated: dict[str, float]  # per input: fraction of filled entries whose code was saturated
    lepton_like: np.ndarray | None  # per event: a selected jet with chEmEF or muEF > 0.5 (None: branches absent)
    slot_words: np.ndarray | None = None  # (n_events, n_jets, n_features) int64

    @property
    def n_events(self) -> int:
        """Number of events (rows)."""
        return len(self.codes)


def quantize(values: np.ndarray, fmt: FeatureFormat) -> tuple[np.ndarray, np.ndarray]:
    """Values to codes of ``fmt`` (round half to even, saturate); also which values saturated."""
    lo, hi = feature_code_range(fmt.bits, fmt.signed)
    raw = np.rint(np.asarray(values, dtype=np.float64) / fmt.lsb)
    return np.clip(raw, lo, hi).astype(np.int64), (raw < lo) | (raw > hi)


def wrap_dphi(dphi_codes: np.ndarray, half_turn: int = PHI_HALF_TURN) -> np.ndarray:
    """Delta-phi codes into [-half_turn, half_turn): subtract 2*half_turn if >= half_turn, add it if < -half_turn."""
    d = np.asarray(dphi_codes, dtype=np.int64)
    return np.where(d >= half_turn, d - 2 * half_turn, np.where(d < -half_turn, d + 2 * half_turn, d))


def slot_order(pt_codes: np.ndarray, jet_event: np.ndarray) -> np.ndarray:
    """Jet order: by event, then pT code descending; ties keep the earlier jet (stable sort)."""
    return np.lexsort((-np.asarray(pt_codes, dtype=np.int64), np.asarray(jet_event, dtype=np.int64)))


def codes_from_words(slot_words: np.ndarray, jets: SeedJets, spec: EventInputSpec) -> tuple[np.ndarray, np.ndarray]:
    """Network input codes from the seed's words (what the firmware computes), and which entries saturated.

    Per slot: every word as is, except ``Jet_phi`` -> Delta-phi to slot 0 (wrapped, saturated to the
    phi word); empty slots give 0. Then HT (the seed's HT word) and the number of filled seed slots.
    """
    n_events, n_jets, width = slot_words.shape
    valid = jets.valid[:, :n_jets]
    values = np.where(valid[:, :, None], slot_words, 0)
    clipped = np.zeros(values.shape, bool)
    if "Jet_phi" in spec.jet_features:
        f = spec.jet_features.index("Jet_phi")
        lo, hi = feature_code_range(spec.formats["Jet_phi"].bits, spec.formats["Jet_phi"].signed)
        dphi = wrap_dphi(values[:, :, f] - values[:, :1, f])
        clipped[:, :, f] = valid & ((dphi < lo) | (dphi > hi))
        values[:, :, f] = np.where(valid, np.clip(dphi, lo, hi), 0)
    codes = np.zeros((n_events, n_jets * width + 2), dtype=np.int64)
    codes[:, :-2] = values.reshape(n_events, -1)
    count_max = 2 ** spec.input_formats["n_jets"].bits - 1
    counts = jets.valid.sum(axis=1)
    codes[:, -2] = jets.ht
    codes[:, -1] = np.minimum(counts, count_max)
    return codes, clipped


def seed_slots(table, spec) -> tuple[SeedJets, np.ndarray, np.ndarray]:
    """The seed's slots of every event of ``table`` (selected jets with pT >= the seed's minimum, by pT word), the
    table rows of those jets in slot order and their events."""
    pt = table.extra["pt"].astype(np.float64)
    pt_code = spec.words.pt_code(pt)
    jets_kept = np.flatnonzero(pt >= spec.min_jet_pt_gev)
    order = jets_kept[slot_order(pt_code[jets_kept], table.event[jets_kept])]
    event = table.event[order]
    return seed_jets(pt[order], None, event, table.n_events, spec.n_slots, 0, spec.words), order, event


def build_event_inputs(table, spec: EventInputSpec) -> EventInputs:
    """The event inputs of every event of a :class:`~qtrigger.data.reader.JetTable` (events without jets: zeros).

    The table must hold the ``spec.jet_features`` columns (``read_event_table``).
    """

    if "Jet_phi" in spec.jet_features and not math.isclose(spec.formats["Jet_phi"].lsb, ANGLE_LSB):
        raise QTriggerError(f"key features.formats.Jet_phi: an event input needs the phi LSB pi/720 "
                            f"(Delta-phi in phi codes), got {spec.formats['Jet_phi'].lsb:g}")
    n_events = table.n_events
    jets, order, event = seed_slots(table, spec)
    rank = leading_rank(event)
    in_input = rank < spec.n_jets
    rows, slots, source = event[in_input], rank[in_input], order[in_input]

    width = len(spec.jet_features)
    slot_words = np.zeros((n_events, spec.n_jets, width), dtype=np.int64)
    word_clipped = np.zeros((n_events, spec.n_jets, width), bool)
    for f, branch in enumerate(spec.jet_features):
        if branch == "Jet_pt":
            slot_words[rows, slots, f] = jets.pt[rows, slots]
        else:
            slot_words[rows, slots, f], word_clipped[rows, slots, f] = quantize(table.column(branch)[source],
                                                                                spec.formats[branch])
    codes, clipped = codes_from_words(slot_words, jets, spec)
    clipped |= word_clipped
    saturated: dict[str, float] = {}
    valid = jets.valid[:, :spec.n_jets]
    for k in range(spec.n_jets):
        filled = valid[:, k]
        for f, branch in enumerate(spec.jet_features):
            saturated[spec.slot_name(k, branch)] = float(clipped[filled, k, f].mean()) if filled.any() else 0.0
    saturated["ht"] = float(np.mean(jets.ht >= spec.words.ht_max_code)) if n_events else 0.0
    count_max = 2 ** spec.input_formats["n_jets"].bits - 1
    saturated["n_jets"] = float(np.mean(jets.valid.sum(axis=1) > count_max)) if n_events else 0.0
    return EventInputs(spec.names, codes, jets, saturated, lepton_like_events(table), slot_words)


def lepton_like_events(table) -> np.ndarray | None:
    """Per event: a selected jet with chEmEF > 0.5 or muEF > 0.5 (None when the table lacks those columns)."""
    if not all(b in table.feature_names for b in LEPTON_LIKE_BRANCHES):
        return None
    jet = np.zeros(table.n_jets, bool)
    for branch in LEPTON_LIKE_BRANCHES:
        jet |= table.column(branch) > LEPTON_LIKE_FRACTION
    return np.bincount(table.event[jet], minlength=table.n_events) > 0


def check_input_words(inputs: EventInputs, where: str) -> None:
    """One-line error when an input word is too narrow for its feature (saturates on > 1 % of its entries)."""
    narrow = {name: f for name, f in inputs.saturated.items() if f > NARROW_WORD_FRACTION}
    if narrow:
        name, fraction = max(narrow.items(), key=lambda item: item[1])
        raise QTriggerError(
            f"event input {name} saturates its word on {100 * fraction:.1f} % of the {where} (limit "
            f"{100 * NARROW_WORD_FRACTION:g} %): its word is too narrow for the feature; widen features.formats "
            f"(or trigger.pt_bits / ht_bits){'' if len(narrow) == 1 else f'; {len(narrow) - 1} more input(s) too'}")


def read_event_table(config, samples: dict[str, list[str]], max_events: int | None = None, spec=None):
    """Read jets of ``{sample: files}`` with the run's jet selection and every branch the builder (``spec``,
    default the jet builder of ``config``) needs.

    ``data.on_nonfinite``: an event with a NaN/inf jet input is dropped whole and counted (``drop``), or the
    file is refused naming branch and count (``error``).
    """
    d = config.data
    spec = spec or EventInputSpec.from_config(config)
    table = read_jets(samples, spec.branches, truth_branch=config.truth_branch, pt_min=d.selection.pt_min,
                      abs_eta_max=d.selection.abs_eta_max, tree=d.tree, step_size=d.step_size, max_events=max_events,
                      on_nonfinite=d.on_nonfinite, progress=False, collection=config.features.collection)
    return table.drop_nonfinite_events()
