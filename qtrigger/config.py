"""Run configuration: YAML files in ``configs/`` validated into one :class:`RunConfig`.

Every key is validated once, here: unknown keys, wrong types, malformed fixed-point
strings, unsafe names and missing input files become a one-line :class:`QTriggerError`
naming the key. ``--set a.b=value`` overrides go through the same validation.
"""

from __future__ import annotations

import glob
import math
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from qtrigger.device import DEFAULT_PART
from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import parse_fixed
from qtrigger.rundir import NAME_PATTERN, NAME_RULE

SEED_FEATURES = [
    "Jet_pt",
    "Jet_eta",
    "Jet_phi",
    "Jet_mass",
    "Jet_chHEF",
    "Jet_neHEF",
    "Jet_chEmEF",
    "Jet_neEmEF",
    "Jet_muEF",
    "Jet_nConstituents",
]

ANGLE_LSB = math.pi / 720  # CMS Phase-2 correlator-layer eta/phi LSB


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


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
}
# Words of a jet's constituents (qtrigger.constituents; features.level: constituent).
CONSTITUENT_FORMATS: dict[str, FeatureFormat] = {
    "pt": FeatureFormat(lsb=0.25, bits=10, signed=False),  # up to 255.75 GeV
    "deta": FeatureFormat(lsb=ANGLE_LSB, bits=9, signed=True),  # +-1.1
    "dphi": FeatureFormat(lsb=ANGLE_LSB, bits=9, signed=True),
    "charge": FeatureFormat(lsb=1.0, bits=2, signed=True),
    "class": FeatureFormat(lsb=1.0, bits=3, signed=False),
    "d0": FeatureFormat(lsb=5e-4, bits=12, signed=True),  # 5 um LSB, +-1.02 cm
    "dz": FeatureFormat(lsb=0.01, bits=12, signed=True),  # 100 um LSB, +-20.5 cm
}


EVENT_SUMMARY_INPUTS = ("ht", "n_jets")  # event inputs that are no jet slot's (qtrigger.event_inputs)
EVENT_SLOT_INPUT = re.compile(r"^j\d+_\w+$")  # a jet slot's event input name: j0_pt, j2_dphi, ...
MAX_SHIFT = 24  # a larger power-of-two shift would push every code below the input type's resolution


class FeaturesConfig(_Strict):
    """Input features and their fixed-point words; shifts are fitted unless given.

    ``level: jet`` (default): one network input row per jet, the ``names`` features.
    ``level: event``: one row per event (:mod:`qtrigger.event_inputs`): the leading
    ``event_jets`` seed jets, each with the ``names`` features (``Jet_pt`` is the seed's pT
    word, ``Jet_phi`` becomes the Delta-phi to the leading jet), then HT and the jet count.
    ``level: constituent``: one (constituents, features) array per jet for a ``model.form:
    deepsets`` network; ``names`` are constituent fields (:data:`CONSTITUENT_FORMATS`: pt, deta,
    dphi, charge, class, d0, dz), read by :mod:`qtrigger.constituents` from ``JetCand_*``.
    """

    names: list[str] = Field(default_factory=lambda: list(SEED_FEATURES), min_length=1)
    formats: dict[str, FeatureFormat] = Field(default_factory=dict)
    level: Literal["jet", "event", "constituent"] = "jet"  # before shifts: their validator reads it
    # value = code * 2**-shift; level event: per jet branch (every jet slot's input of it), ht, n_jets
    shifts: dict[str, int] | None = None
    saturation_intended: list[str] = Field(default_factory=list)  # features allowed to saturate > 10 % of jets
    event_jets: int = Field(6, ge=1, le=32)

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


class ModelConfig(_Strict):
    """The dense network: hidden widths, dropout and batch normalization.

    ``batchnorm: true`` puts batch normalization after every hidden Dense. In the QAT model
    it is folded into the quantized weights during training (``qtrigger.batchnorm``): the
    moving statistics are updated, with batch-statistics correction, for the first
    ``batchnorm_freeze_step`` training steps and frozen afterwards (``null``: at the
    first fully pruned epoch, or half the epochs without pruning); early stopping only
    restores frozen epochs. The export fails when a layer's quantizers clip more than
    ``batchnorm_max_clipped`` of its folded weights or biases. The float twin uses
    ordinary BatchNormalization.

    ``form: deepsets`` is a constituent network on (``constituents``, features) inputs:
    bias-free ``phi`` Dense layers shared by every constituent (so zero-padded slots stay 0),
    a ``pooling`` over the constituents (``mean`` = sum / constituents, a power of two; or
    ``max``), then ``rho`` hidden Dense layers and the output (``hidden`` is not used).
    ``batchnorm`` folds into the ``rho`` layers only (a folded bias in phi would make padded slots nonzero).
    """

    form: Literal["mlp", "deepsets"] = "mlp"
    hidden: list[int] = Field(default_factory=lambda: [32, 16], min_length=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    batchnorm: bool = False
    batchnorm_freeze_step: int | None = Field(None, ge=1)
    batchnorm_max_clipped: float = Field(0.05, ge=0, le=1)
    # form: deepsets (a constituent network): bias-free φ layers per constituent, pooling, ρ head
    phi: list[int] = Field(default_factory=lambda: [16, 16], min_length=1)
    rho: list[int] = Field(default_factory=lambda: [16])
    pooling: Literal["mean", "max"] = "mean"
    constituents: int = Field(16, ge=1, le=256)

    @field_validator("hidden", "phi", "rho")
    @classmethod
    def _positive(cls, widths):
        if any(w < 1 for w in widths):
            raise ValueError("every hidden width must be >= 1")
        return widths

    @model_validator(mode="after")
    def _freeze_needs_batchnorm(self):
        if self.batchnorm_freeze_step is not None and not self.batchnorm:
            raise ValueError("batchnorm_freeze_step is set but batchnorm is false")
        return self

    @model_validator(mode="after")
    def _deepsets(self):
        if self.form != "deepsets":
            return self
        if self.batchnorm and not self.rho:
            raise ValueError("form deepsets: batchnorm folds into the rho layers (phi stays bias-free so padded "
                             "slots stay 0); give model.rho at least one layer")
        if self.pooling == "mean" and self.constituents & (self.constituents - 1):
            raise ValueError(f"form deepsets: mean pooling needs constituents a power of two (got {self.constituents})")
        return self

    @property
    def dense_widths(self) -> list[int]:
        """Widths of the hidden Dense layers in model order (φ then ρ for deepsets), without the output."""
        return self.phi + self.rho if self.form == "deepsets" else self.hidden


QUANT_KEYS = ("weight_bits", "weight_integer", "bias_bits", "bias_integer", "activation_bits", "activation_integer")


def _check_integer_bits(q, where: str = "") -> None:
    """Integer bits must leave room for the sign (weights, biases) and fit the width (activations)."""
    for kind in ("weight", "bias"):
        if getattr(q, f"{kind}_integer") > getattr(q, f"{kind}_bits") - 1:
            raise ValueError(f"{where}{kind}_integer must be <= {kind}_bits - 1 (one bit is the sign)")
    if q.activation_integer > q.activation_bits:
        raise ValueError(f"{where}activation_integer must be <= activation_bits")


class LayerQuantization(_Strict):
    """One Dense layer's quantizers; a key left out takes the global ``quantization`` setting.

    The output layer has no activation: its ``activation_*`` keys are not used.
    """

    weight_bits: int | None = Field(None, ge=2, le=16)
    weight_integer: int | None = Field(None, ge=0, le=6)
    bias_bits: int | None = Field(None, ge=2, le=16)
    bias_integer: int | None = Field(None, ge=0, le=6)
    activation_bits: int | None = Field(None, ge=2, le=16)
    activation_integer: int | None = Field(None, ge=0, le=8)


class QuantizationConfig(_Strict):
    """QKeras quantizers: quantized_bits(bits, integer, alpha=1) and quantized_relu(bits, integer).

    The six global settings apply to every Dense layer; ``layers`` (optional, one entry per
    Dense layer: the ``model.hidden`` layers, or ``model.phi`` then ``model.rho`` for deepsets, then the
    output) overrides them per layer.
    """

    enabled: bool = True
    weight_bits: int = Field(6, ge=2, le=16)
    weight_integer: int = Field(0, ge=0, le=6)
    bias_bits: int = Field(6, ge=2, le=16)
    bias_integer: int = Field(0, ge=0, le=6)
    activation_bits: int = Field(6, ge=2, le=16)
    activation_integer: int = Field(2, ge=0, le=8)
    layers: list[LayerQuantization] | None = None

    @model_validator(mode="after")
    def _integer_fits(self):
        _check_integer_bits(self)
        for index in range(len(self.layers or [])):
            _check_integer_bits(self.layer(index), f"layers.{index}: ")
        return self

    def layer(self, index: int) -> "QuantizationConfig":
        """The settings of Dense layer ``index`` (hidden layers 0.., then the output): global + per-layer keys."""
        own = self.layers[index].model_dump(exclude_none=True) if self.layers and index < len(self.layers) else {}
        return QuantizationConfig.model_construct(**{k: own.get(k, getattr(self, k)) for k in QUANT_KEYS},
                                                  enabled=self.enabled, layers=None)

    @property
    def mixed(self) -> bool:
        """Whether any layer differs from the global settings."""
        return any(layer.model_dump(exclude_none=True) for layer in self.layers or [])


class PruningConfig(_Strict):
    """tensorflow-model-optimization magnitude pruning with a polynomial-decay schedule."""

    enabled: bool = True
    target_sparsity: float = Field(0.5, ge=0, lt=1)
    begin_fraction: float = Field(0.1, ge=0, lt=1)
    end_fraction: float = Field(0.7, gt=0, le=1)
    frequency: int = Field(50, ge=1)
    layers: list[float] | None = None  # per Dense layer (hidden layers, then the output): its final sparsity

    @field_validator("layers")
    @classmethod
    def _sparsities(cls, values):
        if values is not None and any(not 0 <= v < 1 for v in values):
            raise ValueError(f"every per-layer sparsity must be in [0, 1) (got {values})")
        return values

    def sparsity(self, index: int) -> float:
        """Final sparsity of Dense layer ``index`` (hidden layers 0.., then the output)."""
        return self.layers[index] if self.layers is not None else self.target_sparsity

    @property
    def active(self) -> bool:
        """Whether any layer is pruned."""
        return self.enabled and any(self.sparsity(i) > 0 for i in range(len(self.layers or [None])))


class TrainingConfig(_Strict):
    """Keras fit settings; the float twin is trained with the same settings."""

    epochs: int = Field(40, ge=1)
    batch_size: int = Field(512, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    early_stopping_patience: int = Field(6, ge=1)
    lr_patience: int = Field(3, ge=1)
    lr_factor: float = Field(0.5, gt=0, lt=1)
    class_weight: Literal["balanced", "none"] = "balanced"
    reweight_pt_eta: bool = False
    # gen_weight: genWeight normalised per sample (per-jet runs); xsec: absolute stitched cross-section
    # weights for background samples with pTHat bins (qtrigger.samples), genWeight for signal (event runs)
    event_weights: Literal["none", "gen_weight", "xsec"] = "none"
    seed: int = 1
    threads: int = Field(2, ge=1)
    float_twin: bool = True
    # float_twin: train the float model first and start QAT from its trained weights (QAT fine-tuning);
    # random (default): QAT starts from the seeded initialisation, like the float twin
    qat_init: Literal["random", "float_twin"] = "random"
    verbose: bool = True


class Preselection(_Strict):
    """A fixed seed of the ``ht`` family: HT >= ``ht_gev`` and >= ``min_jets`` jets with pT >= ``jet_pt_gev``.

    Applied identically to the training, validation, test, calibration and held-out events of an
    event-level run; the ``event_network`` seed is "preselection and event score >= t".
    """

    ht_gev: float = Field(0.0, ge=0)
    min_jets: int = Field(0, ge=0, le=32)
    jet_pt_gev: float | None = Field(None, ge=0)


class TriggerConfig(_Strict):
    """The L1 seed: event-level decision, rate sample and normalisation, target rates, seed families.

    ``background_efficiency`` is the per-jet working point used for classifier metrics; the
    trigger working points are seeds tuned to ``target_rate_hz`` (and each of
    ``extra_rates_hz``) on the calibration half of the rate sample and quoted on the other
    half. The rate sample is ``rate_files`` when given (a background used for rates only,
    never for training; every event is used), else the test events of the role-background
    samples. See :mod:`qtrigger.trigger` for the definitions.
    """

    background_efficiency: float = Field(0.01, gt=0, lt=1)
    enabled: bool = True
    target_rate_hz: float = Field(100e3, gt=0)
    extra_rates_hz: list[float] = Field(default_factory=lambda: [30e3, 10e3])
    normalisation: Literal["cross_section", "zero_bias"] = "cross_section"
    lumi_cm2s: float = Field(2e34, gt=0)
    n_bunches: int = Field(2748, ge=1)
    min_jets: int = Field(1, ge=1)
    min_jet_pt: float | None = None
    score: Literal["csim", "qat", "float"] = "csim"
    bdt: bool = True
    rate_files: list[str] | None = None
    rate_split_seed: int = 2718
    families: list[Literal["jets_tagged", "ht_tagged", "ht_ntag", "event_network", "jets", "ht"]] = Field(
        default_factory=lambda: ["jets_tagged", "ht_tagged", "jets", "ht"])
    preselection: Preselection | None = None
    seed_jets: int = Field(8, ge=1, le=32)
    pt_lsb_gev: float = Field(0.25, gt=0)
    pt_bits: int = Field(16, ge=4, le=30)
    ht_bits: int = Field(16, ge=4, le=30)
    ht_jet_pt: float = Field(30.0, ge=0)
    grid_pt_step: float = Field(5.0, gt=0)
    grid_jet_pt_max: float = Field(150.0, gt=0)
    grid_ht_jet_pt_max: float = Field(80.0, gt=0)
    grid_score_steps: int = Field(64, ge=2, le=4096)
    # ht_ntag's tag grid: the score codes keeping these fractions of the reference jets (signal-labelled
    # jets in the scored slots of the selection events; the loosest default keeps >= 95 %)
    grid_tag_efficiencies: list[float] = Field(default_factory=lambda: [round(0.95 - 0.05 * i, 2) for i in range(19)])
    offline_min_jets: int = Field(4, ge=0)
    offline_jet_pt: float = Field(30.0, ge=0)
    bias_factor: float = Field(1.5, ge=1)
    bias_fraction_max: float = Field(0.01, ge=0, le=1)
    # a quoted rate with nothing fired or fewer effective fired events is unresolved: a 68 % CL upper limit
    min_n_eff: float = Field(10.0, gt=0)

    @field_validator("grid_tag_efficiencies")
    @classmethod
    def _fractions(cls, values):
        if not values or any(not 0 < v <= 1 for v in values):
            raise ValueError("every tag-grid efficiency must lie in (0, 1], and at least one is needed")
        return values

    @field_validator("extra_rates_hz")
    @classmethod
    def _positive_rates(cls, rates):
        if any(not r > 0 for r in rates):
            raise ValueError("every extra rate must be > 0 Hz")
        return rates

    @model_validator(mode="after")
    def _rate_files_need_a_network_score(self):
        if self.rate_files is not None and not self.rate_files:
            raise ValueError("rate_files is empty: give files or leave it unset")
        if self.rate_files and self.score == "float":
            raise ValueError("rate_files needs score csim or qat (the float twin is not applied to the rate sample)")
        if not self.families or not set(self.families) & {"jets_tagged", "ht_tagged", "ht_ntag", "event_network"}:
            raise ValueError("families needs at least one network family (jets_tagged, ht_tagged, ht_ntag or "
                             "event_network)")
        return self


class HLSConfig(_Strict):
    """hls4ml conversion, C-simulation and hardware settings."""

    backend: Literal["Vivado", "Vitis"] = "Vivado"
    part: str = DEFAULT_PART
    clock_period_ns: float = Field(5.0, gt=0)
    io_type: Literal["io_parallel"] = "io_parallel"
    strategy: Literal["latency", "distributed_arithmetic"] = "latency"
    reuse_factor: int = Field(1, ge=1)
    output_dir: str = "hls_projects"
    csim: bool = True
    testbench_jets: int = Field(200, ge=1)
    default_precision: str = "ap_fixed<16,6>"
    jets_per_event: int = Field(4, ge=1)
    instance_mode: Literal["parallel", "multiplexed"] = "parallel"
    time_multiplexing: int = Field(1, ge=1)
    latency_budget_ns: float = Field(100.0, gt=0)
    resource_budget: dict[Literal["lut", "ff", "dsp", "bram"], int] | None = None
    # da4ml Verilog of the network: Verilator latency/II and RTL = model check, yosys cell counts.
    # auto: on with strategy distributed_arithmetic. Synthesis is skipped (with a note) without yosys.
    rtl: Literal["auto", "on", "off"] = "auto"
    rtl_synthesis: bool = True

    @property
    def rtl_enabled(self) -> bool:
        """Whether the run builds and measures the da4ml RTL."""
        return self.rtl == "on" or (self.rtl == "auto" and self.strategy == "distributed_arithmetic")

    @model_validator(mode="after")
    def _da_reuse(self):
        if self.strategy == "distributed_arithmetic" and self.reuse_factor != 1:
            raise ValueError("distributed_arithmetic needs reuse_factor 1")
        return self

    @field_validator("default_precision")
    @classmethod
    def _fixed(cls, text):
        parse_fixed(text)
        return text


class RunConfig(_Strict):
    """One run: data → features → labels → model/quantization/pruning → training → trigger → hls."""

    name: str | None = None
    output_dir: str = "runs"
    data: DataConfig
    features: FeaturesConfig = FeaturesConfig()
    labels: LabelsConfig = LabelsConfig()
    model: ModelConfig = ModelConfig()
    quantization: QuantizationConfig = QuantizationConfig()
    pruning: PruningConfig = PruningConfig()
    training: TrainingConfig = TrainingConfig()
    trigger: TriggerConfig = TriggerConfig()
    hls: HLSConfig = HLSConfig()

    @field_validator("name")
    @classmethod
    def _single_component(cls, name):
        if name is not None and not NAME_PATTERN.match(name):
            raise ValueError(f"must be {NAME_RULE}")
        return name

    @model_validator(mode="after")
    def _level_matches_families(self):
        event = self.features.level == "event"
        per_jet = [f for f in self.trigger.families if f in ("jets_tagged", "ht_tagged", "ht_ntag")]
        if event and self.trigger.enabled and (per_jet or "event_network" not in self.trigger.families):
            raise ValueError("features.level event: trigger.families must list event_network (and kinematic "
                             f"jets/ht), not the per-jet families {per_jet}; e.g. [event_network, jets, ht]")
        if not event and "event_network" in self.trigger.families:
            raise ValueError("trigger.families event_network needs features.level: event")
        if not event and self.trigger.preselection is not None:
            raise ValueError("trigger.preselection is used by event-level runs only (features.level: event)")
        if self.training.event_weights == "xsec" and not event:
            raise ValueError("training.event_weights xsec is for event-level runs; per-jet runs use gen_weight")
        return self

    @model_validator(mode="after")
    def _constituent_level_is_deepsets(self):
        constituent = self.features.level == "constituent"
        if constituent != (self.model.form == "deepsets"):
            raise ValueError("model.form deepsets and features.level constituent go together (a constituent "
                             f"network reads (constituents, fields) per jet); got form {self.model.form}, "
                             f"level {self.features.level}")
        if constituent and self.hls.rtl_enabled:
            raise ValueError("features.level constituent: the da4ml RTL stage does not build pooling layers; "
                             "set hls.rtl: off (hls4ml C-simulation checks the firmware)")
        return self

    @model_validator(mode="after")
    def _qat_init_supported(self):
        if self.training.qat_init == "float_twin" and (
                self.features.level == "event" or self.model.form == "deepsets" or self.model.batchnorm):
            raise ValueError("training.qat_init float_twin supports per-jet MLPs without model.batchnorm only")
        return self

    @model_validator(mode="after")
    def _one_entry_per_dense_layer(self):
        expected = len(self.model.dense_widths) + 1
        for key, entries in (("quantization.layers", self.quantization.layers), ("pruning.layers", self.pruning.layers)):
            if entries is not None and len(entries) != expected:
                widths = ("model.phi + model.rho" if self.model.form == "deepsets" else "model.hidden")
                raise ValueError(f"key {key}: {len(entries)} entries, expected {expected} (one per Dense layer: "
                                 f"{widths} {self.model.dense_widths}, then the output)")
        return self

    @model_validator(mode="after")
    def _separate_outputs(self):
        if self.name is not None:
            from qtrigger.rundir import check_distinct

            try:
                check_distinct(Path(self.output_dir) / self.name, Path(self.hls.output_dir) / self.name)
            except QTriggerError as err:
                raise ValueError(str(err)) from None
        return self


def read_yaml_mapping(path: str | Path, overrides: list[str] | None = None, what: str = "config") -> dict:
    """A YAML file's top-level mapping with ``key.path=value`` overrides applied; ``name`` defaults to the stem."""
    path = Path(path)
    if not path.is_file():
        raise QTriggerError(f"{what} file {path} does not exist")
    try:
        text = path.read_text()
    except UnicodeDecodeError as err:
        raise QTriggerError(f"{what} {path}: not a YAML text file (byte {err.start} is not UTF-8 text)") from None
    raw = parse_yaml(text, f"{what} {path}")
    if not isinstance(raw, dict):
        raise QTriggerError(f"{what} {path}: expected a mapping at top level, got {type(raw).__name__}")
    for override in overrides or []:
        apply_override(raw, override)
    if raw.get("name") is None:
        raw["name"] = path.stem
    return raw


def parse_yaml(text: str, source: str):
    """YAML text to data; a syntax error names the line and column."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise QTriggerError(f"{source}: not valid YAML{where} ({problem})") from None


def load_config(path: str | Path, overrides: list[str] | None = None, check_files: bool = True) -> RunConfig:
    """Read a YAML config, apply ``key.path=value`` overrides, validate, resolve the run name."""
    config = validate_config(read_yaml_mapping(path, overrides), source=str(path))
    if check_files:
        resolve_sample_files(config)
    return config


def validate_config(raw: dict, source: str = "config") -> RunConfig:
    """Validate a plain dict into a RunConfig, turning pydantic errors into one line."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise QTriggerError(f"{source}: {format_validation_error(err)}") from None


def format_validation_error(err: ValidationError) -> str:
    """One line: ``key a.b: message (got value)`` for each problem, joined by '; '."""
    parts = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif "input" in item and not isinstance(item["input"], dict):
            message += f" (got {item['input']!r})"
        parts.append(f"key {key}: {message}" if key else message)
    return "; ".join(parts)


def apply_override(raw: dict, override: str) -> None:
    """Set ``a.b.c=value`` (value parsed as YAML) inside a nested dict, in place."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise QTriggerError(f"--set {override!r}: expected KEY.PATH=VALUE, e.g. training.epochs=2")
    if not text.strip():
        raise QTriggerError(f"--set {override!r}: no value after '=' (write KEY=null for none)")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    set_dotted(raw, key.strip(), value, f"--set {override!r}")


def set_dotted(raw: dict, key: str, value, what: str) -> None:
    """Set ``raw[a][b][c] = value`` for ``key`` ``a.b.c``, creating sections; ``what`` prefixes errors."""
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise QTriggerError(f"{what}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def resolve_sample_files(config: RunConfig) -> dict[str, list[str]]:
    """Expand every sample's paths/globs; a pattern that matches nothing is an error."""
    resolved = {}
    for index, sample in enumerate(config.data.samples):
        files: list[str] = []
        for pattern in sample.files:
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else ([pattern] if Path(pattern).exists() else [])
            if not matches:
                raise QTriggerError(f"key data.samples.{index}.files: no file matches {pattern!r}")
            files.extend(matches)
        resolved[sample.name] = files
    return resolved


def config_to_dict(config: RunConfig) -> dict:
    """The resolved config as plain data, for run directories and hashing."""
    return config.model_dump(mode="json")
