"""Config sections of what a network reads: ``data`` (samples, selection, split), ``features`` (words, shifts,
input level) and ``labels``."""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from qtrigger.config.base import ANGLE_LSB, KNOWN_LEVELS, SEED_FEATURES, _registered, _Strict


class Sample(_Strict):
    """A named group of ROOT files (paths or globs)."""

    name: str
    files: list[str] = Field(min_length=1)
    role: Literal["signal", "background", "mixed"] = "mixed"


class Selection(_Strict):
    """Per-jet selection applied before anything else."""

    pt_min: float = 20.0
    abs_eta_max: float = 2.5


class Split(_Strict):
    """Fractions of *events* (never jets) for train/val/test, and the split seed."""

    train: float = Field(0.6, gt=0, lt=1)
    val: float = Field(0.2, gt=0, lt=1)
    test: float = Field(0.2, gt=0, lt=1)
    seed: int = 12345

    @model_validator(mode="after")
    def _sum_to_one(self):
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train+val+test must sum to 1, got {total:g}")
        return self


class DataConfig(_Strict):
    """Where the jets come from and how they are selected and split."""

    samples: list[Sample] = Field(min_length=1)
    tree: str = "Events"
    step_size: str | int = "50 MB"
    max_events: int | None = Field(None, gt=0)
    selection: Selection = Selection()
    split: Split = Split()
    on_nonfinite: Literal["drop", "error"] = "drop"

    @field_validator("samples")
    @classmethod
    def _unique_names(cls, samples):
        names = [s.name for s in samples]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"sample names must be unique; repeated: {repeated}")
        return samples


class FeatureFormat(_Strict):
    """The word a feature arrives in at the firmware: integer code = round(value / lsb)."""

    lsb: float = Field(gt=0)
    bits: int = Field(ge=1, le=32)
    signed: bool = False


DEFAULT_FORMATS: dict[str, FeatureFormat] = {
    "Jet_pt": FeatureFormat(lsb=0.25, bits=14, signed=False),
    "Jet_eta": FeatureFormat(lsb=ANGLE_LSB, bits=12, signed=True),
    "Jet_phi": FeatureFormat(lsb=ANGLE_LSB, bits=11, signed=True),
    "Jet_mass": FeatureFormat(lsb=0.25, bits=12, signed=False),
    "Jet_chHEF": FeatureFormat(lsb=2.0**-8, bits=9, signed=False),
    "Jet_neHEF": FeatureFormat(lsb=2.0**-8, bits=9, signed=False),
    "Jet_chEmEF": FeatureFormat(lsb=2.0**-8, bits=9, signed=False),
    "Jet_neEmEF": FeatureFormat(lsb=2.0**-8, bits=9, signed=False),
    "Jet_muEF": FeatureFormat(lsb=2.0**-8, bits=9, signed=False),
    "Jet_nConstituents": FeatureFormat(lsb=1.0, bits=8, signed=False),
    # generated track summaries (docs/generation.md): counts saturate at 31, significance at 63.75
    "Jet_nDispTrk": FeatureFormat(lsb=1.0, bits=5, signed=False),
    # lifetime-signed significances of prompt tracks (|d0| < 1 mm, clipped at 0): 50 at 20 um, saturate at 63.75
    "Jet_maxD0Sig": FeatureFormat(lsb=0.25, bits=8, signed=False),
    "Jet_d0Sig2": FeatureFormat(lsb=0.25, bits=8, signed=False),
    "Jet_d0Sig3": FeatureFormat(lsb=0.25, bits=8, signed=False),
    "Jet_dispTrkPt": FeatureFormat(lsb=0.25, bits=12, signed=False),
    # hardware words of an L1 collection (features.collection: L1Jet, L1EG, L1Mu, ...), used as they are: pT words
    # up to 4095 (0.5 GeV), eta words +-255 (calorimeter 0.0435, muons 0.010875), phi words 0..1023 (144 or 576 steps)
    "Jet_hwPt": FeatureFormat(lsb=1.0, bits=12, signed=False),
    "Jet_hwEta": FeatureFormat(lsb=1.0, bits=9, signed=True),
    "Jet_hwPhi": FeatureFormat(lsb=1.0, bits=10, signed=False),
    "Jet_hwQual": FeatureFormat(lsb=1.0, bits=4, signed=False),
    "Jet_hwIso": FeatureFormat(lsb=1.0, bits=2, signed=False),
}
# Words of a jet's constituents (qtrigger.inputs.constituent; features.level: constituent).
CONSTITUENT_FORMATS: dict[str, FeatureFormat] = {
    "pt": FeatureFormat(lsb=0.25, bits=10, signed=False),  # up to 255.75 GeV
    "deta": FeatureFormat(lsb=ANGLE_LSB, bits=9, signed=True),  # +-1.1
    "dphi": FeatureFormat(lsb=ANGLE_LSB, bits=9, signed=True),
    "charge": FeatureFormat(lsb=1.0, bits=2, signed=True),
    "class": FeatureFormat(lsb=1.0, bits=3, signed=False),
    "d0": FeatureFormat(lsb=5e-4, bits=12, signed=True),  # 5 um LSB, +-1.02 cm
    "dz": FeatureFormat(lsb=0.01, bits=12, signed=True),  # 100 um LSB, +-20.5 cm
}


COLLECTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")  # a NanoAOD collection: <name>_<field>, n<name>
# The Global Trigger's input words (issue 32; docs/preprocessing.md): pT 0.5 GeV; calorimeter objects eta 0.0435 and
# phi 2 pi / 144; muons eta 0.010875 and phi 2 pi / 576 (the uGMT's pT word is pT / 0.5 + 1: 0 is an empty slot).
CALO_OBJECT_FORMATS: dict[str, FeatureFormat] = {
    "pt": FeatureFormat(lsb=0.5, bits=11, signed=False),
    "eta": FeatureFormat(lsb=0.0435, bits=8, signed=True),
    "phi": FeatureFormat(lsb=2 * math.pi / 144, bits=8, signed=False),
}
MUON_OBJECT_FORMATS: dict[str, FeatureFormat] = {
    "pt": FeatureFormat(lsb=0.5, bits=9, signed=False),
    "eta": FeatureFormat(lsb=0.010875, bits=9, signed=True),
    "phi": FeatureFormat(lsb=2 * math.pi / 576, bits=10, signed=False),
}
SUM_FORMATS: dict[str, FeatureFormat] = {
    "pt": FeatureFormat(lsb=0.5, bits=12, signed=False),
    "phi": FeatureFormat(lsb=2 * math.pi / 144, bits=8, signed=False),
}
# Extra per-object words (an object group's ``fields``) with a documented default: the L1 NanoAOD's integer words.
OBJECT_WORD_FORMATS: dict[str, FeatureFormat] = {
    "hwIso": FeatureFormat(lsb=1.0, bits=2, signed=False),  # e/gamma: loose (bit 0), tight (bit 1); tau: 1 bit
    "hwQual": FeatureFormat(lsb=1.0, bits=4, signed=False),  # muons: 12 single-muon quality, 8 double-muon
}
OBJECT_KINEMATICS = ("pt", "eta", "phi")  # the words every object slot has
MUON_COLLECTIONS = ("L1Mu",)  # muon-scale collections (others use the calorimeter scale)
MAX_OBJECT_SLOTS = 32


class ObjectGroup(_Strict):
    """One group of event-level inputs (``features.objects``): the ``n`` leading objects (by pT) of ``collection``
    (pT, eta, phi words per slot, then one word per name in ``fields``: ``<collection>_<field>`` branches such as
    ``hwIso`` or, for ``Jet``, ``mass``), or, with ``types``, named sums of an ``L1EtSum``-like collection
    (name -> ``etSumType``; pT and phi words each)."""

    collection: str
    n: int | None = None
    types: dict[str, int] | None = None
    fields: list[str] = Field(default_factory=list)  # extra words per slot (formats: features.formats or defaults)
    pt_min: float | None = Field(None, ge=0)  # GeV: objects below it do not fill slots (None: all)
    abs_eta_max: float | None = Field(None, gt=0)  # objects with |eta| above it do not fill slots (None: all)

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, collection: str) -> str:
        if not COLLECTION_NAME.match(collection):
            raise ValueError(f"{collection!r} is not a NanoAOD collection name (letters and digits, e.g. L1Jet)")
        return collection

    @model_validator(mode="after")
    def _slots_or_types(self):
        if (self.n is None) == (self.types is None):
            raise ValueError(f"{self.collection}: give n (the leading objects) or types (sums by etSumType), "
                             "not both or neither")
        if self.n is not None and not 1 <= self.n <= MAX_OBJECT_SLOTS:
            raise ValueError(f"{self.collection}: n: {self.n} is not a number of slots in 1..{MAX_OBJECT_SLOTS}")
        if self.types is not None:
            if not self.types:
                raise ValueError(f"{self.collection}: types is empty; e.g. types: {{MET: 2}}")
            bad = {k: v for k, v in self.types.items() if not COLLECTION_NAME.match(k) or v < 0}
            if bad:
                raise ValueError(f"{self.collection}: types {bad}: names are letters and digits, etSumType >= 0")
        if self.is_sum and (self.fields or self.pt_min is not None or self.abs_eta_max is not None):
            raise ValueError(f"{self.collection}: fields, pt_min and abs_eta_max apply to object slots; a sum group "
                             "(types) has pT and phi only")
        bad = [f for f in self.fields if f in OBJECT_KINEMATICS or not COLLECTION_NAME.match(f)]
        if bad or len(set(self.fields)) != len(self.fields):
            raise ValueError(f"{self.collection}: fields {bad or self.fields} must be distinct branch fields other "
                             f"than {', '.join(OBJECT_KINEMATICS)} (every slot has those), e.g. fields: [hwIso]")
        return self

    @model_serializer(mode="wrap")
    def _without_empty_fields(self, handler):
        """Groups without extra fields dump as before, so resolved configs and scan trial hashes keep their bytes."""
        data = handler(self)
        for key in ("fields", "pt_min", "abs_eta_max"):
            if data.get(key) in (None, []):
                data.pop(key, None)
        return data

    @property
    def is_sum(self) -> bool:
        return self.types is not None

    def input_names(self) -> list[str]:
        """Input names: ``<collection><slot>_{pt,eta,phi,<fields>}`` per slot, or ``<type>_{pt,phi}`` per sum."""
        if self.is_sum:
            return [f"{name}_{field}" for name in self.types for field in SUM_FORMATS]
        return [f"{self.collection}{slot}_{field}" for slot in range(self.n) for field in self.slot_fields]

    @property
    def slot_fields(self) -> list[str]:
        """The words of one object slot: pT, eta, phi, then ``fields``."""
        return [*OBJECT_KINEMATICS, *self.fields]

    def default_format(self, field: str) -> FeatureFormat | None:
        """The GT word of ``field`` for this group; for an extra field, :data:`OBJECT_WORD_FORMATS` or (``Jet``
        groups) the per-jet default ``Jet_<field>``, else None (the config must give it)."""
        if self.is_sum:
            return SUM_FORMATS[field]
        if field in OBJECT_KINEMATICS:
            return (MUON_OBJECT_FORMATS if self.collection in MUON_COLLECTIONS else CALO_OBJECT_FORMATS)[field]
        if self.collection == "Jet" and f"Jet_{field}" in DEFAULT_FORMATS:
            return DEFAULT_FORMATS[f"Jet_{field}"]
        return OBJECT_WORD_FORMATS.get(field)
EVENT_SUMMARY_INPUTS = ("ht", "n_jets")  # event inputs that are no jet slot's (qtrigger.inputs.event)
EVENT_SLOT_INPUT = re.compile(r"^j\d+_\w+$")  # a jet slot's event input name: j0_pt, j2_dphi, ...
MAX_SHIFT = 24  # a larger power-of-two shift would push every code below the input type's resolution


class FeaturesConfig(_Strict):
    """Input features and their fixed-point words; shifts are fitted unless given.

    ``collection`` (default ``Jet``): the NanoAOD collection the per-jet names ``Jet_<field>`` are read from, as
    ``<collection>_<field>`` (e.g. ``L1Jet``: ``Jet_pt`` is read from ``L1Jet_pt``; objects of ``bx != 0`` are
    skipped); ``labels.branch`` is read from it too, unless ``labels.source: sample``.
    ``level: jet`` (default): one network input row per jet, the ``names`` features.
    ``level: event``: one row per event (:mod:`qtrigger.inputs.event`): the leading
    ``event_jets`` seed jets, each with the ``names`` features (``Jet_pt`` is the seed's pT
    word, ``Jet_phi`` becomes the Delta-phi to the leading jet), then HT and the jet count.
    ``level: constituent``: one (constituents, features) array per jet for a ``model.form:
    deepsets`` network; ``names`` are constituent fields (:data:`CONSTITUENT_FORMATS`: pt, deta,
    dphi, charge, class, d0, dz), read by :mod:`qtrigger.inputs.constituent` from ``JetCand_*``.
    """

    names: list[str] = Field(default_factory=lambda: list(SEED_FEATURES), min_length=1)
    collection: str = "Jet"  # the NanoAOD collection the per-jet names Jet_<field> are read from
    formats: dict[str, FeatureFormat] = Field(default_factory=dict)
    level: str = "jet"  # before shifts: their validator reads it
    # value = code * 2**-shift; level event: per jet branch (every jet slot's input of it), ht, n_jets
    shifts: dict[str, int] | None = None
    saturation_intended: list[str] = Field(default_factory=list)  # features allowed to saturate > 10 % of jets
    event_jets: int = Field(6, ge=1, le=32)
    objects: list[ObjectGroup] | None = None  # event-level object groups (issue 32; qtrigger.inputs.object_event)

    @field_validator("level")
    @classmethod
    def _registered_level(cls, level: str) -> str:
        return _registered(level, KNOWN_LEVELS, "input level")

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, collection: str) -> str:
        if not COLLECTION_NAME.match(collection):
            raise ValueError(f"{collection!r} is not a NanoAOD collection name (letters and digits, e.g. Jet, L1Jet)")
        return collection

    @model_validator(mode="after")
    def _names_of_the_per_jet_level(self):
        if self.collection == "Jet":
            return self
        if self.level == "constituent":
            raise ValueError(f"features.collection {self.collection}: the constituent level reads JetCand_* of Jet")
        prefixed = [n for n in self.names if n.startswith(f"{self.collection}_")]
        if prefixed:
            fixed = ", ".join("Jet_" + n[len(self.collection) + 1:] for n in prefixed)
            raise ValueError(f"features.names {prefixed}: name the per-jet inputs Jet_<field> ({fixed}); "
                             f"features.collection {self.collection} reads them from {self.collection}_<field>")
        return self

    @model_serializer(mode="wrap")
    def _without_default_collection(self, handler):
        """With the default collection and no object groups the section dumps as before, so resolved configs and
        scan trial hashes keep their bytes."""
        data = handler(self)
        if self.collection == "Jet":
            data.pop("collection", None)
        if self.objects is None:
            data.pop("objects", None)
        return data

    @field_validator("objects")
    @classmethod
    def _one_group_per_collection(cls, objects):
        names = [g.collection for g in objects or []]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"features.objects lists {repeated} more than once; one group per collection")
        if objects is not None and not objects:
            raise ValueError("features.objects is empty; omit it or list object groups")
        return objects

    @model_validator(mode="after")
    def _every_object_field_has_a_format(self):
        for group in self.objects or []:
            missing = [f for f in group.fields
                       if f"{group.collection}_{f}" not in self.formats and group.default_format(f) is None]
            if missing:
                key = f"{group.collection}_{missing[0]}"
                raise ValueError(f"features.objects {group.collection}: field {missing[0]} has no fixed-point word; "
                                 f"add features.formats.{key}: {{lsb, bits, signed}}")
        return self

    def object_format(self, group: ObjectGroup, field: str, sum_name: str | None = None) -> FeatureFormat:
        """A group's word for ``field``: ``features.formats.<collection>_<field>`` (``<sum name>_<field>`` for a
        sum) if given, else the Global Trigger's (:data:`CALO_OBJECT_FORMATS`, :data:`MUON_OBJECT_FORMATS`,
        :data:`SUM_FORMATS`)."""
        return self.formats.get(f"{sum_name or group.collection}_{field}") or group.default_format(field)

    @model_validator(mode="after")
    def _event_kinematics(self):
        if self.level == "event":
            missing = [n for n in ("Jet_pt", "Jet_eta", "Jet_phi") if n not in self.names]
            if missing:
                raise ValueError(f"level event needs {missing} in features.names (pT, eta, Delta-phi per jet slot)")
        return self

    @model_validator(mode="after")
    def _constituent_fields(self):
        if self.level == "constituent":
            unknown = [n for n in self.names if n not in CONSTITUENT_FORMATS]
            if unknown:
                raise ValueError(f"level constituent: {unknown} are not constituent fields; expected names from "
                                 f"{list(CONSTITUENT_FORMATS)}")
        return self

    @model_validator(mode="after")
    def _every_feature_has_a_format(self):
        defaults = CONSTITUENT_FORMATS if self.level == "constituent" else DEFAULT_FORMATS
        missing = [n for n in self.names if n not in self.formats and n not in defaults]
        if missing:
            raise ValueError(f"no fixed-point format for {missing}; add features.formats.<name>: {{lsb, bits, signed}}")
        if len(set(self.names)) != len(self.names):
            raise ValueError("feature names must be unique")
        return self

    @field_validator("shifts", "saturation_intended")
    @classmethod
    def _shifts_name_input_features(cls, shifts, info):
        names = info.data.get("names", [])
        event = info.data.get("level") == "event" and info.field_name == "shifts"
        allowed = [*names, *EVENT_SUMMARY_INPUTS] if event else names
        unknown = [n for n in shifts or {} if n not in allowed]
        slot_names = [n for n in unknown if EVENT_SLOT_INPUT.match(n)]
        if event and slot_names:
            raise ValueError(f"{slot_names[0]} is an event input name; with features.level event a shift is set per "
                             f"jet branch and applies to every jet slot (e.g. Jet_pt: 3 for j0_pt, j1_pt, ...), or for "
                             f"{' and '.join(EVENT_SUMMARY_INPUTS)} (features.names: {', '.join(names)})")
        if unknown:
            raise ValueError(f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not an input feature "
                             f"(features.names: {', '.join(names)}{', ht, n_jets' if event else ''})")
        return shifts

    @field_validator("shifts")
    @classmethod
    def _shifts_in_range(cls, shifts):
        bad = {n: s for n, s in (shifts or {}).items() if not 0 <= s <= MAX_SHIFT}
        if bad:
            name, value = next(iter(bad.items()))
            raise ValueError(f"{name}: {value} is not a shift in 0..{MAX_SHIFT} (value = code * 2**-shift)")
        return shifts

    @property
    def jet_branches(self) -> list[str]:
        """The per-jet branches a run reads as features (a constituent run reads ``JetCand_*`` instead)."""
        return [] if self.level == "constituent" else list(self.names)

    def format_of(self, name: str) -> FeatureFormat:
        """The configured format of a feature, else its documented default."""
        defaults = CONSTITUENT_FORMATS if self.level == "constituent" else DEFAULT_FORMATS
        return self.formats.get(name) or defaults[name]


class ScoreConfig(_Strict):
    """Multi-class trigger score: logit[plus] (- logit[minus])."""

    plus: str
    minus: str | None = None


class LabelsConfig(_Strict):
    """Truth labels from a per-jet integer branch."""

    mode: Literal["binary", "multiclass"] = "binary"
    source: Literal["truth", "sample"] = "truth"
    branch: str = "Jet_hadronFlavour"
    signal: list[int] = Field(default_factory=lambda: [5])
    classes: dict[str, list[int]] | None = None
    score: ScoreConfig | None = None

    @model_validator(mode="after")
    def _sample_labels_binary(self):
        if self.source == "sample" and self.mode != "binary":
            raise ValueError("labels.source: sample (jets of signal-role samples are signal) needs mode: binary")
        return self

    @model_validator(mode="after")
    def _multiclass_complete(self):
        if self.mode == "multiclass":
            if not self.classes or len(self.classes) < 2:
                raise ValueError("multiclass needs labels.classes with at least two classes")
            if self.score is None:
                raise ValueError("multiclass needs labels.score.plus (and optionally .minus): no softmax in firmware")
            for key in (self.score.plus, self.score.minus):
                if key is not None and key not in self.classes:
                    raise ValueError(f"labels.score names class {key!r}, not in labels.classes {list(self.classes)}")
        return self

    def signal_mask(self, labels):
        """Which jets count as signal (ROC, efficiencies, trigger): binary 1, else the score's ``plus`` class."""
        import numpy as np

        labels = np.asarray(labels)
        if self.mode == "binary":
            return labels == 1
        return labels == self.class_names.index(self.score.plus)

    @property
    def class_names(self) -> list[str]:
        """Names of the output classes in output order."""
        if self.mode == "binary":
            return ["signal"]
        return list(self.classes)
