"""Config sections of the network and its training: ``model``, ``quantization``, ``pruning``, ``training``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from qtrigger.config.base import KNOWN_FORMS, KNOWN_METHODS, _registered, _Strict


class AutoencoderConfig(_Strict):
    """``model.autoencoder`` (with ``training.objective: autoencoder``): the network is an encoder.

    ``kind: vae``: a variational autoencoder. The QAT encoder (``model.hidden``, then ``latent`` linear
    outputs: the mean mu) is what is deployed; its anomaly score is sum_i mu_i^2, computed exactly in
    integers from the output codes. The log-variance head and the ``decoder`` (float Dense layers back to the
    inputs) exist only in training: loss = reconstruction (per-input squared error over the training inputs'
    variance) + ``beta`` x KL. ``mu_bits``/``mu_integer``: the QAT encoder's outputs pass a QKeras
    ``quantized_bits(mu_bits, mu_integer)`` quantizer (rounded, saturated; part of the exact chain). ``kind: ae`` (score = reconstruction distance) is refused: its decoder is not in
    the exact chain yet.
    """

    kind: Literal["vae", "ae"] = "vae"
    latent: int = Field(3, ge=1, le=64)
    # the QAT encoder's mu outputs rounded and saturated to quantized_bits(mu_bits, mu_integer) (null: the exact
    # accumulator): a narrow mu keeps the squares of the score small and shallow in firmware
    mu_bits: int | None = Field(None, ge=2, le=16)
    mu_integer: int = Field(4, ge=0, le=12)
    decoder: list[int] = Field(default_factory=lambda: [16, 32], min_length=1)
    beta: float = Field(1.0, gt=0)

    @field_validator("kind")
    @classmethod
    def _vae_only(cls, kind):
        if kind == "ae":
            raise ValueError("kind ae (score = reconstruction distance) is not implemented: its decoder is not part "
                             "of the exact integer chain; use kind vae (score = sum of the encoder's mu^2)")
        return kind

    @field_validator("decoder")
    @classmethod
    def _positive_decoder(cls, widths):
        if any(w < 1 for w in widths):
            raise ValueError("every decoder width must be >= 1")
        return widths


class ModelConfig(_Strict):
    """The dense network: hidden widths, dropout and batch normalization.

    ``batchnorm: true`` puts batch normalization after every hidden Dense. In the QAT model
    it is folded into the quantized weights during training (``qtrigger.models.batchnorm``): the
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

    form: str = "mlp"
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
    # training.objective autoencoder: the encoder's latent size, decoder and KL weight
    autoencoder: AutoencoderConfig | None = None

    @field_validator("form")
    @classmethod
    def _registered_form(cls, form: str) -> str:
        return _registered(form, KNOWN_FORMS, "model form")

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

    @model_serializer(mode="wrap")
    def _without_unset_autoencoder(self, handler):
        """``autoencoder`` dumps only when set, so resolved configs and scan trial hashes keep their bytes."""
        data = handler(self)
        if data.get("autoencoder", 0) is None:
            data.pop("autoencoder")
        return data

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


class HGQConfig(_Strict):
    """``quantization.method: hgq``: HGQ2's learned bits per weight and per activation, and its resource penalty.

    The loss adds β × EBOPs (effective bit operations, HGQ2's resource estimate); β starts at ``beta`` and moves
    log-linearly to ``beta_final`` over the training epochs (``null``: constant). ``weight_bits`` and
    ``weight_integer`` initialise every weight's and bias's learned width (HGQ2 ``kbi``: bits without the
    sign, integer bits); ``activation_integer`` and ``activation_frac`` initialise every activation's
    (``kif``: integer and fractional bits). Widths are learned per element. ``round_mode``: ``RND``
    (half up) or ``TRN`` (truncate). ``overflow_mode`` of the hidden activations: ``SAT`` (default) or
    ``WRAP`` (HGQ2's own, ranges calibrated on the training data), kept after training only where the integer
    reference proves no wrap reachable over the saturated input range, saturating elsewhere
    (:func:`qtrigger.emulate.hgq.settle_wraps`). Network inputs always saturate; weights saturate symmetrically
    (HGQ2's ``SAT_SYM``).
    """

    beta: float = Field(1e-5, ge=0)
    beta_final: float | None = Field(None, ge=0)
    weight_bits: int = Field(6, ge=1, le=16)
    weight_integer: int = Field(1, ge=-8, le=8)
    activation_integer: int = Field(3, ge=0, le=12)
    activation_frac: int = Field(3, ge=0, le=12)
    round_mode: Literal["RND", "TRN"] = "RND"
    overflow_mode: Literal["SAT", "WRAP"] = "SAT"

    def beta_at(self, epoch: int, epochs: int) -> float:
        """β of ``epoch`` (0-based) in a training of ``epochs``: log-linear from ``beta`` to ``beta_final``."""
        if self.beta_final is None or epochs <= 1 or self.beta == self.beta_final:
            return self.beta
        if self.beta == 0 or self.beta_final == 0:  # no log scale through 0: linear
            return self.beta + (self.beta_final - self.beta) * epoch / (epochs - 1)
        return float(self.beta * (self.beta_final / self.beta) ** (epoch / (epochs - 1)))


class QuantizationConfig(_Strict):
    """How the network is quantized: ``method: qkeras`` (default) or ``hgq`` (HGQ2, section ``hgq``).

    QKeras: quantized_bits(bits, integer, alpha=1) and quantized_relu(bits, integer).
    The six global settings apply to every Dense layer; ``layers`` (optional, one entry per
    Dense layer: the ``model.hidden`` layers, or ``model.phi`` then ``model.rho`` for deepsets, then the
    output) overrides them per layer. With ``method: hgq`` they are not used: HGQ2 learns every width,
    starting from ``hgq`` (:class:`HGQConfig`).
    """

    enabled: bool = True
    method: str = "qkeras"
    hgq: HGQConfig = Field(default_factory=HGQConfig)
    weight_bits: int = Field(6, ge=2, le=16)
    weight_integer: int = Field(0, ge=0, le=6)
    bias_bits: int = Field(6, ge=2, le=16)
    bias_integer: int = Field(0, ge=0, le=6)
    activation_bits: int = Field(6, ge=2, le=16)
    activation_integer: int = Field(2, ge=0, le=8)
    layers: list[LayerQuantization] | None = None

    @field_validator("method")
    @classmethod
    def _registered_method(cls, method: str) -> str:
        return _registered(method, KNOWN_METHODS, "quantization method")

    @model_serializer(mode="wrap")
    def _without_default_method(self, handler):
        """A QKeras section dumps as before HGQ2 existed, so resolved configs and scan trial hashes keep their bytes."""
        data = handler(self)
        if self.method == "qkeras" and self.hgq == HGQConfig():
            data.pop("method", None)
            data.pop("hgq", None)
        return data

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
                                                  enabled=self.enabled, method=self.method, hgq=self.hgq,
                                                  layers=None)

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


RECIPE_DEFAULTS = {"keep_epoch": "best", "lr_schedule": "plateau", "objective": "classifier"}
# A method's own training recipe where it differs (chosen on validation AUC over training seeds 1-3:
# docs/results.md, "The training recipe for both methods"): HGQ2's widths shrink to the last epoch.
METHOD_RECIPES = {"hgq": {"keep_epoch": "last", "lr_schedule": "cosine"}}


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
    # weights for background samples with pTHat bins (qtrigger.data.samples), genWeight for signal (event runs)
    event_weights: Literal["none", "gen_weight", "xsec"] = "none"
    seed: int = 1
    threads: int = Field(2, ge=1)
    float_twin: bool = True
    # float_twin: train the float model first and start QAT from its trained weights (QAT fine-tuning);
    # random (default): QAT starts from the seeded initialisation, like the float twin
    qat_init: Literal["random", "float_twin"] = "random"
    verbose: bool = True
    # the training recipe: which epoch's weights are kept (best validation loss, or the last epoch) and the
    # learning-rate schedule (halved on a validation plateau, or cosine decay to 0 over the epochs)
    keep_epoch: Literal["best", "last"] = "best"
    lr_schedule: Literal["plateau", "cosine"] = "plateau"
    # classifier: labels from the samples' roles; autoencoder: background-only events, no labels, a VAE
    # (model.autoencoder) whose encoder is deployed and scored by sum mu^2 (the anomaly seed)
    objective: Literal["classifier", "autoencoder"] = "classifier"

    @model_serializer(mode="wrap")
    def _without_default_recipe(self, handler):
        """The recipe keys dump only when set, so resolved configs and scan trial hashes keep their bytes."""
        data = handler(self)
        for key, default in RECIPE_DEFAULTS.items():
            if getattr(self, key) == default:
                data.pop(key, None)
        return data
