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
from qtrigger.fixedpoint import FixedType, qkeras_quantizer_type, type_for_range


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

    def input_codes(self, x: np.ndarray) -> np.ndarray:
        """Float inputs → input codes, rounding and saturating exactly as the input quantizer."""
        return self.input_type.quantize_codes(x)

    def forward_codes(self, x: np.ndarray, return_all: bool = False):
        """Exact output codes (int64) for float inputs; optionally every stage's codes."""
        codes = self.input_codes(np.asarray(x, np.float64))
        frac = self.input_type.frac
        trace = {self.input_quantizer_name or self.input_name: (codes, self.input_type)}
        for stage in self.stages:
            codes, frac = dense_codes(codes, frac, stage)
            trace[stage.name] = (codes, stage.accum_type)
            if stage.activation_type is not None:
                codes = requantize(codes, frac, stage.activation_type)
                frac = stage.activation_type.frac
                trace[stage.activation_name] = (codes, stage.activation_type)
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


def extract_network(model) -> QuantizedNetwork:
    """Read a stripped QKeras MLP (input_q → QDense/QActivation… → QDense) into integer form."""
    layers = [layer for layer in model.layers if type(layer).__name__ not in ("InputLayer", "Dropout")]
    if not layers or type(layers[0]).__name__ != "QActivation":
        raise QTriggerError("model: the first layer must be a QActivation(quantized_bits) input quantizer")
    input_layer = layers[0]
    input_type = qkeras_quantizer_type(input_layer.quantizer, f"layer {input_layer.name}")
    stages: list[DenseStage] = []
    value_lo, value_hi, value_type = input_type.min_value, input_type.max_value, input_type
    pending: DenseStage | None = None
    for layer in layers[1:]:
        kind = type(layer).__name__
        if kind == "QDense":
            if pending is not None:
                stages.append(pending)
                value_lo, value_hi, value_type = _stage_output_range(pending)
            pending = _dense_stage(layer, value_lo, value_hi, value_type)
        elif kind == "QActivation" and pending is not None and pending.activation_type is None:
            pending.activation_type = qkeras_quantizer_type(layer.quantizer, f"layer {layer.name}")
            pending.activation_name = layer.name
        else:
            raise QTriggerError(f"layer {layer.name}: {kind} is not supported in an exact MLP (QDense/QActivation only)")
    if pending is None:
        raise QTriggerError("model: no QDense layer found")
    stages.append(pending)
    return QuantizedNetwork(model.layers[0].name, input_layer.name, input_type, stages)


def _stage_output_range(stage: DenseStage) -> tuple[float, float, FixedType]:
    out = stage.activation_type or stage.accum_type
    return out.min_value, out.max_value, out


def _dense_stage(layer, in_lo: float, in_hi: float, in_type: FixedType) -> DenseStage:
    from qtrigger.model import quantized_weights

    where = f"layer {layer.name}"
    if layer.activation.__name__ != "linear":
        raise QTriggerError(f"{where}: put the activation in a separate QActivation layer")
    weight_type = qkeras_quantizer_type(layer.kernel_quantizer_internal, f"{where} kernel_quantizer")
    bias_type = qkeras_quantizer_type(layer.bias_quantizer_internal, f"{where} bias_quantizer")
    kernel, bias = quantized_weights(layer)
    weight_codes = weight_type.to_codes(kernel)
    bias_codes = bias_type.to_codes(bias)
    frac = max(in_type.frac + weight_type.frac, bias_type.frac)
    accum_type = exact_accumulator(kernel, bias, in_lo, in_hi, frac)
    return DenseStage(layer.name, weight_type, bias_type, weight_codes, bias_codes, accum_type, None, None)


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
