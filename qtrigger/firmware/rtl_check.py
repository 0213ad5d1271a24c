"""The RTL check: the network's da4ml Verilog simulated in Verilator against the exact integer reference.

Stimulus: every test row, rows at rounding ties and rows beyond the input range (:func:`rtl_stimulus`).
With QKeras rounding (``half_even``) the RTL must equal the trained model; with da4ml's ``half_up`` it is
checked against a half-up reference and the rows where the two roundings differ are traced
(:func:`first_divergence`, :func:`rounding_disagreements`). Tracing and Verilator set-up are
:mod:`qtrigger.firmware.rtl`.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np

from qtrigger.device import DEFAULT_PART
from qtrigger.emulate.network import QuantizedNetwork, dense_codes, requantize
from qtrigger.errors import QTriggerError
from qtrigger.firmware.csim import overrange_values, tie_rows
from qtrigger.firmware.rtl import (
    RAW_EXTRA_BITS,
    _environment,
    _require_da4ml,
    da4ml_trace,
    default_latency_cutoff,
    rounding_reference,
    verilator_environment,
    verilator_version,
    verilog_summary,
)
from qtrigger.fixedpoint import FixedType


def _snap(values: np.ndarray, fixed: FixedType) -> np.ndarray:
    """Values as the RTL input word carries them: truncated to its grid, saturated at its range."""
    return fixed.with_modes("TRN", "SAT").quantize(values)


def rtl_stimulus(network: QuantizedNetwork, x: np.ndarray, raw: FixedType, n_ties: int, n_overrange: int,
                 seed: int = 1) -> dict[str, np.ndarray]:
    """Real jets, rows on input rounding ties, rows beyond the input range — all on the raw input grid.

    Ties: every feature of a random real jet moved by +-half an input LSB (so the input
    quantizer rounds a tie in every column). Over-range: one feature of a random jet set
    to +-(1..3.5) x the input type's largest value (saturation; the raw word clips a
    negative value of an unsigned input at 0). Drawn by :mod:`qtrigger.firmware.csim`.
    """

    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float64)
    ties = tie_rows(x[rng.integers(0, len(x), size=n_ties)], network.input_type, rng)
    over = x[rng.integers(0, len(x), size=n_overrange)].copy()
    values = overrange_values(network.input_type, n_overrange, rng, 3.5)
    over[np.arange(n_overrange), rng.integers(0, x.shape[1], size=n_overrange)] = values
    return {"real": _snap(x, raw), "ties": _snap(ties, raw), "overrange": _snap(over, raw)}


def _to_codes(values: np.ndarray, fixed: FixedType) -> tuple[np.ndarray, int]:
    return fixed.nearest_codes(values), fixed.count_off_grid(values)


def _differing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a.reshape(len(a), -1) != b.reshape(len(b), -1)).any(axis=1)


def first_divergence(network: QuantizedNetwork, reference: QuantizedNetwork, x: np.ndarray) -> dict:
    """Per jet, the first traced layer where ``reference`` and ``network`` differ; counted by layer."""
    _, trace_a = network.forward_codes(x, return_all=True)
    _, trace_b = reference.forward_codes(x, return_all=True)
    pending = np.ones(len(x), bool)
    counts: dict[str, int] = {}
    for name, (codes_a, _) in trace_a.items():
        diff = _differing(codes_a, trace_b[name][0]) & pending
        if diff.any():
            counts[name] = int(diff.sum())
        pending &= ~diff
    return counts


def rounding_disagreements(network: QuantizedNetwork, x: np.ndarray) -> dict[str, int]:
    """Per rounded quantity, the values (not jets) that round to different codes half up vs half to even.

    Counted along the QKeras-exact path: the input quantizer on ``x``, then each
    activation on the exact accumulators. These are exactly the ties (discarded bits
    = half an LSB) whose kept code is even and that survive saturation.
    """

    def half_up(fixed: FixedType) -> FixedType:
        return fixed.with_modes("RND", fixed.saturation) if fixed.rounding == "RND_CONV" else fixed

    it = network.input_type
    codes = it.quantize_codes(x)
    counts = {network.input_quantizer_name or network.input_name:
              int(np.count_nonzero(codes != half_up(it).quantize_codes(x)))}
    frac = it.frac
    for stage in network.stages:
        codes, frac = dense_codes(codes, frac, stage)
        target = stage.activation_type
        if target is None:
            continue
        rounded = requantize(codes, frac, target)
        counts[stage.activation_name] = int(np.count_nonzero(rounded != requantize(codes, frac, half_up(target))))
        codes, frac = rounded, target.frac
    return counts


def rtl_check(network: QuantizedNetwork, x: np.ndarray, directory, n_ties: int = 2000, clock_period_ns: float = 5.0,
              n_overrange: int = 1000, rounding: str = "half_even", part: str | None = None,
              latency_cutoff: float | None = None, raw_extra_bits: tuple[int, int] = RAW_EXTRA_BITS,
              seed: int = 1, nproc: int = 2) -> dict:
    """Trace the network with da4ml, write its Verilog, build it with Verilator and simulate.

    Compares on real jets ``x``, ``n_ties`` rows on input rounding ties and ``n_overrange``
    saturating rows: (a) the Verilator RTL, (b) da4ml's interpreter (``CombLogic.predict``)
    and (c) the numpy integer reference that rounds as the RTL does (:func:`rounding_reference`);
    ``exact`` is true when all three agree everywhere. Then counts, per set, the jets
    whose output differs from the QKeras-exact reference (``network.forward_codes``) and
    the first layer where they diverge. Raises QTriggerError if Verilator is unavailable.
    """
    _require_da4ml()
    from da4ml.codegen import VerilogModel

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    env = verilator_environment(directory / "tools")
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) == 0 or x.shape[1] != np.asarray(network.stages[0].weight_codes).shape[0]:
        raise QTriggerError(f"inputs of shape {x.shape}: expected (jets, {np.asarray(network.stages[0].weight_codes).shape[0]})")
    cutoff = float(latency_cutoff) if latency_cutoff else float(default_latency_cutoff(network, clock_period_ns, part))

    start = time.perf_counter()
    comb, raw = da4ml_trace(network, rounding, raw_extra_bits)
    trace_seconds = time.perf_counter() - start
    costs = {rounding: float(comb.cost)}
    other = "half_up" if rounding == "half_even" else "half_even"
    costs[other] = float(da4ml_trace(network, other, raw_extra_bits)[0].cost)
    in_bits, out_bits = int(max(np.sum(comb.inp_kifs, axis=0))), int(max(np.sum(comb.out_kifs, axis=0)))
    if in_bits > 32 or out_bits > 32:
        raise QTriggerError(f"RTL ports of {in_bits}/{out_bits} bits per value: da4ml's Verilator binder handles up to 32")
    sets = rtl_stimulus(network, x, raw, n_ties, n_overrange, seed)

    model = VerilogModel(comb, "qtrigger_net", directory / "rtl", latency_cutoff=cutoff, clock_period=clock_period_ns,
                         part_name=part or DEFAULT_PART)
    start = time.perf_counter()
    with _environment(env):
        try:
            model.compile(openmp=False, nproc=max(1, int(nproc)))
        except (RuntimeError, subprocess.CalledProcessError) as err:
            raise QTriggerError(f"Verilator build in {directory / 'rtl'} failed ({err}); check the compiler output above") from None
    compile_seconds = time.perf_counter() - start

    reference = rounding_reference(network, rounding)
    out_type = network.output_type
    results, start = {}, time.perf_counter()
    for name, rows in sets.items():
        if len(rows) == 0:
            continue
        rtl_codes, rtl_off = _to_codes(model.predict(rows), out_type)
        interp_codes, interp_off = _to_codes(comb.predict(rows, n_threads=1), out_type)
        ref_codes = reference.forward_codes(rows)
        qkeras_codes = network.forward_codes(rows)
        diff_qkeras = _differing(rtl_codes, qkeras_codes)  # measured on the RTL's outputs
        results[name] = {
            "rows": int(len(rows)),
            "off_grid_outputs": {"rtl": rtl_off, "interpreter": interp_off},
            "mismatches": {
                "rtl_vs_interpreter": int(_differing(rtl_codes, interp_codes).sum()),
                "rtl_vs_reference": int(_differing(rtl_codes, ref_codes).sum()),
                "interpreter_vs_reference": int(_differing(interp_codes, ref_codes).sum()),
            },
            "qkeras_differences": {
                "jets": int(diff_qkeras.sum()),
                "max_abs_diff_lsb": int(np.abs(rtl_codes.reshape(ref_codes.shape) - qkeras_codes).max(initial=0)),
                "first_divergence": first_divergence(reference, network, rows),
                "values_rounding_differently": rounding_disagreements(network, rows),
            },
        }
    simulate_seconds = time.perf_counter() - start
    exact = all(not any(r["mismatches"].values()) and not any(r["off_grid_outputs"].values()) for r in results.values())
    return {
        "method": "da4ml-verilog + verilator",
        "verification": "rtl-simulation",
        "exact": exact,
        "rounding": rounding,
        "rounding_cost_lut": {**costs, "half_up_saving": costs["half_even"] - costs["half_up"],
                              "note": "da4ml LUT-equivalents; half_up is cheaper but not equal to the trained model"},
        "reference": ("numpy int64, QKeras-exact (round half to even, built from da4ml ops)" if rounding == "half_even"
                      else "numpy int64, rounding as da4ml: TRN stays TRN, RND_CONV -> RND (round half up)"),
        "sets": results,
        "jets": results.get("real", {}).get("rows", 0),
        "mismatched_jets": sum(max(r["mismatches"].values()) for r in results.values()),
        "qkeras_differing_jets": results.get("real", {}).get("qkeras_differences", {}).get("jets", 0),
        "explanation": explain_qkeras_differences(results, rounding),
        "raw_input_type": str(raw),
        "input_type": str(network.input_type),
        "output_type": str(out_type),
        "da4ml_verilog": verilog_summary(comb, cutoff, clock_period_ns),
        "verilator": verilator_version(env),
        "directory": str(directory / "rtl"),
        "seconds": {"trace": round(trace_seconds, 1), "verilator_build": round(compile_seconds, 1),
                    "simulate": round(simulate_seconds, 1)},
    }


def explain_qkeras_differences(results: dict, rounding: str) -> str:
    """One paragraph: how many jets differ from QKeras, where they diverge first, and why."""
    if rounding == "half_even":
        total = sum(r["qkeras_differences"]["jets"] for r in results.values())
        return (f"RTL rounds half to even like QKeras; {total} jets differ from the QKeras-exact reference "
                "across all sets.")
    parts = []
    for name, r in results.items():
        q = r["qkeras_differences"]
        where = ", ".join(f"{layer}: {n}" for layer, n in q["first_divergence"].items()) or "none"
        ties = ", ".join(f"{layer}: {n}" for layer, n in q["values_rounding_differently"].items() if n) or "none"
        parts.append(f"{name}: {q['jets']} of {r['rows']} jets differ (max {q['max_abs_diff_lsb']} LSB); first "
                     f"divergence by layer: {where}; values rounding differently (QKeras path): {ties}")
    return (
        "da4ml rounds half up (floor(x + lsb/2)), QKeras rounds half to even; the two disagree only when the "
        "discarded bits are exactly half an LSB and the kept code is even. Such ties occur at the input quantizer "
        "for inputs half an LSB off the input grid, and at every activation whose accumulator has more fractional "
        "bits than the activation type. A diverged hidden value can be masked later (ReLU clip, zero weight, "
        "later rounding). " + "; ".join(parts)
        + ". Use rounding='half_even' for an RTL that matches QKeras."
    )


def rtl_summary(result: dict) -> str:
    """A few human-readable lines."""
    v = result["da4ml_verilog"]
    lines = [f"da4ml Verilog: {v['pipeline_stages']} pipeline stages at {v['clock_period_ns']:g} ns, "
             f"~{v['cost_lut_estimate']:.0f} LUT-equivalents, {v['register_bits']} register bits (da4ml's estimates); "
             f"{result['verilator']}, build {result['seconds']['verilator_build']} s"]
    for name, r in result["sets"].items():
        m = r["mismatches"]
        lines.append(f"{name}: {r['rows']} rows; RTL vs interpreter {m['rtl_vs_interpreter']}, RTL vs reference "
                     f"{m['rtl_vs_reference']}, interpreter vs reference {m['interpreter_vs_reference']}; "
                     f"differ from QKeras-exact: {r['qkeras_differences']['jets']}")
    lines.append(f"reference: {result['reference']}")
    lines.append(result["explanation"])
    cost = result["rounding_cost_lut"]
    lines.append(f"rounding cost (da4ml LUT-equivalents): half_even {cost['half_even']:.0f}, half_up {cost['half_up']:.0f} "
                 f"(half_up: cheaper by {cost['half_up_saving']:.0f}, not equal to the trained model)")
    if not result["exact"]:
        lines.append("RTL NOT BIT-EXACT with the reference")
    elif result["rounding"] == "half_even":
        lines.append("RTL BIT-EXACT with the reference (= the trained model, QKeras rounding)")
    else:
        lines.append(f"RTL BIT-EXACT with the half-up reference; NOT equal to the trained model "
                     f"({result['qkeras_differing_jets']} real jets differ)")
    return "\n".join(lines)
