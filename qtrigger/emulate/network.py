"""Exact integer emulation of a quantized network, and the firmware types it implies.

QKeras evaluates in float32, which rounds once an accumulator needs more than 24 bits,
so it is not a trustworthy reference for "bit-exact". :class:`QuantizedNetwork` holds the
network as integer codes with their :class:`FixedType`, computes every layer in int64
(exact), and derives each accumulator/result type from the actual weights' range, so
that the hls4ml accumulators can never overflow. The same object feeds the hls4ml
config, so the precisions are derived once and never typed twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType, exact_type_for_values, qkeras_quantizer_type, type_for_range


@dataclass
class DenseStage:
    """One Dense layer as integer codes, its exact accumulator type and its activation."""

    name: str
    weight_type: FixedType
    bias_type: FixedType
    weight_codes: np.ndarray  # (n_in, n_out) int64
    bias_codes: np.ndarray  # (n_out,) int64
    accum_type: FixedType
    activation_name: str | None
    activation_type: FixedType | None  # None: the layer's output is the accumulator


@dataclass
class QuantizedNetwork:
    """The input type and the chain of Dense stages of a QKeras MLP."""

    input_name: str
    input_quantizer_name: str | None
    input_type: FixedType
    stages: list[DenseStage]

    @property
    def output_type(self) -> FixedType:
        """Type of the network's output values."""
        last = self.stages[-1]
        return last.activation_type or last.accum_type

    def extra_layer_precisions(self) -> dict[str, dict[str, FixedType]]:
        """Precisions of layers that are not Dense stages (none in an MLP)."""
        return {}

    def model_inputs(self, x: np.ndarray) -> np.ndarray:
        """What the Keras and the hls4ml model take for inputs ``x``: ``x`` itself (contiguous float64)."""
        return np.ascontiguousarray(x, dtype=np.float64)

    def input_codes(self, x: np.ndarray) -> np.ndarray:
        """Float inputs → input codes, rounding and saturating exactly as the input quantizer."""
        return self.input_type.quantize_codes(x)

    def forward_codes(self, x: np.ndarray, return_all: bool = False):
        """Exact output codes (int64) for float inputs; optionally every stage's codes."""
        codes = self.input_codes(np.asarray(x, np.float64))
        frac = self.input_type.frac
        trace = {self.input_quantizer_name or self.input_name: (codes, self.input_type)}
        codes, _ = run_stages(self.stages, codes, frac, trace)
        return (codes, trace) if return_all else codes

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Exact output values (float64)."""
        return self.forward_codes(x).astype(np.float64) * self.output_type.lsb


def dense_codes(codes: np.ndarray, frac: int, stage: DenseStage) -> tuple[np.ndarray, int]:
    """Integer matmul + bias, returned at the accumulator's fractional bits."""
    product_frac = frac + stage.weight_type.frac
    acc_frac = stage.accum_type.frac
    if acc_frac < product_frac or acc_frac < stage.bias_type.frac:
        raise QTriggerError(f"layer {stage.name}: accumulator {stage.accum_type} drops product bits")
    acc = codes @ stage.weight_codes
    acc = acc << (acc_frac - product_frac)
    acc = acc + (stage.bias_codes << (acc_frac - stage.bias_type.frac))
    return acc, acc_frac


def run_stages(stages: list, codes: np.ndarray, frac: int, trace: dict) -> tuple[np.ndarray, int]:
    """Dense layers and activations in order on integer codes with ``frac`` fractional bits;
    records every stage's codes and type in ``trace``. Returns (codes, frac)."""
    for stage in stages:
        codes, frac = dense_codes(codes, frac, stage)
        trace[stage.name] = (codes, stage.accum_type)
        if stage.activation_type is not None:
            codes = requantize(codes, frac, stage.activation_type)
            frac = stage.activation_type.frac
            trace[stage.activation_name] = (codes, stage.activation_type)
    return codes, frac


def requantize(codes: np.ndarray, frac: int, target: FixedType) -> np.ndarray:
    """Exact integer rounding of codes at ``frac`` bits onto ``target`` (modes honoured)."""
    shift = frac - target.frac
    if shift <= 0:
        return target.overflow_codes(codes << (-shift))
    floor = codes >> shift
    remainder = codes - (floor << shift)
    half = 1 << (shift - 1)
    if target.rounding == "TRN":
        rounded = floor
    elif target.rounding == "RND_CONV":
        up = (remainder > half) | ((remainder == half) & (floor % 2 == 1))
        rounded = floor + up
    elif target.rounding == "RND":
        rounded = floor + (remainder >= half)
    else:
        raise NotImplementedError(f"rounding {target.rounding} is not emulated")
    return target.overflow_codes(rounded)


def extract_network(model, input_type: FixedType | None = None) -> QuantizedNetwork:
    """Read a QKeras MLP into integer form: [input quantizer] → (QDense [→ activation]) × N.

    Accepted as users write them (functional or Sequential): the input quantizer
    ``QActivation(quantized_bits|quantized_relu)`` (strings or objects); ``QDense`` with
    an inline ``activation`` (a ``quantized_relu``/``quantized_bits`` quantizer, ``"relu"``,
    ``"linear"`` or None) or followed by one ``QActivation`` quantizer, a Keras ``ReLU``
    or ``Activation("relu"|"linear")``; ``Dropout``. A model without an input quantizer
    needs ``input_type`` (e.g. :func:`input_type_from_data`; ignored when the model has
    one). Anything else raises a one-line QTriggerError naming the layer.
    """
    layers = [layer for layer in model.layers if type(layer).__name__ not in ("InputLayer", "Dropout")]
    if not layers:
        raise QTriggerError("model: no layers")
    input_quantizer_name = None
    if _is_quantizer_activation(layers[0]):
        input_layer, layers = layers[0], layers[1:]
        input_quantizer_name = input_layer.name
        input_type = qkeras_quantizer_type(input_layer.quantizer, f"layer {input_layer.name}")
    elif input_type is None:
        raise QTriggerError(
            f"model: the first layer {layers[0].name} ({type(layers[0]).__name__}) is not an input quantizer; "
            "add QActivation(quantized_bits(W, I)) as the first layer, or give the input type"
        )
    stages = dense_chain(layers, input_type)
    return QuantizedNetwork(input_layer_name(model), input_quantizer_name, input_type, stages)


def dense_chain(layers: list, input_type: FixedType) -> list[DenseStage]:
    """The (QDense [→ activation]) × N stages of ``layers`` on inputs of ``input_type``.

    Each stage's accumulator is derived from the range of the previous stage's output.
    Raises a one-line QTriggerError naming the first layer that is not part of such a chain.
    """
    stages: list[DenseStage] = []
    value_lo, value_hi, value_type = input_type.min_value, input_type.max_value, input_type
    pending: DenseStage | None = None
    for layer in layers:
        kind = type(layer).__name__
        if kind == "QDense":
            if pending is not None:
                stages.append(pending)
                value_lo, value_hi, value_type = _stage_output_range(pending)
            pending = _dense_stage(layer, value_lo, value_hi, value_type)
            continue
        activation = _activation_of(layer, pending) if pending is not None and pending.activation_type is None else None
        if activation is None:
            raise QTriggerError(f"layer {layer.name}: {_unsupported(layer, pending)}")
        pending.activation_type, pending.activation_name = activation, layer.name
    if pending is None:
        raise QTriggerError("model: no QDense layer found")
    stages.append(pending)
    return stages


def input_layer_name(model) -> str:
    """The name hls4ml gives the model's input layer (its Keras InputLayer), for any model API."""
    try:
        config = model.get_config()
    except NotImplementedError:
        raise QTriggerError("model: a subclassed Keras model; hls4ml converts Sequential and functional models") from None
    if config.get("input_layers"):  # functional
        return config["input_layers"][0][0]
    layers = config.get("layers", [])
    if layers and layers[0].get("class_name") == "InputLayer":
        return layers[0]["config"]["name"]
    return "input1"  # hls4ml's name when a Sequential config has no InputLayer


def input_type_from_data(x: np.ndarray, max_frac: int = 24, max_width: int = 32) -> FixedType:
    """Smallest fixed-point type holding every value of ``x`` exactly (RND_CONV, SAT as QKeras would).

    For models without an input quantizer: the firmware input type is then the data's
    own grid. Raises QTriggerError when the values are not on a grid of at most
    ``max_frac`` fractional bits and ``max_width`` bits.
    """
    fixed = exact_type_for_values(x, max_frac, max_width, "RND_CONV", "SAT")
    if fixed is None:
        raise QTriggerError(
            f"inputs: the model has no input quantizer and the values are not on a fixed-point grid of at most "
            f"{max_frac} fractional bits and {max_width} bits; add QActivation(quantized_bits(W, I)) as the model's first layer"
        )
    return fixed


def has_input_quantizer(model) -> bool:
    """True when the first computing layer is a QActivation quantizer (the network's input type)."""
    layers = [layer for layer in model.layers if type(layer).__name__ not in ("InputLayer", "Dropout")]
    return bool(layers) and _is_quantizer_activation(layers[0])


def _is_quantizer_activation(layer) -> bool:
    return type(layer).__name__ == "QActivation" and type(layer.quantizer).__name__ in ("quantized_bits", "quantized_relu")


def _relu_type(accum: FixedType) -> FixedType:
    """An exact ReLU of ``accum``: its non-negative values, same LSB (clipping at 0 is the only change)."""
    drop = 1 if accum.signed else 0
    return FixedType(accum.width - drop, accum.integer - drop, False, "TRN", "SAT")


def _activation_of(layer, stage: DenseStage) -> FixedType | None:
    """The type a layer after ``stage`` rounds/clips the accumulator to; None if it is not an activation."""
    kind = type(layer).__name__
    if _is_quantizer_activation(layer):
        return qkeras_quantizer_type(layer.quantizer, f"layer {layer.name}")
    if kind == "ReLU":
        if layer.max_value is not None or float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
            return None
        return _relu_type(stage.accum_type)
    if kind == "Activation":
        name = getattr(layer.activation, "__name__", "")
        if name == "relu":
            return _relu_type(stage.accum_type)
        if name == "linear":
            return stage.accum_type
    return None


def _unsupported(layer, pending: DenseStage | None) -> str:
    """Why ``layer`` cannot be converted exactly, in a few words with the fix."""
    kind = type(layer).__name__
    if kind == "Dense":
        return "Dense has float weights, not exact in fixed point; use QDense with kernel_quantizer and bias_quantizer"
    if kind == "PruneLowMagnitude":
        return "a tfmot pruning wrapper; call tfmot.sparsity.keras.strip_pruning(model) before converting"
    if kind == "QActivation" and not _is_quantizer_activation(layer):
        return (f"QActivation({getattr(layer.quantizer, '__name__', layer.quantizer)!r}) is not a quantizer hls4ml converts "
                "exactly; use quantized_relu(bits, integer) or quantized_bits(bits, integer)")
    if pending is None:
        return f"{kind} before the first QDense is not supported (input quantizer first, then QDense layers)"
    if kind == "ReLU" and _activation_of(layer, pending) is None:
        args = ", ".join(f"{key}={float(value)!r}" for key, value, default in (
            ("max_value", layer.max_value, None), ("negative_slope", layer.negative_slope, 0.0),
            ("threshold", layer.threshold, 0.0)) if value is not None and float(value) != (default or 0.0))
        return f"ReLU({args}) is not exact in firmware; use ReLU() or quantized_relu(bits, integer)"
    if kind in ("Activation", "Softmax") and _activation_of(layer, pending) is None:
        what = getattr(getattr(layer, "activation", None), "__name__", None)
        return (f"{kind}({what}) " if what else f"{kind} ") + (
            "is not exact in firmware (only relu and linear are); the check compares logits, so remove it or use "
            "quantized_relu")
    if pending.activation_type is not None and kind in ("QActivation", "ReLU", "Activation"):
        return f"{kind} after the activation of {pending.name}: one activation per QDense is supported"
    return f"{kind} is not supported in an exact MLP (QDense, QActivation, ReLU, Activation relu/linear, Dropout)"


def _stage_output_range(stage: DenseStage) -> tuple[float, float, FixedType]:
    out = stage.activation_type or stage.accum_type
    return out.min_value, out.max_value, out


def _dense_stage(layer, in_lo: float, in_hi: float, in_type: FixedType) -> DenseStage:
    kernel, bias = _quantized_weights(layer)
    weight_type = _parameter_type(layer, "kernel", kernel)
    bias_type = _parameter_type(layer, "bias", bias) if layer.use_bias else weight_type
    weight_codes = weight_type.to_codes(kernel)
    bias_codes = bias_type.to_codes(bias)
    frac = max(in_type.frac + weight_type.frac, bias_type.frac)
    accum_type = exact_accumulator(kernel, bias, in_lo, in_hi, frac)
    stage = DenseStage(layer.name, weight_type, bias_type, weight_codes, bias_codes, accum_type, None, None)
    _inline_activation(layer, stage)
    return stage


def _parameter_type(layer, what: str, values: np.ndarray) -> FixedType:
    """The type of a QDense's kernel or bias: its quantizer's, else the exact grid of its float values."""
    quantizer = getattr(layer, f"{what}_quantizer_internal")
    if quantizer is not None:
        return qkeras_quantizer_type(quantizer, f"layer {layer.name} {what}_quantizer")
    fixed = exact_type_for_values(values)
    if fixed is None:
        raise QTriggerError(
            f"layer {layer.name}: no {what}_quantizer and its float {what} values are not on a fixed-point grid of at "
            f"most 24 fractional bits; give {what}_quantizer=quantized_bits(bits, integer, alpha=1)"
        )
    return fixed


def _quantized_weights(layer) -> tuple[np.ndarray, np.ndarray]:
    """Kernel and bias as the firmware sees them (quantizers applied; zero bias without one)."""
    def quantized(quantizer, values):
        return np.asarray(quantizer(values) if quantizer is not None else values, np.float64)

    weights = layer.get_weights()
    kernel = quantized(layer.kernel_quantizer_internal, weights[0])
    if not layer.use_bias:
        return kernel, np.zeros(kernel.shape[1])
    return kernel, quantized(layer.bias_quantizer_internal, weights[1])


def _inline_activation(layer, stage: DenseStage) -> None:
    """Set ``stage``'s activation from QDense(activation=...); hls4ml splits it into ``<layer>_<name>``."""
    activation = layer.activation
    name = getattr(activation, "__name__", None)
    if activation is None or name == "linear":
        return
    kind = type(activation).__name__
    if kind in ("quantized_bits", "quantized_relu"):
        stage.activation_type = qkeras_quantizer_type(activation, f"layer {layer.name} activation")
        stage.activation_name = f"{layer.name}_{kind}"
    elif name == "relu":
        stage.activation_type = _relu_type(stage.accum_type)
        stage.activation_name = f"{layer.name}_relu"
    else:
        raise QTriggerError(
            f"layer {layer.name}: activation {name or kind} is not exact in firmware; use quantized_relu(bits, integer), "
            "quantized_bits, relu or linear"
        )


def exact_accumulator(kernel: np.ndarray, bias: np.ndarray, in_lo: float, in_hi: float, frac: int) -> FixedType:
    """Smallest type that holds every partial sum of ``bias + sum(x_i * w_ij)`` for x in [in_lo, in_hi].

    The input range always contains 0, so each product's range contains 0 and every
    partial sum lies within the full sum's range.
    """
    in_lo, in_hi = min(in_lo, 0.0), max(in_hi, 0.0)
    products_lo = np.minimum(kernel * in_lo, kernel * in_hi)
    products_hi = np.maximum(kernel * in_lo, kernel * in_hi)
    lo = float(np.min(bias + products_lo.sum(axis=0)))
    hi = float(np.max(bias + products_hi.sum(axis=0)))
    lo, hi = min(lo, float(bias.min()), 0.0), max(hi, float(bias.max()), 0.0)
    return type_for_range(lo, hi, frac)
