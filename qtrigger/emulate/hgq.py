"""The exact integer reference of a trained HGQ2 MLP, its widths read per element from the trained quantizers.

HGQ2 learns a fixed-point type (sign bit ``k``, integer bits ``i``, fractional bits ``f``) for every weight, bias
and input of every layer. :class:`HGQNetwork` holds each tensor as integer codes on its finest grid and
evaluates in int64: a QDense quantizes its inputs element by element (round, then saturate), multiplies by its
integer kernel, adds its bias, and applies ReLU; the last QDense's accumulator is the logit. An element with
``k + i + f <= 0`` bits is 0, as in HGQ2's inference.

Only :mod:`qtrigger.models.hgq` models reach this module (``quantization.method: hgq``); it imports no Keras
itself, the model it is given has its quantizers built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qtrigger.errors import QTriggerError

INT64_SAFE_BITS = 62


@dataclass
class ElementQuantizer:
    """Round-then-saturate quantizers, one per element: codes at ``frac`` within [``lo``, ``hi``] (int64 arrays)."""

    frac: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    rounding: str  # RND: half up; TRN: floor
    wrap: bool = False  # wrap instead of saturating: only for trained constants (weights, biases)

    @property
    def grid(self) -> int:
        """The finest fractional bits of any element: the common grid of the quantized tensor."""
        return int(self.frac.max())

    def from_float(self, x: np.ndarray) -> np.ndarray:
        """Float values (float64, exact multiples of a power of two) → codes on :attr:`grid`."""
        scaled = np.asarray(x, np.float64) * np.exp2(self.frac)
        codes = (np.floor(scaled + 0.5) if self.rounding == "RND" else np.floor(scaled)).astype(np.int64)
        if self.wrap:
            return self._on_grid((codes - self.lo) % (self.hi - self.lo + 1) + self.lo)
        return self._on_grid(np.clip(codes, self.lo, self.hi))

    def from_codes(self, codes: np.ndarray, frac: int) -> np.ndarray:
        """Integer codes at ``frac`` → codes on :attr:`grid`, rounded and saturated per element, exactly."""
        codes = np.asarray(codes, np.int64)
        down = np.maximum(frac - self.frac, 0)  # bits to drop, per element
        up = np.maximum(self.frac - frac, 0)
        half = np.where((down > 0) & (self.rounding == "RND"), np.left_shift(1, np.maximum(down - 1, 0)), 0)
        shifted = np.right_shift(codes + half, down) * np.left_shift(np.int64(1), up)
        return self._on_grid(np.clip(shifted, self.lo, self.hi))

    def _on_grid(self, codes: np.ndarray) -> np.ndarray:
        return codes * np.left_shift(np.int64(1), self.grid - self.frac)


@dataclass
class HGQDenseStage:
    """One QDense: its input quantizer, integer kernel and bias on their grids, and whether ReLU follows."""

    name: str
    inputs: ElementQuantizer
    kernel: np.ndarray  # (n_in, n_out) int64 at kernel_frac
    kernel_frac: int
    bias: np.ndarray  # (n_out,) int64 at bias_frac
    bias_frac: int
    relu: bool

    def codes(self, codes: np.ndarray, frac: int) -> tuple[np.ndarray, int]:
        """Quantize the previous stage's codes, integer matmul + bias (+ ReLU); codes at the accumulator's frac."""
        return self.accumulate(self.inputs.from_codes(codes, frac))

    def accumulate(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Quantized inputs (codes on the input grid) → integer matmul + bias (+ ReLU), at the accumulator's frac."""
        acc_frac = max(self.inputs.grid + self.kernel_frac, self.bias_frac)
        product = x @ self.kernel << (acc_frac - self.inputs.grid - self.kernel_frac)
        acc = product + (self.bias << (acc_frac - self.bias_frac))
        return (np.maximum(acc, 0) if self.relu else acc), acc_frac


@dataclass
class HGQNetwork:
    """The exact int64 chain of an HGQ2 MLP; outputs are the last accumulator (logits)."""

    stages: list[HGQDenseStage]

    def forward_codes(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Exact output codes and their fractional bits for float inputs (saturated by the first quantizer)."""
        first = self.stages[0]
        codes, frac = first.accumulate(first.inputs.from_float(x))
        for stage in self.stages[1:]:
            codes, frac = stage.codes(codes, frac)
        return codes, frac

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Exact output values (float64)."""
        codes, frac = self.forward_codes(x)
        return codes.astype(np.float64) * 2.0 ** -frac

    def input_widths(self) -> np.ndarray:
        """Learned bits of every network input (sign included), as the first layer quantizes them."""
        q = self.stages[0].inputs
        return np.where(q.hi > q.lo, np.ceil(np.log2(np.maximum(q.hi - q.lo + 1, 1))), 0).astype(np.int64)


def extract_hgq_network(model) -> HGQNetwork:
    """Read a trained HGQ2 MLP (QDense layers with input quantizers, ReLU or linear) into :class:`HGQNetwork`."""
    layers = [layer for layer in model.layers if type(layer).__name__ not in ("InputLayer", "Dropout")]
    stages = []
    for index, layer in enumerate(layers):
        if type(layer).__name__ != "QDense":
            raise QTriggerError(f"layer {layer.name}: the HGQ2 reference reads QDense layers only, not "
                                f"{type(layer).__name__}")
        stages.append(_stage(layer, last=index == len(layers) - 1))
    return HGQNetwork(stages)


def _stage(layer, last: bool) -> HGQDenseStage:
    """One QDense as integer codes; its activation must be ReLU (hidden) or linear (output)."""
    activation = getattr(layer.activation, "__name__", str(layer.activation))
    if activation not in ("relu", "linear"):
        raise QTriggerError(f"layer {layer.name}: activation {activation!r}; the HGQ2 reference reads relu or linear")
    if last and activation == "relu" or not layer.enable_iq:
        raise QTriggerError(f"layer {layer.name}: needs an input quantizer and a linear output in the last layer")
    n_in, n_out = layer.kernel.shape
    inputs = element_quantizer(layer.iq, (1, int(n_in)))
    kernel_q = element_quantizer(layer.kq, (int(n_in), int(n_out)), constant=True)
    kernel = kernel_q.from_float(np.asarray(layer.kernel, np.float64))
    if layer.bq is not None:
        bias_q = element_quantizer(layer.bq, (int(n_out),), constant=True)
        bias, bias_frac = bias_q.from_float(np.asarray(layer.bias, np.float64)), bias_q.grid
    else:
        bias, bias_frac = np.zeros(int(n_out), np.int64), 0
    stage = HGQDenseStage(layer.name, inputs, kernel, kernel_q.grid, bias, bias_frac, activation == "relu")
    _check_int64(stage)
    return stage


def _check_int64(stage: HGQDenseStage) -> None:
    """Refuse a layer whose largest possible accumulator (saturated inputs) would not fit int64 arithmetic."""
    q = stage.inputs
    largest_input = np.maximum(np.abs(q._on_grid(q.lo)), np.abs(q._on_grid(q.hi))).astype(np.float64)
    acc_frac = max(q.grid + stage.kernel_frac, stage.bias_frac)
    bound = (largest_input @ np.abs(stage.kernel).astype(np.float64)) * 2.0 ** (acc_frac - q.grid - stage.kernel_frac)
    bound = bound + np.abs(stage.bias).astype(np.float64) * 2.0 ** (acc_frac - stage.bias_frac)
    if float(bound.max(initial=0.0)) >= 2.0**INT64_SAFE_BITS:
        raise QTriggerError(f"layer {stage.name}: its accumulator can reach 2^{np.log2(bound.max()):.0f}, beyond "
                            "int64 arithmetic")


def element_quantizer(quantizer, shape: tuple[int, ...], constant: bool = False) -> ElementQuantizer:
    """A trained HGQ2 fixed-point quantizer as per-element (frac, lo, hi) codes over ``shape``.

    ``constant``: it quantizes trained weights or biases, whose wrap (HGQ2's default for biases) is known
    before any input arrives; a wrapping input or activation quantizer is refused.
    """
    inner = quantizer.quantizer
    overflow, rounding = inner.overflow_mode, inner.round_mode
    readable = ("SAT", "SAT_SYM", "WRAP") if constant else ("SAT", "SAT_SYM")
    if overflow not in readable or rounding not in ("RND", "TRN"):
        raise QTriggerError(f"quantizer {quantizer.name}: {rounding}/{overflow}; the exact reference reads "
                            "RND or TRN rounding with SAT or SAT_SYM overflow on inputs and activations "
                            "(qtrigger saturates)")
    k, i, f = (_integers(inner.bw_mapper.bw_to_x(v, shape), quantizer.name) for v in inner.kif)
    k, i, f = np.broadcast_arrays(k, i, f)
    dead = k + i + f <= 0  # HGQ2's inference output is 0 there
    f = np.where(dead, 0, f)
    span = np.where(dead, 0, i + f)
    if int(np.max(span, initial=0)) + 1 > INT64_SAFE_BITS:
        raise QTriggerError(f"quantizer {quantizer.name}: {int(span.max())} bits do not fit int64 arithmetic")
    hi = np.where(dead, 0, np.left_shift(np.int64(1), np.maximum(span, 0)) - 1)
    lo = -k * (hi if overflow == "SAT_SYM" else hi + 1)
    lo = np.where(dead | (span < 0), 0, lo)
    hi = np.where(span < 0, 0, hi)
    return ElementQuantizer(f.astype(np.int64), lo.astype(np.int64), hi.astype(np.int64), rounding,
                            wrap=overflow == "WRAP")


def _integers(values, name: str) -> np.ndarray:
    """A learned width as integers (HGQ2 rounds its trainable widths at inference)."""
    array = np.asarray(values, np.float64)
    if not np.array_equal(array, np.round(array)):
        raise QTriggerError(f"quantizer {name}: widths {array.ravel()[:4]} are not integers")
    return array.astype(np.int64)
