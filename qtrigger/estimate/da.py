"""Cost of hls4ml's distributed-arithmetic (da4ml) kernels: an estimate, not a tool result.

With ``Strategy: distributed_arithmetic`` (``hls.strategy`` in the config) hls4ml asks
da4ml, for each Dense layer, for a shift-and-add solution of the constant matrix-vector
product and writes it as *combinational C++* (``dense_da_<index>`` in
``firmware/nnet_utils/nnet_code_gen.h``, ``#pragma HLS INLINE``); Vivado/Vitis HLS then
schedules it with hls4ml's own activation layers, as in the Latency strategy. hls4ml
stores da4ml's cost of that kernel in ``node.attributes['da_kernel_cost']``: da4ml's
LUT-equivalent count of the adder graph (with hls4ml's ``HWConfig(1, -1, -1)`` every
adder costs one unit per bit it adds). It covers only the kernel: no activation, no
register, no HLS control. :func:`da_estimate` collects it (``kernel_cost``) and adds the
activations and a latency from the kernel's adder depth, with the same device delays as
:func:`qtrigger.estimate.latency.estimate_latency_strategy` (``verification: "estimate"``).
da4ml's standalone Verilog of the whole network is :mod:`qtrigger.firmware.rtl`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from qtrigger.device import DEFAULT_PART, device_family, usable_clock_ns
from qtrigger.emulate.network import QuantizedNetwork
from qtrigger.errors import QTriggerError
from qtrigger.estimate.latency import activation_cost
from qtrigger.firmware.csim import compare_codes, csim_predict_codes
from qtrigger.firmware.rtl import da4ml_trace, default_latency_cutoff, verilog_summary

METHOD = "da4ml-kernel-cost"



def _hls_model(project_or_hls_model):
    return getattr(project_or_hls_model, "model", project_or_hls_model)


_OP_LINE = re.compile(r"^\s*(ap_u?fixed<(-?\d+),\s*(-?\d+)>)\s+v(\d+)\s*=\s*(.*);\s*//\s*(-?[\d.]+)\s*$")
_ADD = re.compile(r"^v\d+ [+-] (?:bit_shift<-?\d+>\()?v\d+\)?$")
_CONST_ADD = re.compile(r"^v\d+ [+-] ap_u?fixed<")


def kernel_statistics(code: str, function: str) -> dict:
    """Adders, constant adders and adder depth of one da4ml-generated C++ kernel.

    Parsed from the SSA lines da4ml writes (``type vN = expr; // latency``), where the
    latency is da4ml's adder depth (every adder one level with ``carry_size = -1``).
    """
    match = re.search(rf"void {re.escape(function)}\s*\(", code)
    if not match:
        raise QTriggerError(f"DA kernel {function} not found in the generated firmware")
    body = code[match.end():]
    body = body[: body.find("\n}")]
    adders = const_adders = negations = 0
    depth, widest = 0.0, 0
    for line in body.splitlines():
        op = _OP_LINE.match(line)
        if not op:
            continue
        width, expr, latency = int(op.group(2)), op.group(5).strip(), float(op.group(6))
        depth = max(depth, latency)
        if _ADD.match(expr):
            adders += 1
            widest = max(widest, width)
        elif _CONST_ADD.match(expr):
            const_adders += 1
            widest = max(widest, width)
        elif expr.startswith("-v"):
            negations += 1
    return {"adders": adders, "const_adders": const_adders, "negations": negations,
            "adder_depth": int(depth), "widest_adder_bits": widest}


def verify_da_firmware(project_or_hls_model, network: QuantizedNetwork) -> list[dict]:
    """Check that every Dense layer of ``network`` went through hls4ml's DA pass.

    For each layer: the strategy, ``da_kernel_cost``, the generated kernel (from the
    layer's ``da_codegen`` and, when the project is written, in
    ``firmware/nnet_utils/nnet_code_gen.h``) and its call in the top-level function.
    Raises QTriggerError naming the first layer that was not converted with DA.
    """
    hls_model = _hls_model(project_or_hls_model)
    layers = {layer.name: layer for layer in hls_model.get_layers()}
    out_dir = Path(hls_model.config.get_output_dir())
    firmware = out_dir / "firmware"
    code_gen = firmware / "nnet_utils" / "nnet_code_gen.h"
    top = firmware / f"{hls_model.config.get_project_name()}.cpp"
    code_text = code_gen.read_text() if code_gen.is_file() else None
    top_text = top.read_text() if top.is_file() else None
    found = []
    for stage in network.stages:
        layer = layers.get(stage.name)
        if layer is None:
            raise QTriggerError(f"layer {stage.name}: not in the hls4ml model")
        strategy = layer.get_attr("strategy")
        cost = layer.get_attr("da_kernel_cost")
        if str(strategy).lower() != "distributed_arithmetic" or cost is None:
            raise QTriggerError(
                f"layer {stage.name}: strategy {strategy!r}, no da_kernel_cost; convert with hls.strategy=distributed_arithmetic"
            )
        function = f"dense_da_{layer.index}"
        source = layer.get_attr("da_codegen")
        source_code = getattr(source, "code", None) or str(source or "")
        in_memory = f"void {function}(" in source_code
        in_file = None if code_text is None else f"void {function}(" in code_text
        called = None if top_text is None else f"dense_da_{layer.index}<" in top_text
        if not in_memory or in_file is False or called is False:
            raise QTriggerError(
                f"layer {stage.name}: DA kernel {function} missing from the generated firmware "
                f"(in da_codegen: {in_memory}, in {code_gen.name}: {in_file}, called in {top.name}: {called})"
            )
        found.append({"layer": stage.name, "function": function, "kernel_cost": float(cost),
                      "in_nnet_code_gen_h": in_file, "called_in_top": called,
                      "statistics": kernel_statistics(code_text if in_file else source_code, function)})
    return found


def da_estimate(project_or_hls_model, network: QuantizedNetwork, clock_period_ns: float, part: str | None = None,
                x: np.ndarray | None = None, include_verilog: bool = False) -> dict:
    """LUT/latency estimate of an hls4ml project converted with the DA strategy.

    ``kernel_cost`` is the sum of hls4ml's ``da_kernel_cost`` (da4ml's LUT-equivalent cost
    of each combinational kernel); ``lut`` adds the activations (same per-output LUT model
    as the Latency estimate; they are hls4ml's own layers in both strategies).
    ``latency_cycles``: per layer, ``adder_depth * t_add(widest adder) + activation delay``
    cut every usable clock period, summed (device delays of ``qtrigger.device``); how
    Vivado/Vitis HLS really schedules the kernel is known only from its report. ``ff`` is
    not estimated (it depends on where HLS places registers). With ``x``, the project's
    C-simulation is compared with the exact integer reference (``csim``); with
    ``include_verilog``, da4ml's standalone Verilog of the whole network is traced (no
    compilation) and summarised under ``da4ml_verilog`` — a different artefact.
    """

    if not clock_period_ns or clock_period_ns <= 0:
        raise QTriggerError(f"clock_period_ns={clock_period_ns!r}: expected a positive clock period in ns")
    hls_model = _hls_model(project_or_hls_model)
    part = part or hls_model.config.get_config_value("Part") or DEFAULT_PART
    family = device_family(part)
    usable = usable_clock_ns(clock_period_ns)
    kernels = verify_da_firmware(hls_model, network)
    per_layer = []
    for stage, kernel in zip(network.stages, kernels):
        stats = kernel["statistics"]
        act_lut, act_delay = activation_cost(stage, family)
        width = stats["widest_adder_bits"] or stage.accum_type.width
        path = stats["adder_depth"] * family.t_add(width) + act_delay
        n_in, n_out = np.asarray(stage.weight_codes).shape
        per_layer.append({
            "name": stage.name,
            "function": kernel["function"],
            "n_in": int(n_in),
            "n_out": int(n_out),
            "kernel_cost": kernel["kernel_cost"],
            **stats,
            "activation_lut": act_lut * int(n_out),
            "path_ns": round(path, 3),
            "cycles": max(1, math.ceil(path / usable - 1e-9)),
        })
    kernel_cost = sum(layer["kernel_cost"] for layer in per_layer)
    cycles = sum(layer["cycles"] for layer in per_layer)
    result = {
        "method": METHOD,
        "verification": "estimate",
        "strategy": "distributed_arithmetic",
        "per_layer": per_layer,
        "kernel_cost": kernel_cost,
        "lut": int(round(kernel_cost)) + sum(layer["activation_lut"] for layer in per_layer),
        "dsp": 0,
        "ff": None,
        "bram": 0,
        "latency_cycles": cycles,
        "latency_ns": round(cycles * clock_period_ns, 3),
        "ii": 1,
        "clock_period_ns": float(clock_period_ns),
        "part": str(part),
        "firmware_check": {k["layer"]: {"function": k["function"], "in_nnet_code_gen_h": k["in_nnet_code_gen_h"],
                                        "called_in_top": k["called_in_top"]} for k in kernels},
        "note": (
            "kernel_cost = sum of hls4ml's da_kernel_cost: da4ml's LUT-equivalent cost of each Dense layer's "
            "combinational shift-and-add kernel (adders only; one unit per adder bit). Vivado/Vitis HLS pipelines "
            "that C++ with the rest of the design, so registers, control and the real schedule come from its "
            "report only. lut = kernel_cost + activation LUTs (the Latency estimate's activation model). dsp = 0: "
            "the kernels are shifts and adds, no multiplier. latency_cycles is this module's estimate from the "
            "kernels' adder depth, not an HLS result; ff is not estimated."
        ),
    }
    if x is not None:
        if not hasattr(project_or_hls_model, "model"):
            raise QTriggerError("da_estimate(x=...): pass the HLSProject (compiled) to C-simulate")
        comparison = compare_codes(csim_predict_codes(project_or_hls_model, network, x),
                                   network.forward_codes(x), network.output_type)
        result["csim"] = comparison.summary()
    if include_verilog:
        comb = da4ml_trace(network)[0]
        cutoff = default_latency_cutoff(network, clock_period_ns, part)
        result["da4ml_verilog"] = verilog_summary(comb, cutoff, clock_period_ns)
    return result


