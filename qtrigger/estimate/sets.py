"""The analytic estimate's DeepSets parts (:class:`~qtrigger.emulate.sets.SetNetwork`) and their LUT calibration.

φ runs once per constituent slot (hls4ml's io_parallel pointwise convolution unrolls it, and the set RTL
of :mod:`qtrigger.firmware.set_rtl` builds one copy per slot), so each φ layer counts ``cap`` times
(``instances``); the global pooling adds ``cap - 1`` accumulator-width adders per channel (mean; the
division by the power-of-two cap is wiring) or compare-and-select pairs (max), depth ``ceil(log2 cap)``;
ρ layers count once. The first φ layer reads each field at its own word when the run gives them
(``input_words``: the constituent level's ``Preprocessor.word_types()``, the words the set RTL's ports take).

Calibration (LUT only). The model counts every adder of a tree at the layer's accumulator width, while
da4ml's RTL adds at the partial sums' own widths and shares subexpressions; for set networks, whose
φ copies dominate, the model gave 1.7-1.9x the yosys LUTs of the da4ml RTL. A set network's ``lut`` is
therefore the model's LUTs times :data:`SET_LUT_FACTOR`, fitted so that the mean of estimate / yosys is 1
on the constituent networks of ``docs/firmware.md`` ("The analytic estimate against yosys";
``benchmarks/deepsets_front.py`` prints the fit as ``calibration_fit``). The uncalibrated sum stays in
``calibration.lut_model`` and in the per-layer figures. FF, DSP and latency are not calibrated. An MLP's
estimate is not calibrated (it models hls4ml's Latency strategy, a different design from da4ml's).
"""

from __future__ import annotations

import math

from qtrigger.device import DeviceFamily, usable_clock_ns

# yosys LUT / model LUT of set networks: 1 / mean(model / yosys) = 0.553 over the 8 networks of docs/firmware.md.
SET_LUT_FACTOR = 0.55
CALIBRATION_BASIS = "yosys LUT of the da4ml set RTL, fitted on docs/firmware.md 'The analytic estimate against yosys'"


def ceil_log2(n: int) -> int:
    """Depth of a binary tree over ``n`` terms (0 for n <= 1)."""
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


def pooling_layer(pooling, in_width: int, channels: int, clock_period_ns: float, family: DeviceFamily) -> dict:
    """A global pooling over ``pooling.cap`` slots of ``channels`` values: a tree of cap - 1 adders
    (mean, at the accumulator width; the division by cap is wiring) or comparator-muxes (max) per channel."""
    width = pooling.accum_type.width if pooling.kind == "mean" else in_width
    depth = ceil_log2(pooling.cap)
    per_op = width if pooling.kind == "mean" else 2 * width  # max: compare (carry chain) + select mux
    delay = depth * (family.t_add(width) + (family.t_lut_ns if pooling.kind == "max" else 0.0))
    cycles = max(1, math.ceil(delay / usable_clock_ns(clock_period_ns) - 1e-9))
    lut = channels * (pooling.cap - 1) * per_op
    return {"name": pooling.name, "n_in": pooling.cap * channels, "n_out": channels, "pooling": pooling.kind,
            "accum_width": width, "output_width": pooling.result_type.width, "tree_depth": depth,
            "path_ns": round(delay, 3), "cycles": cycles, "lut": {"tree": lut}, "lut_total": lut, "dsp": 0,
            "ff": channels * pooling.result_type.width}


def _per_constituent(layer: dict, cap: int) -> dict:
    """A φ layer built once per constituent slot."""
    return {**layer, "instances": cap, "lut_total": layer["lut_total"] * cap, "ff": layer["ff"] * cap,
            "dsp": layer["dsp"] * cap}


def set_network_layers(network, layers: list[dict], clock_period_ns: float, family: DeviceFamily) -> list[dict]:
    """The per-layer estimates of a SetNetwork's φ and ρ stages (in order) → φ once per slot, the pooling, ρ."""
    pooling, n_phi = network.pooling, len(network.phi)
    last_phi = network.phi[-1]
    in_width = (last_phi.activation_type or last_phi.accum_type).width
    return [*(_per_constituent(layer, pooling.cap) for layer in layers[:n_phi]),
            pooling_layer(pooling, in_width, layers[n_phi - 1]["n_out"], clock_period_ns, family), *layers[n_phi:]]


def calibrated_lut(lut_model: int) -> tuple[int, dict]:
    """A set network's LUTs: (the model's ``lut_model`` times :data:`SET_LUT_FACTOR`, the ``calibration`` record)."""
    return round(lut_model * SET_LUT_FACTOR), {"lut_factor": SET_LUT_FACTOR, "lut_model": int(lut_model),
                                               "basis": CALIBRATION_BASIS}
