"""Exact integer emulation of a quantized DeepSets network (constituents → pooled → head).

The form: [input quantizer] → φ: (QDense [→ activation]) × N applied to every constituent
with shared weights (a Dense on a (constituents, features) input) → a global pooling over
the constituents → ρ: (QDense [→ activation]) × M on the pooled vector.

φ runs on every slot, padded ones included, exactly as Keras runs it: a padded (all-zero)
slot gives φ(0) = act(bias) (0 for bias-free φ), which the pooling takes in like any other
slot. A model that multiplies a 0/1 mask input into φ (:class:`MaskProduct`, kept in firmware)
zeroes its masked slots at that point instead. Pooling is exact:

* mean over a power-of-two ``cap``: the int64 sum of the φ codes *is* the mean's code at
  ``log2(cap)`` more fractional bits (a shift, nothing rounded);
* max: the largest φ code over every slot (signed or not).

Accumulators are derived from the weights' range and never saturate, so every output code
is independent of the constituents' order (padding included).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qtrigger.emulate.hgq import extract_hgq_network, settle_wraps
from qtrigger.emulate.network import (
    DenseStage,
    _is_quantizer_activation,
    dense_chain,
    dense_codes,
    extract_network,
    input_layer_name,
    requantize,
    run_stages,
)
from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType, qkeras_quantizer_type, type_for_range

POOLING_LAYERS = {"GlobalAveragePooling1D": "mean", "GlobalMaxPooling1D": "max"}
MASK_MERGE = "Multiply"
REFUSED_LAYERS = {
    "Masking": "Keras masks are not converted exactly (a mean over the unmasked slots divides by their count); "
               "zero-pad the constituents, or multiply a 0/1 mask input into φ (Multiply)",
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
class MaskProduct:
    """A 0/1 mask input multiplied (``Multiply``) into the output of φ stage ``stage``, kept in firmware.

    The product sits after the stage's accumulator (``before_activation``) or after its activation;
    every supported activation maps 0 to 0, so a masked slot is 0 from there on until a later φ bias.
    In firmware the mask input is the (jets, cap) mask repeated ``width`` times per slot (hls4ml's
    Multiply does not broadcast); here it travels as one more feature after the constituents' features.
    """

    name: str  # the Multiply layer
    input_name: str  # the mask input layer
    stage: int  # index in φ of the stage whose output is multiplied
    before_activation: bool
    width: int  # values per slot at the product
    value_type: FixedType  # type of the multiplied values (and of the product: m is 0 or 1)

    def apply(self, codes: np.ndarray, mask: np.ndarray, trace: dict) -> np.ndarray:
        """``codes`` (jets, cap, width) times the 0/1 ``mask`` (jets, cap); recorded in ``trace``."""
        codes = codes * mask[..., None]
        trace[self.name] = (codes, self.value_type)
        return codes


MASK_TYPE = FixedType(1, 1, False, "TRN", "SAT")  # the firmware mask input: 0 or 1


@dataclass
class SetNetwork:
    """A DeepSets network in integer form; used wherever a :class:`~qtrigger.emulate.network.QuantizedNetwork` is."""

    input_name: str
    input_quantizer_name: str | None
    input_type: FixedType
    phi: list[DenseStage]
    pooling: Pooling
    rho: list[DenseStage]
    mask: MaskProduct | None = None

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
        """Precisions of the layers that are not Dense stages: the pooling's accumulator and result, and a kept
        mask's input and product."""
        extra = {self.pooling.name: {"accum": self.pooling.accum_type, "result": self.pooling.result_type}}
        if self.mask is not None:
            extra[self.mask.input_name] = {"result": MASK_TYPE}
            extra[self.mask.name] = {"result": self.mask.value_type}
        return extra

    def split_inputs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(constituent features, 0/1 mask or None): with a kept mask, the mask is ``x``'s last feature."""
        x = np.asarray(x, np.float64)
        if x.ndim != 3 or x.shape[1] != self.pooling.cap:
            raise QTriggerError(f"inputs: shape {x.shape} is not (jets, {self.pooling.cap}, features)")
        if self.mask is None:
            return x, None
        return x[..., :-1], x[..., -1].astype(np.int64)

    def model_inputs(self, x: np.ndarray):
        """What the Keras model and the hls4ml model take: ``x``, or [features, mask repeated per φ value]."""
        features, mask = self.split_inputs(x)
        if mask is None:
            return np.ascontiguousarray(features)
        repeated = np.repeat(mask[..., None].astype(np.float64), self.mask.width, axis=2)
        return [np.ascontiguousarray(features), np.ascontiguousarray(repeated)]

    def input_codes(self, x: np.ndarray) -> np.ndarray:
        """Float (jets, cap, features) inputs → input codes, as the input quantizer rounds and saturates."""
        return self.input_type.quantize_codes(self.split_inputs(x)[0])

    def forward_codes(self, x: np.ndarray, return_all: bool = False):
        """Exact output codes (int64, (jets, outputs)); optionally every layer's codes.

        φ runs on every slot (a padded slot gives φ(0)); a kept mask zeroes its slots where the model multiplies it.
        """
        codes, frac = self.input_codes(x), self.input_type.frac
        trace = {self.input_quantizer_name or self.input_name: (codes, self.input_type)}
        codes, frac = self._phi_codes(codes, frac, self.split_inputs(x)[1], trace)
        codes, frac = self.pooling.codes(codes, frac)
        trace[self.pooling.name] = (codes, self.pooling.result_type)
        codes, frac = run_stages(self.rho, codes, frac, trace)
        return (codes, trace) if return_all else codes

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Exact output values (float64)."""
        return self.forward_codes(x).astype(np.float64) * self.output_type.lsb

    def _phi_codes(self, codes: np.ndarray, frac: int, mask: np.ndarray | None, trace: dict) -> tuple[np.ndarray, int]:
        """φ on every slot; the mask product (if any) inside its stage."""
        if self.mask is None:
            return run_stages(self.phi, codes, frac, trace)
        at = self.mask.stage
        codes, frac = run_stages(self.phi[:at], codes, frac, trace)
        stage = self.phi[at]
        codes, frac = dense_codes(codes, frac, stage)
        trace[stage.name] = (codes, stage.accum_type)
        if self.mask.before_activation:
            codes = self.mask.apply(codes, mask, trace)
        if stage.activation_type is not None:
            codes, frac = requantize(codes, frac, stage.activation_type), stage.activation_type.frac
            trace[stage.activation_name] = (codes, stage.activation_type)
        if not self.mask.before_activation:
            codes = self.mask.apply(codes, mask, trace)
        return run_stages(self.phi[at + 1:], codes, frac, trace)


def is_set_model(model) -> bool:
    """True when the model pools over a constituent axis (a global 1-D pooling layer)."""
    return any(type(layer).__name__ in POOLING_LAYERS for layer in model.layers)


def extract_set_network(model, input_type: FixedType | None = None) -> SetNetwork:
    """Read a QKeras DeepSets model into integer form.

    Accepted: Input(cap, features) → [QActivation(quantized_bits|quantized_relu)] → QDense
    [→ activation] × N, with or without biases → GlobalAveragePooling1D (cap a power of two) or
    GlobalMaxPooling1D → QDense [→ activation] × M. ``Dropout`` is skipped. A model without an
    input quantizer needs ``input_type`` (the inputs' grid). A second input, a 0/1 mask multiplied
    into φ (``Multiply``), is the kept mask of :func:`qtrigger.firmware.set_spellings.canonical_set_model`.
    Anything else (``Masking``, ``Lambda``, a mean over a cap that is no power of two, ...) raises a
    one-line QTriggerError naming the layer.
    """
    layers = [layer for layer in model.layers if type(layer).__name__ not in ("InputLayer", "Dropout")]
    for layer in layers:
        if type(layer).__name__ in REFUSED_LAYERS:
            raise QTriggerError(f"layer {layer.name}: {type(layer).__name__}: {REFUSED_LAYERS[type(layer).__name__]}")
    cap = _constituent_cap(model)
    quantizer_name, input_type = _input_type(layers, input_type)
    chain = [layer for layer in layers[bool(quantizer_name):] if type(layer).__name__ != MASK_MERGE]
    pools = [i for i, layer in enumerate(chain) if type(layer).__name__ in POOLING_LAYERS]
    if len(pools) != 1:
        raise QTriggerError(f"model: {len(pools)} global pooling layers; a DeepSets model has exactly one")
    at = pools[0]
    phi = dense_chain(chain[:at], input_type)
    mask = _mask_product(model, layers, phi, cap)
    pooling = _pooling(chain[at], phi[-1].activation_type or phi[-1].accum_type, cap)
    rho = dense_chain(chain[at + 1:], pooling.result_type)
    return SetNetwork(input_layer_name(model), quantizer_name, input_type, phi, pooling, rho, mask)


def extract_any_network(model):
    """The integer reference of a trained model: :class:`SetNetwork` for a DeepSets model,
    :class:`~qtrigger.emulate.hgq.HGQNetwork` for an HGQ2 (Keras-3) model, else the MLP's
    :class:`~qtrigger.emulate.network.QuantizedNetwork`."""
    if is_hgq_model(model):
        return extract_hgq_network(model)
    return extract_set_network(model) if is_set_model(model) else extract_network(model)


def settle_overflow(model) -> dict:
    """An HGQ2 model's wrapping input quantizers kept where no wrap is reachable, saturated elsewhere
    (:func:`qtrigger.emulate.hgq.settle_wraps`; per wrapping quantizer what was done); any other model: ``{}``."""
    return settle_wraps(model) if is_hgq_model(model) else {}


def is_hgq_model(model) -> bool:
    """True for a model with HGQ2 layers (``quantization.method: hgq``; Keras 3)."""
    return any(type(layer).__module__.split(".")[0] == "hgq" for layer in model.layers)


def _constituent_cap(model) -> int:
    shape = tuple(model.inputs[0].shape)  # with a kept mask, the second input is the mask
    if len(shape) != 3 or shape[1] is None:
        raise QTriggerError(f"model: input shape {shape} is not (jets, constituents, features)")
    return int(shape[1])


def _input_type(layers: list, input_type: FixedType | None) -> tuple[str | None, FixedType]:
    """(name of the input quantizer or None, the input type): the quantizer's, else the given one."""
    if layers and _is_quantizer_activation(layers[0]):
        return layers[0].name, qkeras_quantizer_type(layers[0].quantizer, f"layer {layers[0].name}")
    if input_type is None:
        first = layers[0].name if layers else "(none)"
        raise QTriggerError(f"model: the first layer {first} is not an input quantizer; add "
                            "QActivation(quantized_bits(W, I)) or give the input type")
    return None, input_type


def _mask_product(model, layers: list, phi: list[DenseStage], cap: int) -> MaskProduct | None:
    """The kept mask's product: which φ stage it follows and where (before or after the activation)."""
    products = [i for i, layer in enumerate(layers) if type(layer).__name__ == MASK_MERGE]
    if not products:
        return None
    i = products[0]
    product, before = layers[i], layers[max(i - 1, 0)]
    after = layers[i + 1].name if i + 1 < len(layers) else None
    mask_name = _mask_input_name(model, product)
    k = next((k for k, s in enumerate(phi) if before.name in (s.name, s.activation_name)), None)
    if len(products) != 1 or mask_name is None or k is None:
        raise QTriggerError(f"layer {product.name}: {MASK_MERGE} is accepted once, of a φ layer's output and a mask "
                            "input, before the pooling")
    stage = phi[k]
    before_activation = before.name == stage.name and stage.activation_name == after
    width = int(product.output.shape[-1])
    if tuple(next(l for l in model.layers if l.name == mask_name).output.shape[1:]) != (cap, width):
        raise QTriggerError(f"layer {product.name}: the mask input {mask_name} is not of shape ({cap}, {width})")
    value_type = stage.accum_type if before_activation or stage.activation_type is None else stage.activation_type
    return MaskProduct(product.name, mask_name, k, before_activation, width, value_type)


def _mask_input_name(model, product) -> str | None:
    """The input layer the product multiplies in, if one does (the model's second input)."""
    config = model.get_config()
    inputs = [entry[0] for entry in config.get("input_layers", [])][1:]
    entry = next(e for e in config["layers"] if e["config"]["name"] == product.name)
    sources = [node[0] for node in entry["inbound_nodes"][0]]
    return next((name for name in sources if name in inputs), None)


def _pooling(layer, in_type: FixedType, cap: int) -> Pooling:
    """The exact types of a global pooling of ``cap`` values of ``in_type``."""
    kind = POOLING_LAYERS[type(layer).__name__]
    if getattr(layer, "data_format", "channels_last") != "channels_last" or getattr(layer, "keepdims", False):
        raise QTriggerError(f"layer {layer.name}: only channels_last pooling without keepdims is supported")
    if kind == "max":
        return Pooling(layer.name, kind, cap, in_type, in_type)
    if cap & (cap - 1):
        raise QTriggerError(f"layer {layer.name}: mean over {cap} constituents is not a shift; use a power of two")
    frac = in_type.frac + cap.bit_length() - 1
    accum = type_for_range(cap * min(in_type.min_value, 0.0), cap * in_type.max_value, frac)
    result = type_for_range(min(in_type.min_value, 0.0), in_type.max_value, frac)
    return Pooling(layer.name, kind, cap, accum, result)
