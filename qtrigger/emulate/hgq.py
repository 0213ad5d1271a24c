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
from qtrigger.fixedpoint import FixedType, type_for_range
from qtrigger.models.hgq import saturate_quantizer

INT64_SAFE_BITS = 62


@dataclass
class ElementQuantizer:
    """Round-then-saturate quantizers, one per element: codes at ``frac`` within [``lo``, ``hi``] (int64 arrays)."""

    frac: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    rounding: str  # RND: half up; TRN: floor
    wrap: bool = False  # wrap instead of saturating (trained constants; datalanes only where proven unreachable)
    quantizer_name: str = ""

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
    """One QDense: its input quantizer, integer kernel and bias on their grids, and whether ReLU follows.

    The attributes a :class:`~qtrigger.emulate.network.DenseStage` has (``weight_codes``, ``weight_type``,
    ``bias_codes``, ``bias_type``, ``accum_type``, ``activation_name``, ``activation_type``) describe it for the
    hardware estimate, the precision profile and the RTL's pipeline depth; its activation is the ReLU followed by
    the next layer's per-element input quantizer, and ``activation_type`` is the widest of those.
    """

    name: str
    inputs: ElementQuantizer
    kernel: np.ndarray  # (n_in, n_out) int64 at kernel_frac
    kernel_frac: int
    bias: np.ndarray  # (n_out,) int64 at bias_frac
    bias_frac: int
    relu: bool
    accum_type: FixedType | None = None
    activation_type: FixedType | None = None
    activation_name: str | None = None

    @property
    def weight_codes(self) -> np.ndarray:
        """The kernel's integer codes (at :attr:`weight_type`)."""
        return self.kernel

    @property
    def bias_codes(self) -> np.ndarray:
        """The bias's integer codes (at :attr:`bias_type`)."""
        return self.bias

    @property
    def weight_type(self) -> FixedType:
        """The narrowest type holding every kernel code."""
        return codes_type(self.kernel, self.kernel_frac)

    @property
    def bias_type(self) -> FixedType:
        """The narrowest type holding every bias code."""
        return codes_type(self.bias, self.bias_frac)

    @property
    def acc_frac(self) -> int:
        """Fractional bits of the accumulator."""
        return max(self.inputs.grid + self.kernel_frac, self.bias_frac)

    def codes(self, codes: np.ndarray, frac: int) -> tuple[np.ndarray, int]:
        """Quantize the previous stage's codes, integer matmul + bias (+ ReLU); codes at the accumulator's frac."""
        return self.accumulate(self.inputs.from_codes(codes, frac))

    def linear(self, x: np.ndarray) -> np.ndarray:
        """Quantized inputs (codes on the input grid) → integer matmul + bias, at :attr:`acc_frac`."""
        product = x @ self.kernel << (self.acc_frac - self.inputs.grid - self.kernel_frac)
        return product + (self.bias << (self.acc_frac - self.bias_frac))

    def accumulate(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Quantized inputs (codes on the input grid) → integer matmul + bias (+ ReLU), at the accumulator's frac."""
        acc = self.linear(x)
        return (np.maximum(acc, 0) if self.relu else acc), self.acc_frac

    def accumulator_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per output, the smallest and largest accumulator code over every input in the quantizer's range."""
        q = self.inputs
        lo, hi = q._on_grid(q.lo)[0], q._on_grid(q.hi)[0]
        shift = self.acc_frac - q.grid - self.kernel_frac
        k = self.kernel
        low = (np.minimum(k * lo[:, None], k * hi[:, None]).sum(axis=0) << shift) + (self.bias << (self.acc_frac - self.bias_frac))
        high = (np.maximum(k * lo[:, None], k * hi[:, None]).sum(axis=0) << shift) + (self.bias << (self.acc_frac - self.bias_frac))
        return low, high


def codes_type(codes: np.ndarray, frac: int) -> FixedType:
    """The narrowest fixed-point type (``frac`` fractional bits) holding every one of ``codes`` and 0."""
    codes = np.asarray(codes, np.int64)
    lo, hi = min(int(codes.min(initial=0)), 0), max(int(codes.max(initial=0)), 0)
    return type_for_range(lo * 2.0**-frac, hi * 2.0**-frac, frac)


@dataclass
class HGQNetwork:
    """The exact int64 chain of an HGQ2 MLP; outputs are the last accumulator (logits).

    It answers as a :class:`~qtrigger.emulate.network.QuantizedNetwork` does (``forward_codes`` in codes of
    :attr:`output_type`, ``input_type``, ``stages``), so that a run's stages take it unchanged. ``input_type``
    is the widest type of the first layer's learned input quantizers: the firmware's input word.
    """

    stages: list[HGQDenseStage]
    input_name: str = "inputs"
    input_quantizer_name: str | None = None
    rounding_note = "the trained quantizers' own (HGQ2, per element): equal to the trained model"

    @property
    def input_type(self) -> FixedType:
        """The widest of the first layer's learned input types (sign included), on the finest learned grid."""
        q = self.stages[0].inputs
        return codes_type(np.concatenate([q._on_grid(q.lo).ravel(), q._on_grid(q.hi).ravel()]), q.grid)

    @property
    def output_type(self) -> FixedType:
        """Type of the network's output values: the last accumulator's."""
        return self.stages[-1].accum_type

    def extra_layer_precisions(self) -> dict:
        """Precisions of layers that are not dense stages (none)."""
        return {}

    def model_inputs(self, x: np.ndarray) -> np.ndarray:
        """What the Keras and the hls4ml model take for inputs ``x``: ``x`` itself (contiguous float64)."""
        return np.ascontiguousarray(x, dtype=np.float64)

    def forward_codes(self, x: np.ndarray, return_all: bool = False):
        """Exact output codes of :attr:`output_type` for float inputs (saturated by the first quantizer);
        with ``return_all`` also every stage's codes and type (input, accumulators, quantized activations)."""
        first = self.stages[0]
        codes = first.inputs.from_float(np.asarray(x, np.float64))
        trace = {self.input_name: (codes, self.input_type)}
        for index, stage in enumerate(self.stages):
            acc = stage.linear(codes)
            trace[stage.name] = (acc, stage.accum_type)
            if index + 1 < len(self.stages):
                codes = self.stages[index + 1].inputs.from_codes(np.maximum(acc, 0) if stage.relu else acc,
                                                                 stage.acc_frac)
                trace[stage.activation_name] = (codes, stage.activation_type)
        return (acc, trace) if return_all else acc

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Exact output values (float64)."""
        return self.forward_codes(x).astype(np.float64) * self.output_type.lsb

    def input_widths(self) -> np.ndarray:
        """Learned bits of every network input (sign included), as the first layer quantizes them."""
        q = self.stages[0].inputs
        return np.where(q.hi > q.lo, np.ceil(np.log2(np.maximum(q.hi - q.lo + 1, 1))), 0).astype(np.int64)


def extract_hgq_network(model) -> HGQNetwork:
    """Read a trained HGQ2 MLP (QDense layers with input quantizers, ReLU or linear) into :class:`HGQNetwork`.

    The first QDense's input quantizer is its own (``enable_iq``) or a standalone HGQ2 ``Quantizer`` layer in
    front of it; a first layer with neither is refused in one line (``hls check`` puts the inputs' grid there
    first: :func:`qtrigger.firmware.hgq.with_input_quantizer`).
    """
    stages = _read_stages(model)
    wraps = {name: counts for name, counts in reachable_wraps(stages).items() if counts[0]}
    if wraps:
        raise QTriggerError("HGQ2 wrap mode where the saturated input range can overflow ("
                            + ", ".join(f"{name}: {n} of {total} elements" for name, (n, total) in wraps.items())
                            + "); qtrigger saturates there: use overflow_mode SAT for these quantizers")
    for stage in stages:  # proven: no reachable input wraps, so wrapping and saturating give the same codes
        stage.inputs.wrap = False
    return HGQNetwork(stages, _input_name(model))


def reachable_wraps(stages: list[HGQDenseStage]) -> dict[str, tuple[int, int]]:
    """Per wrapping input quantizer: (elements that can overflow, elements) over every network input.

    Interval arithmetic: the network inputs are unbounded (a wrapping first quantizer always can); a later
    layer's inputs are the previous stage's accumulator over its own quantized input range (each element in
    [lo, hi], whether it saturates or is proven not to wrap), after ReLU, rounded onto each element's grid.
    A 0-bit element (always 0) cannot overflow.
    """
    counts = {}
    for index, stage in enumerate(stages):
        q = stage.inputs
        if not q.wrap:
            continue
        live = (q.hi != q.lo) | (q.lo != 0)
        if index == 0:
            reachable = live
        else:
            previous = stages[index - 1]
            low, high = previous.accumulator_bounds()
            if previous.relu:
                low, high = np.maximum(low, 0), np.maximum(high, 0)
            frac = previous.acc_frac
            reachable = live & ((_round_to(low, frac, q) < q.lo) | (_round_to(high, frac, q) > q.hi))
        counts[q.quantizer_name or stage.name] = (int(np.count_nonzero(reachable)), int(reachable.size))
    return counts


def _round_to(codes: np.ndarray, frac: int, q: ElementQuantizer) -> np.ndarray:
    """Accumulator codes at ``frac`` rounded (not saturated) onto each element's own grid, as ``q`` rounds."""
    codes = np.broadcast_to(np.asarray(codes, np.int64), q.frac.shape)
    down, up = np.maximum(frac - q.frac, 0), np.maximum(q.frac - frac, 0)
    half = np.where((down > 0) & (q.rounding == "RND"), np.left_shift(1, np.maximum(down - 1, 0)), 0)
    return np.right_shift(codes + half, down) * np.left_shift(np.int64(1), up)


def _read_stages(model) -> list[HGQDenseStage]:
    """The model's QDense stages with their types derived; wrapping input quantizers not yet proven."""
    layers = [layer for layer in model.layers if type(layer).__name__ not in ("InputLayer", "Dropout")]
    leading = layers.pop(0) if layers and type(layers[0]).__name__ == "Quantizer" else None
    stages = []
    for index, layer in enumerate(layers):
        if type(layer).__name__ != "QDense":
            raise QTriggerError(f"layer {layer.name}: the HGQ2 reference reads QDense layers only, not "
                                f"{type(layer).__name__}")
        stages.append(_stage(layer, last=index == len(layers) - 1, front=leading if index == 0 else None))
    if not stages:
        raise QTriggerError(f"model {model.name}: no QDense layer")
    _derive_types(stages)
    return stages


def settle_wraps(model) -> dict[str, dict[str, int]]:
    """Keep HGQ2's wrap mode on each input quantizer where no wrap is reachable (:func:`reachable_wraps`), call
    every other wrapping one saturate (:func:`qtrigger.models.hgq.saturate_quantizer`); per wrapping quantizer,
    what was found and done.

    Saturating a quantizer changes no code that cannot overflow, so the model then equals its reference on
    every input (``quantization.hgq.overflow_mode: WRAP`` runs call it before saving the model).
    """
    quantizers = {q.name: q for layer in model.layers for q in [layer if type(layer).__name__ == "Quantizer"
                                                                  else getattr(layer, "iq", None)] if q is not None}
    report = {}
    for name, (reachable, total) in reachable_wraps(_read_stages(model)).items():
        if reachable:
            saturate_quantizer(quantizers[name])
        report[name] = {"elements": total, "wrap_reachable": reachable, "saturated": int(reachable > 0)}
    if any(entry["saturated"] for entry in report.values()):  # Keras traced functions still hold the wrap
        model.train_function = model.test_function = model.predict_function = None
    return report


def has_hgq_input_quantizer(model) -> bool:
    """True when the HGQ2 model quantizes its inputs: a leading ``Quantizer`` layer or the first QDense's own."""
    layers = [layer for layer in model.layers if type(layer).__name__ not in ("InputLayer", "Dropout")]
    if not layers:
        return False
    return type(layers[0]).__name__ == "Quantizer" or bool(getattr(layers[0], "enable_iq", False))


def _input_name(model) -> str:
    """The model's input layer name (hls4ml names its input after it)."""
    names = getattr(model, "input_names", None) or [getattr(t, "name", "inputs") for t in model.inputs]
    return str(names[0]).split(":")[0]


def _derive_types(stages: list[HGQDenseStage]) -> None:
    """Each stage's exact accumulator type over its saturated inputs, and the type of the next layer's quantized
    inputs (the stage's activation: ReLU, then the next per-element input quantizer)."""
    for index, stage in enumerate(stages):
        low, high = stage.accumulator_bounds()
        stage.accum_type = codes_type(np.concatenate([low, high]), stage.acc_frac)
        if index + 1 < len(stages):
            q = stages[index + 1].inputs
            stage.activation_type = codes_type(np.concatenate([q._on_grid(q.lo).ravel(), q._on_grid(q.hi).ravel()]),
                                               q.grid)
            stage.activation_name = f"{stage.name}_{'relu' if stage.relu else 'linear'}"


def _stage(layer, last: bool, front=None) -> HGQDenseStage:
    """One QDense as integer codes; its activation must be ReLU (hidden) or linear (output). ``front``: a
    standalone ``Quantizer`` layer before the first QDense, which then quantizes the network inputs."""
    activation = getattr(layer.activation, "__name__", str(layer.activation))
    if activation not in ("relu", "linear"):
        raise QTriggerError(f"layer {layer.name}: activation {activation!r}; the HGQ2 reference reads relu or linear")
    if last and activation == "relu":
        raise QTriggerError(f"layer {layer.name}: the last layer must be linear (its accumulator is the logit)")
    if front is not None and layer.enable_iq:
        raise QTriggerError(f"layer {layer.name}: quantizes its inputs twice (Quantizer layer {front.name} and its "
                            "own input quantizer)")
    if front is None and not layer.enable_iq:
        raise QTriggerError(f"layer {layer.name}: no input quantizer (enable_iq=False and no HGQ2 Quantizer layer "
                            "in front), so its input grid is undefined")
    n_in, n_out = layer.kernel.shape
    inputs = element_quantizer(front if front is not None else layer.iq, (1, int(n_in)))
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
    before any input arrives. A wrapping input or activation quantizer is read with ``wrap`` set;
    :func:`extract_hgq_network` then proves it never wraps or refuses it (:func:`reachable_wraps`).
    """
    inner = quantizer.quantizer
    overflow, rounding = inner.overflow_mode, inner.round_mode
    if overflow not in ("SAT", "SAT_SYM", "WRAP") or rounding not in ("RND", "TRN"):
        raise QTriggerError(f"quantizer {quantizer.name}: {rounding}/{overflow}; the exact reference reads "
                            "RND or TRN rounding with SAT, SAT_SYM or (where no wrap is reachable) WRAP overflow")
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
                            wrap=overflow == "WRAP", quantizer_name=quantizer.name)


def _integers(values, name: str) -> np.ndarray:
    """A learned width as integers (HGQ2 rounds its trainable widths at inference)."""
    array = np.asarray(values, np.float64)
    if not np.array_equal(array, np.round(array)):
        raise QTriggerError(f"quantizer {name}: widths {array.ravel()[:4]} are not integers")
    return array.astype(np.int64)
