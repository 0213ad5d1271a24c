"""Exact integer emulation of a quantized DeepSets network (constituents → pooled → head).

The form: [input quantizer] → φ: (QDense [→ activation]) × N applied to every constituent
with shared weights (a Dense on a (constituents, features) input) → a global pooling over
the constituents → ρ: (QDense [→ activation]) × M on the pooled vector.

Padded constituent slots are all-zero inputs; φ layers are bias-free, so φ(0) = 0 and a
padded slot adds 0 to a sum and never raises a max of values ≥ 0. Pooling is exact:

* mean over a power-of-two ``cap``: the int64 sum of the φ codes *is* the mean's code at
  ``log2(cap)`` more fractional bits (a shift, nothing rounded);
* max: on unsigned φ outputs only (a padded 0 cannot win over a real value ≥ 0).

Accumulators are derived from the weights' range and never saturate, so every output code
is independent of the constituents' order and of extra padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qtrigger.emulate.network import (DenseStage, _is_quantizer_activation, dense_chain, input_layer_name, requantize,
                              run_stages)
from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType, qkeras_quantizer_type, type_for_range

POOLING_LAYERS = {"GlobalAveragePooling1D": "mean", "GlobalMaxPooling1D": "max"}
REFUSED_LAYERS = {
    "Masking": "Keras masks are not converted exactly; zero-pad the constituents and use bias-free φ layers",
    "Lambda": "arbitrary Python is not converted to firmware; use GlobalAveragePooling1D or GlobalMaxPooling1D",
}


@dataclass
class Pooling:
    """A global pooling over the constituent axis and its exact types."""

    name: str
    kind: str  # "mean" | "max"
    cap: int  # constituent slots per jet
    accum_type: FixedType  # hls4ml accum_t: the sum over every slot (mean) or the input type (max)
    result_type: FixedType

    def codes(self, codes: np.ndarray, frac: int) -> tuple[np.ndarray, int]:
        """Pool (jets, cap, n) codes at ``frac`` bits → (jets, n) codes at the result's fractional bits."""
        if self.kind == "max":
            pooled, pooled_frac = codes.max(axis=1), frac
        else:  # the sum's code is the mean's code at log2(cap) more fractional bits
            pooled, pooled_frac = codes.sum(axis=1), frac + self.cap.bit_length() - 1
        return requantize(pooled, pooled_frac, self.result_type), self.result_type.frac


@dataclass
class SetNetwork:
    """A DeepSets network in integer form; used wherever a :class:`~qtrigger.emulate.network.QuantizedNetwork` is."""

    input_name: str
    input_quantizer_name: str | None
    input_type: FixedType
    phi: list[DenseStage]
    pooling: Pooling
    rho: list[DenseStage]

    @property
    def stages(self) -> list[DenseStage]:
        """Every Dense stage (φ, then ρ), for the per-layer hls4ml precisions."""
        return self.phi + self.rho

    @property
    def output_type(self) -> FixedType:
        """Type of the network's output values."""
        last = self.rho[-1]
        return last.activation_type or last.accum_type

    def extra_layer_precisions(self) -> dict[str, dict[str, FixedType]]:
        """Precisions of the layers that are not Dense stages: the pooling's accumulator and result."""
        return {self.pooling.name: {"accum": self.pooling.accum_type, "result": self.pooling.result_type}}

    def input_codes(self, x: np.ndarray) -> np.ndarray:
        """Float (jets, cap, features) inputs → input codes, as the input quantizer rounds and saturates."""
        x = np.asarray(x, np.float64)
        if x.ndim != 3 or x.shape[1] != self.pooling.cap:
            raise QTriggerError(f"inputs: shape {x.shape} is not (jets, {self.pooling.cap}, features)")
        return self.input_type.quantize_codes(x)

    def forward_codes(self, x: np.ndarray, return_all: bool = False):
        """Exact output codes (int64, (jets, outputs)); optionally every layer's codes."""
        codes, frac = self.input_codes(x), self.input_type.frac
        trace = {self.input_quantizer_name or self.input_name: (codes, self.input_type)}
        codes, frac = run_stages(self.phi, codes, frac, trace)
        codes, frac = self.pooling.codes(codes, frac)
        trace[self.pooling.name] = (codes, self.pooling.result_type)
        codes, frac = run_stages(self.rho, codes, frac, trace)
        return (codes, trace) if return_all else codes

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Exact output values (float64)."""
        return self.forward_codes(x).astype(np.float64) * self.output_type.lsb


def is_set_model(model) -> bool:
    """True when the model pools over a constituent axis (a global 1-D pooling layer)."""
    return any(type(layer).__name__ in POOLING_LAYERS for layer in model.layers)


def extract_set_network(model) -> SetNetwork:
    """Read a QKeras DeepSets model into integer form.

    Accepted: Input(cap, features) → QActivation(quantized_bits|quantized_relu) → bias-free
    QDense [→ activation] × N → GlobalAveragePooling1D (cap a power of two) or
    GlobalMaxPooling1D (unsigned φ output) → QDense [→ activation] × M. ``Dropout`` is skipped.
    Anything else (``Masking``, ``Lambda``, a φ bias, ...) raises a one-line QTriggerError
    naming the layer.
    """
    layers = [layer for layer in model.layers if type(layer).__name__ not in ("InputLayer", "Dropout")]
    for layer in layers:
        if type(layer).__name__ in REFUSED_LAYERS:
            raise QTriggerError(f"layer {layer.name}: {type(layer).__name__}: {REFUSED_LAYERS[type(layer).__name__]}")
    cap = _constituent_cap(model)
    if not layers or not _is_quantizer_activation(layers[0]):
        first = layers[0].name if layers else "(none)"
        raise QTriggerError(f"model: the first layer {first} is not an input quantizer; add QActivation(quantized_bits(W, I))")
    input_type = qkeras_quantizer_type(layers[0].quantizer, f"layer {layers[0].name}")
    pools = [i for i, layer in enumerate(layers) if type(layer).__name__ in POOLING_LAYERS]
    if len(pools) != 1:
        raise QTriggerError(f"model: {len(pools)} global pooling layers; a DeepSets model has exactly one")
    at = pools[0]
    phi = dense_chain(layers[1:at], input_type)
    for stage in phi:
        if np.any(stage.bias_codes):
            raise QTriggerError(f"layer {stage.name}: a per-constituent QDense with a bias makes padded slots nonzero; "
                                "use use_bias=False")
    pooling = _pooling(layers[at], phi[-1].activation_type or phi[-1].accum_type, cap)
    rho = dense_chain(layers[at + 1:], pooling.result_type)
    return SetNetwork(input_layer_name(model), layers[0].name, input_type, phi, pooling, rho)


def extract_any_network(model):
    """The integer reference of a trained model: :class:`SetNetwork` for a DeepSets model, else the MLP's
    :class:`~qtrigger.emulate.network.QuantizedNetwork`."""
    from qtrigger.emulate.network import extract_network

    return extract_set_network(model) if is_set_model(model) else extract_network(model)


def _constituent_cap(model) -> int:
    shape = tuple(model.input_shape)
    if len(shape) != 3 or shape[1] is None:
        raise QTriggerError(f"model: input shape {shape} is not (jets, constituents, features)")
    return int(shape[1])


def _pooling(layer, in_type: FixedType, cap: int) -> Pooling:
    """The exact types of a global pooling of ``cap`` values of ``in_type``."""
    kind = POOLING_LAYERS[type(layer).__name__]
    if getattr(layer, "data_format", "channels_last") != "channels_last" or getattr(layer, "keepdims", False):
        raise QTriggerError(f"layer {layer.name}: only channels_last pooling without keepdims is supported")
    if kind == "max":
        if in_type.signed:
            raise QTriggerError(f"layer {layer.name}: max pooling of signed values ({in_type}) is not exact with zero "
                                "padding; put a ReLU (quantized_relu) before it")
        return Pooling(layer.name, kind, cap, in_type, in_type)
    if cap & (cap - 1):
        raise QTriggerError(f"layer {layer.name}: mean over {cap} constituents is not a shift; use a power of two")
    frac = in_type.frac + cap.bit_length() - 1
    accum = type_for_range(cap * min(in_type.min_value, 0.0), cap * in_type.max_value, frac)
    result = type_for_range(min(in_type.min_value, 0.0), in_type.max_value, frac)
    return Pooling(layer.name, kind, cap, accum, result)
