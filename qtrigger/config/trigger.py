"""Config sections of the decision and its firmware: ``trigger`` (seeds, rate sample, targets) and ``hls``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from qtrigger.config.base import _Strict
from qtrigger.device import DEFAULT_PART
from qtrigger.fixedpoint import parse_fixed


class Preselection(_Strict):
    """A fixed seed of the ``ht`` family: HT >= ``ht_gev`` and >= ``min_jets`` jets with pT >= ``jet_pt_gev``.

    Applied identically to the training, validation, test, calibration and held-out events of an
    event-level run; the ``event_network`` seed is "preselection and event score >= t".
    """

    ht_gev: float = Field(0.0, ge=0)
    min_jets: int = Field(0, ge=0, le=32)
    jet_pt_gev: float | None = Field(None, ge=0)


class SignalSample(_Strict):
    """A named signal sample for efficiencies only (``trigger.signal_samples``): files or globs."""

    name: str
    files: list[str] = Field(min_length=1)


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
    # crossing: pTHat-binned hard events + zero-bias crossings at one pileup, one weight per bunch crossing
    normalisation: Literal["cross_section", "zero_bias", "crossing"] = "cross_section"
    lumi_cm2s: float = Field(2e34, gt=0)
    n_bunches: int = Field(2748, ge=1)
    min_jets: int = Field(1, ge=1)
    min_jet_pt: float | None = None
    score: Literal["csim", "qat", "float"] = "csim"
    bdt: bool = True
    rate_files: list[str] | None = None
    rate_split_seed: int = 2718
    families: list[Literal["jets_tagged", "ht_tagged", "ht_ntag", "event_network", "anomaly", "jets", "ht"]] = Field(
        default_factory=lambda: ["jets_tagged", "ht_tagged", "jets", "ht"])
    preselection: Preselection | None = None
    # named signal samples used only to quote efficiencies (the anomaly seed: never trained, selected or tuned on)
    signal_samples: list[SignalSample] | None = None
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
        if not self.families or not set(self.families) & {"jets_tagged", "ht_tagged", "ht_ntag", "event_network",
                                                           "anomaly"}:
            raise ValueError("families needs at least one network family (jets_tagged, ht_tagged, ht_ntag, "
                             "event_network or anomaly)")
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

    @field_validator("rtl", mode="before")
    @classmethod
    def _rtl_yaml_boolean(cls, value):
        """YAML 1.1 reads a bare ``on``/``off`` as a boolean: take it as the word."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

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
