"""Event inputs from L1 object groups (``features.objects``; issue 32): the Global Trigger's object words as the
event network's inputs.

The object implementation of the event-input interface (the jet one is
:class:`~qtrigger.inputs.event.EventInputSpec`; :func:`event_input_spec` picks one from the config). Per event the
seed firmware receives, beside the seed's jet slots (HT, jet count and preselection exactly as for the jet inputs),
one port word per ``features.objects`` word (:func:`qtrigger.inputs.objects.object_words`: the leading objects of
bunch crossing 0 by pT word, zero-padded; the named ``L1EtSum`` types). The network inputs (:meth:`program`):

- every pT and eta word as it is (eta 0 for an empty slot, i.e. pT word 0);
- every phi word as Delta-phi to the reference object (the first group's leading object) on the finer of the two
  phi grids: a calorimeter word (144 steps) is multiplied by 4 onto the muon grid (576 steps), exactly as the GT
  converts calorimeter phi for calo-muon correlations; wrapped into [-steps/2, steps/2); 0 for an empty slot;
- then the seed's HT word and its jet count, as for the jet inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qtrigger.config import FeatureFormat, FeaturesConfig
from qtrigger.data.objects import read_object_groups
from qtrigger.errors import QTriggerError
from qtrigger.inputs.codes import feature_code_range
from qtrigger.inputs.event import (
    LEPTON_LIKE_BRANCHES,
    EventInputs,
    EventInputSpec,
    lepton_like_events,
    read_event_table,
    seed_slots,
)
from qtrigger.inputs.event_ops import DeltaPhi, Gate, InputOp, program_codes
from qtrigger.inputs.objects import object_words
from qtrigger.inputs.seed_jets import JetWords, SeedJets, jet_words, min_jet_pt

SUMMARY_INPUTS = ("ht", "n_jets")


def event_input_spec(config):
    """The event-input builder of a RunConfig with ``features.level: event``: the L1 object groups when
    ``features.objects`` is set, else the leading jets."""
    if config.features.objects:
        return ObjectInputSpec.from_config(config)
    return EventInputSpec.from_config(config)


def phi_steps(name: str, fmt: FeatureFormat) -> int:
    """Steps per turn of a phi word (its LSB must be 2 pi / steps, unsigned); one-line error otherwise."""
    steps = round(2 * math.pi / fmt.lsb)
    if fmt.signed or steps < 2 or not math.isclose(steps * fmt.lsb, 2 * math.pi, rel_tol=1e-9):
        raise QTriggerError(f"key features.formats.{name}: an object phi word needs an unsigned LSB of 2 pi / steps "
                            f"(e.g. 2 pi / 144), got lsb {fmt.lsb:g}{' signed' if fmt.signed else ''}")
    return steps


@dataclass(frozen=True)
class ObjectInputSpec:
    """Object-group event inputs: ports (one per object word), the network program over them, the seed's words."""

    kind = "objects"

    features: FeaturesConfig
    port_names: tuple[str, ...]
    port_formats: tuple[FeatureFormat, ...]
    words: JetWords
    n_slots: int
    min_jet_pt_gev: float
    tree: str

    @classmethod
    def from_config(cls, config) -> "ObjectInputSpec":
        """From a RunConfig with ``features.level: event`` and ``features.objects``."""
        f, t = config.features, config.trigger
        names, formats = [], []
        for group in f.objects:
            for name in group.input_names():
                key, _, field = name.rpartition("_")
                fmt = f.object_format(group, field, key if group.is_sum else None)
                if field == "phi":
                    phi_steps(f"{key if group.is_sum else group.collection}_phi", fmt)
                names.append(name)
                formats.append(fmt)
        spec = cls(f, tuple(names), tuple(formats), jet_words(config), max(1, int(t.seed_jets)),
                   float(min_jet_pt(config)), config.data.tree)
        for port, name in enumerate(spec.port_names):  # phi grids without an exact common grid: one line now
            if name.endswith("_phi"):
                spec._grid(port)
        return spec

    # ------------------------------------------------------------------ names and words

    def input_name(self, port: str) -> str:
        """Network input name of a port word: phi becomes ``dphi`` (``L1Jet0_dphi``, ``MET_dphi``)."""
        return port[:-len("_phi")] + "_dphi" if port.endswith("_phi") else port

    @property
    def names(self) -> list[str]:
        """Input names in network order: one per port word (phi as Delta-phi), then ``ht`` and ``n_jets``."""
        return [self.input_name(p) for p in self.port_names] + list(SUMMARY_INPUTS)

    def _dphi_format(self, port: int) -> FeatureFormat:
        steps = self._grid(port)
        return FeatureFormat(lsb=2 * math.pi / steps, bits=(steps // 2).bit_length() + 1, signed=True)

    def _grid(self, port: int) -> int:
        """Steps of the common grid of port ``port``'s phi and the reference phi."""
        a, b = phi_steps(self.port_names[port], self.port_formats[port]), self._steps(self._reference[1])
        if max(a, b) % min(a, b):
            raise QTriggerError(f"features.objects: phi words of {a} and {b} steps ({self.port_names[port]}, "
                                f"{self.port_names[self._reference[1]]}) have no exact common grid")
        return max(a, b)

    def _steps(self, port: int) -> int:
        return phi_steps(self.port_names[port], self.port_formats[port])

    @property
    def _reference(self) -> tuple[int, int]:
        """(pT port, phi port) of the reference object: the first group's leading object."""
        return 0, next(p for p, n in enumerate(self.port_names) if n.endswith("_phi"))

    @property
    def input_formats(self) -> dict[str, FeatureFormat]:
        """Every input's word (LSB, bits, signedness)."""
        out = {self.input_name(n): (self._dphi_format(p) if n.endswith("_phi") else self.port_formats[p])
               for p, n in enumerate(self.port_names)}
        out["ht"] = FeatureFormat(lsb=self.words.pt_lsb_gev, bits=self.words.ht_bits, signed=False)
        out["n_jets"] = FeatureFormat(lsb=1.0, bits=max(1, int(self.n_slots).bit_length()), signed=False)
        return out

    @property
    def count_max(self) -> int:
        """Largest jet-count code."""
        return 2 ** self.input_formats["n_jets"].bits - 1

    @property
    def program(self) -> list[InputOp]:
        """The network inputs over the ports (:mod:`qtrigger.inputs.event_ops`), ``ht``/``n_jets`` excluded."""
        ref_pt, ref_phi = self._reference
        ops, pt_port = [], 0
        for p, name in enumerate(self.port_names):
            if name.endswith("_pt"):
                pt_port = p
            gate = Gate("word", pt_port)
            if not name.endswith("_phi"):
                ops.append(InputOp("port", p, gate))
                continue
            steps, fmt = self._grid(p), self._dphi_format(p)
            lo, hi = feature_code_range(fmt.bits, fmt.signed)
            ops.append(InputOp("port", p, gate, DeltaPhi(ref_phi, Gate("word", ref_pt), steps // self._steps(p),
                                                         steps // self._steps(ref_phi), steps // 2, lo, hi)))
        return ops

    @property
    def word_shape(self) -> tuple[int, ...]:
        """Shape of one event's words: the port words."""
        return (len(self.port_names),)

    def port_words(self, jets: SeedJets, words: np.ndarray) -> np.ndarray:
        """The port values of every event (the words as they are)."""
        return np.asarray(words, np.int64).reshape(len(words), -1)

    def features_config(self, shifts: dict[str, int] | None = None) -> FeaturesConfig:
        """A :class:`FeaturesConfig` over the inputs for the Preprocessor; of ``features.shifts`` only ``ht`` and
        ``n_jets`` apply (the object inputs' shifts are fitted)."""
        given = {k: int(v) for k, v in (shifts or {}).items() if k in SUMMARY_INPUTS}
        return FeaturesConfig(names=self.names, formats=self.input_formats, shifts=given or None)

    @property
    def branches(self) -> list[str]:
        """Jet branches read for the seed slots (and the lepton-like flag, from ``Jet``)."""
        return ["Jet_pt", *(LEPTON_LIKE_BRANCHES if self.features.collection == "Jet" else ())]

    def summary(self) -> dict:
        """What the inputs are, for the run's data summary."""
        return {"objects": [g.model_dump(exclude_none=True) for g in self.features.objects],
                "object_words": len(self.port_names)}

    # ------------------------------------------------------------------ building

    def read(self, config, samples: dict[str, list[str]], max_events: int | None = None):
        """The seed's jets of ``{sample: files}`` (:func:`~qtrigger.inputs.event.read_event_table`); the object words
        are read by :meth:`build` from the same files and entries."""
        return read_event_table(config, samples, max_events, self)

    def object_words_of(self, table) -> tuple[np.ndarray, np.ndarray]:
        """Port words of every event of ``table`` (read from its files at its entries) and which saturated."""
        words = np.zeros((table.n_events, len(self.port_names)), np.int64)
        clipped = np.zeros(words.shape, bool)
        for file_index in np.unique(table.event_file):
            rows = np.flatnonzero(table.event_file == file_index)
            entries = table.event_entry[rows]
            collections = read_object_groups(table.files[file_index], list(self.features.objects), self.tree,
                                             max_events=int(entries.max()) + 1)
            got = object_words(collections, self.features)
            words[rows], clipped[rows] = got.words[entries], got.clipped[entries]
        return words, clipped

    def codes(self, words: np.ndarray, jets: SeedJets) -> tuple[np.ndarray, np.ndarray]:
        """Network input codes from the port words and the seed slots, and which inputs saturated (Delta-phi)."""
        return program_codes(self.program, jets.pt, jets.valid, self.port_words(jets, words), jets.ht,
                             self.count_max)

    def build(self, table) -> EventInputs:
        """The event inputs of every event of ``table`` (events without objects: zero words)."""
        jets, _, _ = seed_slots(table, self)
        words, word_clipped = self.object_words_of(table)
        codes, clipped = self.codes(words, jets)
        clipped = clipped | word_clipped
        saturated = {}
        for i, op in enumerate(self.program):
            on = op.gate.on(jets.valid, words)
            saturated[self.names[i]] = float(clipped[on, i].mean()) if on.any() else 0.0
        n = table.n_events
        saturated["ht"] = float(np.mean(jets.ht >= self.words.ht_max_code)) if n else 0.0
        saturated["n_jets"] = float(np.mean(jets.valid.sum(axis=1) > self.count_max)) if n else 0.0
        return EventInputs(self.names, codes, jets, saturated, lepton_like_events(table), words)

    def random_words(self, rng: np.random.Generator, pt: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Random port words at the word limits: pT words 0 (empty) a fifth of the time, phi words on the whole
        turn and at the word's limits, eta words at and between their limits."""
        n = len(pt)
        out = np.zeros((n, len(self.port_names)), np.int64)
        for p, (name, fmt) in enumerate(zip(self.port_names, self.port_formats)):
            lo, hi = feature_code_range(fmt.bits, fmt.signed)
            if name.endswith("_phi"):
                lo, top = 0, self._steps(p) - 1
                edge = rng.choice(np.array([0, top, hi]), n)
                hi = top
            else:
                edge = np.where(rng.random(n) < 0.5, lo, hi)
            column = np.where(rng.random(n) < 0.3, edge, rng.integers(lo, hi + 1, n))
            if name.endswith("_pt"):
                column = np.where(rng.random(n) < 0.2, 0, column)
            out[:, p] = column
        return out
