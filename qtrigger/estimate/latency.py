"""Analytic latency/resource estimate of hls4ml's Latency strategy, per event, and budgets.

:func:`estimate_latency_strategy` models hls4ml's *Latency* strategy with ``io_parallel``
(fully unrolled constant-coefficient dense layers) from the integer weights of a
:class:`~qtrigger.emulate.network.QuantizedNetwork`; every result is tagged
``verification: "estimate"``. :func:`per_event` and :func:`check_budget` also accept the
vendor reports read by :func:`qtrigger.firmware.vendor.read_reports`.

Analytic model ("analytic-latency-v1")
--------------------------------------
Per dense layer with input width ``w_x``, accumulator width ``w_acc`` and integer weight
codes ``c`` (hls4ml writes the weights as constants; HLS constant-folds every product):

* ``c == 0``: no hardware. ``|c|`` a power of two: a shift, no LUT/DSP (a negative sign
  folds into the adder tree as a subtraction).
* Otherwise the constant is narrowed to ``m = |c| >> trailing_zeros`` with effective width
  ``w_c = bitlen(m) (+1 if c < 0)``. It maps to DSPs when ``w_c >= 9`` (hls4ml's own DSP
  estimator, ``hls4ml/optimization/dsp_aware_pruning/objectives/vivado_objectives.py``,
  counts no DSP for weights narrower than 9 bits) and ``w_x + w_c > 10`` (the usual
  Vivado HLS rule of thumb); it then takes ``ceil(max/A) * ceil(min/B)`` DSPs for the
  device's A x B multiplier (25x18 7-series, 27x18 UltraScale(+), 27x24 Versal).
  Otherwise it is a shift-and-add in LUTs: ``(csd - 1) * (w_x + 1)`` LUTs, ``csd`` = the
  number of canonical-signed-digit (NAF) digits of ``m``, depth ``ceil(log2 csd)`` adders.
* Adder tree per output: ``n_terms = non-zero products + (bias != 0)``, ``n_terms - 1``
  adders of ``w_acc`` bits (1 LUT per bit with the carry chain), depth ``ceil(log2 n_terms)``.
* Activation per output: ``w_out`` LUTs for each of ReLU mux, rounding adder (non-TRN
  rounding), saturation mux (SAT modes); a linear TRN/WRAP requantization is wiring.
* Timing: a LUT adder of width ``w`` takes ``t_lut + w * t_carry`` ns (7-series: 0.5 +
  0.03 w; UltraScale(+)/Versal: 0.35 + 0.015 w), a LUT level ``t_lut``, a combinational
  DSP multiply ``t_dsp`` (7-series 3.9 ns, UltraScale(+)/Versal 2.5 ns). These are
  order-of-magnitude figures for the slowest speed grades, not datasheet look-ups. The
  layer path ``t_mult + depth * t_add(w_acc) + t_act`` is cut every usable clock period
  (``clock * (1 - 12.5 %)``, hls4ml's default ClockUncertainty): ``cycles = max(1,
  ceil(path / usable)) + (reuse_factor - 1)``. Latency = sum over layers; II = reuse_factor.
* FF: the values live at each cut (LUT-mapped products or partial sums of ``w_acc``
  bits; DSP products sit in the DSP's own registers) plus each layer's output register
  ``n_out * w_out``. BRAM: 0 (Latency strategy keeps weights in fabric).
* reuse_factor > 1: DSP-mapped products share ``ceil(n / RF)`` DSPs behind RF:1 operand
  muxes (``ceil((RF - 1) / 3)`` LUT per operand bit) and ``n_out * w_acc`` accumulator FFs;
  constant shift-and-add multipliers cannot be shared and are counted in full.

Per-input words: a layer's products are counted at each input's own width (``w_x`` per weight row).
The first layer reads ``input_words`` when given (the words the hardware receives: a constituent
run's per-field words), else every input at the common input type; later layers read the
previous layer's output type. An MLP's estimate is unchanged by this (one common input type).

A DeepSets network (:class:`~qtrigger.emulate.sets.SetNetwork`): φ once per constituent slot, the
global pooling, ρ once, and its LUTs calibrated on yosys (:mod:`qtrigger.estimate.sets`).

Not modelled: DSP post-adders absorbing tree additions, common-subexpression sharing
between constants, io_stream FIFOs/handshakes, softmax/other layers, routing congestion.
The model is monotonic by construction: wider inputs/accumulators → more LUT and FF;
more zero weights → fewer LUT, DSP and FF; more weight bits → more DSP, and more LUT
while the multiplications stay in LUTs.

Accuracy on published points (``benchmarks/estimate_accuracy.py``; no constant above was
fitted to them; weights are unknown for all three, so each network is rebuilt with
Glorot-uniform weights, seed 0, quantized to the stated type; error = (est - ref) / ref):

======================================  =======  =====================  =======
point                                   figure   estimate vs reference  error
======================================  =======  =====================  =======
Dense 16→5+ReLU, xc7z020, 5 ns, HLS     LUT      3349 vs 2532           +32.3 %
(shared Vivado HLS 2020.1 report,       FF       880 vs 7969            -89.0 %
io_stream, ap_fixed<16,6>, reuse 1)     DSP      28 vs 73               -61.6 %
                                        latency  3 vs 10 cycles         -70.0 %
same design after Vivado synthesis      LUT      3349 vs 1526           +119.5 %
                                        FF       880 vs 2428            -63.8 %
                                        DSP      28 vs 66               -57.6 %
16-64-32-32-5 float, ap_fixed<16,6>,    DSP      705 vs ~1800           -60.8 %
VU9P 200 MHz (QKeras paper, unconf.)    latency  8 vs 9 cycles          -11.1 %
same network, 6-bit QKeras              DSP      0 vs ~120              -100 %
                                        latency  7 vs 11 cycles         -36.4 %
======================================  =======  =====================  =======

Over weight seeds 0-9 the 16→5 estimate moves within LUT 2720-3349 and DSP 27-38, the
float network's DSP within 663-722. Reading the errors: the DSP rule is the dominant
miss. Vivado HLS put 73 of the 16→5 layer's 80 products (16-bit inputs x 16-bit
constants) in DSPs, while the rule, applied to the *narrowed* constants, sends ~60 % of
Glorot-sized weights to LUTs; this also explains the LUT over-estimate on the same
point. hls4ml's own estimator uses the *declared* weight width, which would count ~all
of them as DSPs; that variant is not adopted here because it was seen after these
points (it would be fitted to them) and it over-counts the float network instead.
The shared report is io_stream (7-cycle streaming dense + 2-cycle ReLU) while the model
is io_parallel, both paper latencies include a softmax the model does not have, and the
HLS FF figure counts DSP-internal and FIFO registers that synthesis absorbs (7969 → 2428),
so latency and FF are expected to be low there. The 6-bit point's ~120 DSPs are not
explained by the model (6-bit constants never reach the 9-bit DSP threshold).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from qtrigger.device import DEFAULT_PART, DeviceFamily, device_family, device_resources, usable_clock_ns
from qtrigger.emulate.network import DenseStage, QuantizedNetwork
from qtrigger.errors import QTriggerError
from qtrigger.estimate.sets import calibrated_lut, ceil_log2, set_network_layers
from qtrigger.fixedpoint import FixedType

METHOD = "analytic-latency-v1"
DSP_MIN_CONST_BITS = 9  # hls4ml VivadoDSPEstimator: weights narrower than 9 bits use no DSP
DSP_MIN_SUM_BITS = 10  # Vivado HLS rule of thumb: w(a) + w(b) above ~10 bits → DSP48
SATURATING = ("SAT", "SAT_SYM", "SAT_ZERO")


@dataclass
class Estimate:
    """Latency/resources of one network instance from the analytic model (not from a tool)."""

    method: str
    latency_cycles: int
    latency_ns: float
    ii: int
    lut: int
    ff: int
    dsp: int
    bram: int
    per_layer: list[dict]
    clock_period_ns: float
    reuse_factor: int
    part: str
    verification: str = "estimate"
    calibration: dict | None = None  # a set network: LUT factor and the model's uncalibrated LUTs (estimate.sets)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


# ---------------------------------------------------------------- constant multiplications


def csd_digits(m: int) -> int:
    """Number of non-zero digits of the canonical signed-digit (NAF) form of ``m >= 0``."""
    half = m >> 1
    return bin(half ^ (m + half)).count("1")


def _trailing_zeros(m: int) -> int:
    return (m & -m).bit_length() - 1


def classify_product(code: int, input_width: int) -> tuple[str, int, int]:
    """How HLS builds ``x * code``: ("zero"|"shift"|"lut"|"dsp", constant width, CSD digits)."""
    if code == 0:
        return "zero", 0, 0
    magnitude = abs(int(code))
    m = magnitude >> _trailing_zeros(magnitude)
    if m == 1:
        return "shift", 0, 1
    width = m.bit_length() + (1 if code < 0 else 0)
    if width >= DSP_MIN_CONST_BITS and input_width + width > DSP_MIN_SUM_BITS:
        return "dsp", width, csd_digits(m)
    return "lut", width, csd_digits(m)


def dsps_per_product(input_width: int, const_width: int, family: DeviceFamily) -> int:
    """DSP blocks for one product: the wider operand on the A port, the narrower on B."""
    wide, narrow = max(input_width, const_width), min(input_width, const_width)
    return math.ceil(wide / family.dsp_a_bits) * math.ceil(narrow / family.dsp_b_bits)


# ---------------------------------------------------------------- one layer


def stage_input_words(network: QuantizedNetwork, input_words=None) -> list[tuple[FixedType, ...]]:
    """Per layer, the word of each of its inputs (one per weight row). The first layer reads ``input_words`` (one
    word per network input, the words the hardware receives) or, without them, the common ``input_type``."""
    n_first = int(np.asarray(network.stages[0].weight_codes).shape[0])
    first = tuple(input_words) if input_words is not None else (network.input_type,) * n_first
    if len(first) != n_first:
        raise QTriggerError(f"input words {[str(w) for w in first]}: expected {n_first}, one per network input")
    words = [first]
    pooling = getattr(network, "pooling", None)  # a SetNetwork: rho reads the pooled values
    for k, stage in enumerate(network.stages[:-1], start=1):
        current = stage.activation_type or stage.accum_type
        if pooling is not None and k == len(network.phi):
            current = pooling.result_type
        words.append((current,) * int(np.asarray(network.stages[k].weight_codes).shape[0]))
    return words


def _is_relu(stage: DenseStage) -> bool:
    name = (stage.activation_name or "").lower()
    return stage.activation_type is not None and (not stage.activation_type.signed or "relu" in name)


def activation_cost(stage: DenseStage, family: DeviceFamily) -> tuple[int, float]:
    """(LUTs per output, delay in ns) of the activation/requantization after the tree."""
    out = stage.activation_type
    if out is None:
        return 0, 0.0
    relu, rounding = _is_relu(stage), out.rounding != "TRN"
    saturating = out.saturation in SATURATING
    luts = out.width * (int(relu) + int(rounding) + int(saturating))
    delay = family.t_lut_ns * (int(relu) + int(saturating)) + (family.t_add(out.width) if rounding else 0.0)
    return luts, delay


def _multiplications(stage: DenseStage, widths: np.ndarray, family: DeviceFamily) -> dict:
    """Counts, LUTs, DSPs and the slowest product delay of one layer's products (input ``i`` ``widths[i]`` bits)."""
    kinds = {"zero": 0, "shift": 0, "lut": 0, "dsp": 0}
    lut = dsp = dsp_width = 0
    delay = 0.0
    rows = np.asarray(stage.weight_codes)
    for w_x, code in zip(np.repeat(widths, rows.shape[1]).tolist(), rows.ravel().tolist()):
        kind, width, digits = classify_product(code, w_x)
        kinds[kind] += 1
        if kind == "lut":
            lut += (digits - 1) * (w_x + 1)
            delay = max(delay, ceil_log2(digits) * family.t_add(w_x + width))
        elif kind == "dsp":
            dsp += dsps_per_product(w_x, width, family)
            dsp_width = max(dsp_width, width)
            delay = max(delay, family.t_dsp_ns)
    return {"counts": kinds, "lut": lut, "dsp": dsp, "dsp_const_width": dsp_width, "delay": delay}


def _terms_per_output(stage: DenseStage) -> np.ndarray:
    codes = np.asarray(stage.weight_codes)
    return np.count_nonzero(codes, axis=0) + (np.asarray(stage.bias_codes) != 0)


def _cut_registers(t: float, mults: dict, terms: np.ndarray, stage_info: dict) -> int:
    """Bits live at a pipeline cut placed ``t`` ns into a layer's combinational path."""
    w_acc, t_mult, t_add = stage_info["w_acc"], mults["delay"], stage_info["t_add_acc"]
    if t <= t_mult:
        shifts = mults["counts"]["shift"] > 0
        return mults["counts"]["lut"] * w_acc + (stage_info["in_bits"] if shifts else 0)
    if t <= t_mult + stage_info["depth"] * t_add:
        levels = int((t - t_mult) // t_add) + 1
        return int(np.sum(np.ceil(terms / 2.0**levels))) * w_acc
    return len(terms) * w_acc


def estimate_layer(stage: DenseStage, input_words: tuple[FixedType, ...], clock_period_ns: float,
                   reuse_factor: int, family: DeviceFamily) -> dict:
    """The analytic cost of one Latency-strategy dense layer (+ its activation); ``input_words``: the word of each
    input (weight row), :func:`stage_input_words`."""
    widths = np.array([w.width for w in input_words], dtype=np.int64)
    w_x, w_acc = int(widths.max()), stage.accum_type.width
    n_in, n_out = np.asarray(stage.weight_codes).shape
    mults = _multiplications(stage, widths, family)
    terms = _terms_per_output(stage)
    depth = ceil_log2(int(terms.max()) if terms.size else 0)
    act_lut, act_delay = activation_cost(stage, family)
    w_out = (stage.activation_type or stage.accum_type).width
    path = mults["delay"] + depth * family.t_add(w_acc) + act_delay
    usable = usable_clock_ns(clock_period_ns)
    comb_cycles = max(1, math.ceil(path / usable - 1e-9))
    info = {"w_acc": w_acc, "in_bits": int(widths.sum()), "depth": depth, "t_add_acc": family.t_add(w_acc)}
    ff = sum(_cut_registers(k * usable, mults, terms, info) for k in range(1, comb_cycles)) + n_out * w_out
    dsp, mux_lut = mults["dsp"], 0
    if reuse_factor > 1:
        dsp = math.ceil(mults["dsp"] / reuse_factor)
        mux_lut = dsp * (w_x + mults["dsp_const_width"]) * math.ceil((reuse_factor - 1) / 3)
        ff += n_out * w_acc
    tree_lut = int(np.sum(np.maximum(terms - 1, 0))) * w_acc
    return {
        "name": stage.name,
        "n_in": int(n_in),
        "n_out": int(n_out),
        "products": mults["counts"],
        "input_width": w_x,
        "input_bits": int(widths.sum()),
        "accum_width": w_acc,
        "output_width": w_out,
        "tree_depth": depth,
        "path_ns": round(path, 3),
        "cycles": comb_cycles + reuse_factor - 1,
        "lut": {"mult": mults["lut"], "tree": tree_lut, "activation": act_lut * n_out, "mux": mux_lut},
        "lut_total": mults["lut"] + tree_lut + act_lut * n_out + mux_lut,
        "dsp": dsp,
        "ff": ff,
    }


# ---------------------------------------------------------------- whole network


def estimate_latency_strategy(network: QuantizedNetwork, clock_period_ns: float, reuse_factor: int = 1,
                              part: str = DEFAULT_PART, input_words=None) -> Estimate:
    """Analytic latency/LUT/FF/DSP estimate of hls4ml's Latency strategy, io_parallel.

    ``input_words``: the word each network input arrives in (one per input, e.g. a constituent level's
    ``Preprocessor.word_types()``); the first layer's products are counted at those widths. Without them every
    input is at the common ``network.input_type``. See the module docstring for the model and its measured
    error. Raises QTriggerError for a non-positive clock, a reuse factor < 1, an unknown part or input words
    that are not one per input.
    """
    if not clock_period_ns or clock_period_ns <= 0:
        raise QTriggerError(f"clock_period_ns={clock_period_ns!r}: expected a positive clock period in ns")
    if int(reuse_factor) != reuse_factor or reuse_factor < 1:
        raise QTriggerError(f"reuse_factor={reuse_factor!r}: expected an integer >= 1")
    family = device_family(part)
    layers = [
        estimate_layer(stage, words, clock_period_ns, int(reuse_factor), family)
        for stage, words in zip(network.stages, stage_input_words(network, input_words))
    ]
    lut, calibration = sum(layer["lut_total"] for layer in layers), None
    if getattr(network, "pooling", None) is not None:  # a SetNetwork: φ once per slot, the pooling, ρ; calibrated
        layers = set_network_layers(network, layers, clock_period_ns, family)
        lut, calibration = calibrated_lut(sum(layer["lut_total"] for layer in layers))
    cycles = sum(layer["cycles"] for layer in layers)
    return Estimate(
        method=METHOD,
        latency_cycles=cycles,
        latency_ns=round(cycles * clock_period_ns, 3),
        ii=int(reuse_factor),
        lut=lut,
        ff=sum(layer["ff"] for layer in layers),
        dsp=sum(layer["dsp"] for layer in layers),
        bram=0,
        per_layer=layers,
        clock_period_ns=float(clock_period_ns),
        reuse_factor=int(reuse_factor),
        part=str(part),
        calibration=calibration,
    )


# ---------------------------------------------------------------- event-level view and budgets


def _figures(obj) -> dict:
    """Latency/II/clock/resources of an Estimate, a read_reports() dict or its hls_report."""
    if isinstance(obj, Estimate):
        return {"latency_cycles": obj.latency_cycles, "latency_ns": obj.latency_ns, "ii": obj.ii,
                "clock_ns": obj.clock_period_ns, "lut": obj.lut, "ff": obj.ff, "dsp": obj.dsp, "bram": obj.bram,
                "verification": {"latency": obj.verification, "resources": obj.verification},
                "available": device_resources(obj.part)}
    if isinstance(obj, dict) and "hls_report" in obj:
        hls, syn = obj["hls_report"], obj.get("synthesis_report")
        res = syn or hls
        return {**_figures(hls), **{k: res[k] for k in ("lut", "ff", "dsp", "bram")},
                "verification": {"latency": hls["verification"], "resources": res["verification"]}}
    if isinstance(obj, dict) and obj.get("verification") == "hls-report":
        return {"latency_cycles": obj["latency_cycles_worst"], "latency_ns": obj["latency_ns"], "ii": obj["ii"],
                "clock_ns": obj["clock_ns_target"], **{k: obj[k] for k in ("lut", "ff", "dsp", "bram")},
                "verification": {"latency": "hls-report", "resources": "hls-report"},
                "available": obj.get("available")}
    raise QTriggerError(f"{type(obj).__name__}: expected an Estimate, a read_reports() result or its 'hls_report'")


def per_event(estimate, jets_per_event: int = 4, mode: str = "parallel", bunch_spacing_ns: float = 25.0,
              time_multiplexing: int = 1) -> dict:
    """Resources and timing for a whole event of ``jets_per_event`` jets.

    ``parallel``: one instance per jet. ``multiplexed``: one instance takes the event's jets
    one after the other. A board with time-multiplexing period ``time_multiplexing`` sees a
    new event every ``bunch_spacing_ns * time_multiplexing`` ns, so each instance must accept
    a jet every ``floor(period / clock / jets_per_instance)`` cycles (the required II).
    """
    if mode not in ("parallel", "multiplexed"):
        raise QTriggerError(f"mode={mode!r}: expected 'parallel' or 'multiplexed'")
    if jets_per_event < 1 or time_multiplexing < 1 or bunch_spacing_ns <= 0:
        raise QTriggerError("per_event: expected jets_per_event >= 1, time_multiplexing >= 1, bunch_spacing_ns > 0")
    fig = _figures(estimate)
    clock, ii = fig["clock_ns"], fig["ii"]
    period_ns = bunch_spacing_ns * time_multiplexing
    cycles_per_event = period_ns / clock
    instances, jets_each = (jets_per_event, 1) if mode == "parallel" else (1, jets_per_event)
    required_ii = math.floor(cycles_per_event / jets_each + 1e-9)
    last_jet_cycles = fig["latency_cycles"] + (jets_each - 1) * ii
    per_instance = {k: fig[k] for k in ("lut", "ff", "dsp", "bram")}
    return {
        "mode": mode,
        "jets_per_event": jets_per_event,
        "instances": instances,
        "event_period_ns": period_ns,
        "clock_ns": clock,
        "required_ii": required_ii,
        "ii": ii,
        "meets_ii": required_ii >= 1 and ii <= required_ii,
        "min_instances_for_rate": math.ceil(jets_per_event * ii * clock / period_ns - 1e-9),
        "latency_cycles": last_jet_cycles,
        "latency_ns": round(last_jet_cycles * clock, 3),
        "per_instance": per_instance,
        "total": {k: v * instances for k, v in per_instance.items()},
        "verification": fig["verification"],
    }


def _check(value, budget) -> dict:
    margin = budget - value
    return {"value": value, "budget": budget, "fits": value <= budget, "margin": round(margin, 3),
            "margin_pct": round(100.0 * margin / budget, 2) if budget else None}


def check_budget(estimate_or_report, latency_budget_ns: float = 100.0, resource_budget: dict | None = None) -> dict:
    """Fits / does not fit, and by how much, for latency and each budgeted resource.

    ``resource_budget`` maps any of lut/ff/dsp/bram to a limit; without it the part's
    available resources are used when known (an HLS report carries them), else only
    latency is checked. ``margin`` is budget - value (negative: over budget).
    """
    fig = _figures(estimate_or_report)
    budget = resource_budget if resource_budget is not None else (fig.get("available") or {})
    unknown = set(budget) - {"lut", "ff", "dsp", "bram"}
    if unknown:
        raise QTriggerError(f"resource_budget keys {sorted(unknown)}: expected any of lut, ff, dsp, bram")
    checks = {"latency_ns": _check(fig["latency_ns"], latency_budget_ns)}
    checks.update({key: _check(fig[key], limit) for key, limit in budget.items()})
    return {"fits": all(c["fits"] for c in checks.values()), "checks": checks, "verification": fig["verification"]}
