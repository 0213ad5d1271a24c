"""RTL of a whole DeepSets network: φ on every slot → pooling → ρ, one da4ml Verilog design, proven in Verilator.

hls4ml's da4ml converter does not build the global pooling, so the network is traced here from the
:class:`~qtrigger.emulate.sets.SetNetwork`, exactly as the integer reference computes it:

- the input word of every slot (padding included) passes the input quantizer and φ (shared weights,
  one copy per slot: a padded slot gives φ(0), as in Keras);
- mean pooling is the sum of the φ codes over all ``cap`` slots on the pooling accumulator, read at
  log2(cap) more fractional bits (a shift, nothing rounded); max pooling is a tree of ``max_of``;
- ρ on the pooled vector; QKeras rounding (half to even) everywhere, so the RTL equals the trained model.

:func:`set_rtl_stage` writes the project, streams the test jets and stress jets at II = 1 (the
harness of :mod:`qtrigger.firmware.latency`), finds the latency by the read-offset search, counts
mismatches against :meth:`SetNetwork.forward_codes` and synthesizes with yosys. :class:`SetRtlFaults`
builds deliberately wrong designs (a pooling accumulator too narrow, φ on too few slots) so the tests
can show the check catches them. :func:`multiplexed_layouts` gives the per-event figures of
``trigger.seed_jets`` jets in three layouts (time-multiplexing period T = ``hls.time_multiplexing``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qtrigger.emulate.sets import SetNetwork
from qtrigger.errors import QTriggerError
from qtrigger.firmware.rtl import (
    HWCONFIG,
    SOLVER_OPTIONS,
    _kif,
    _quantize,
    _require_da4ml,
    _verilator_root,
    default_latency_cutoff,
    raw_input_type,
    trace_stages,
    verilog_summary,
)
from qtrigger.firmware.rtl_stage import ROUNDING, RtlResult, measure_and_synthesize
from qtrigger.firmware.sets import scatter_padding, set_stress_inputs, stress_jets
from qtrigger.fixedpoint import FixedType

TOP = "qtrigger_set_net"
ARTEFACT = "da4ml Verilog of the whole DeepSets network: phi on every slot -> pooling -> rho"
F_BX_MHZ = 40.079  # LHC bunch-crossing frequency
NO_TIMING = "yosys gives no timing: clock-dependent figures assume the configured clock closes"
Words = tuple[FixedType, ...]  # one input word per field (Preprocessor.word_types)


@dataclass(frozen=True)
class SetRtlFaults:
    """Deliberate bugs for the check's own tests: φ and the pooling on only the first ``phi_slots`` slots,
    and a pooling accumulator ``accum_bits_short`` integer bits narrower than the reference's (wrapping)."""

    phi_slots: int | None = None
    accum_bits_short: int = 0

    @property
    def any(self) -> bool:
        """Whether any fault is injected."""
        return self.phi_slots is not None or self.accum_bits_short > 0


NO_FAULTS = SetRtlFaults()


# ================================================================ trace


def _features(network: SetNetwork) -> int:
    return int(np.asarray(network.phi[0].weight_codes).shape[0])


def check_set_network(network: SetNetwork) -> None:
    """One-line error for a set network this RTL does not build (a kept 0/1 mask input)."""
    if network.mask is not None:
        raise QTriggerError(f"layer {network.mask.name}: a kept mask input is not built in RTL; zero-pad the "
                            "constituents instead (φ(0) on padded slots)")


def _narrowed(fixed: FixedType, bits: int) -> FixedType:
    """``fixed`` with ``bits`` fewer integer bits, wrapping (a fault)."""
    return FixedType(fixed.width - bits, fixed.integer - bits, fixed.signed, "TRN", "WRAP")


def trace_pooling(phi, network: SetNetwork, rounding: str = ROUNDING, faults: SetRtlFaults = NO_FAULTS):
    """The pooling of a (slots, width) da4ml array of φ outputs → (width,) on the pooling's result type."""
    pooling = network.pooling
    if pooling.kind == "max":
        pooled = np.max(phi, axis=0)
    else:
        accum = _narrowed(pooling.accum_type, faults.accum_bits_short) if faults.accum_bits_short \
            else pooling.accum_type
        pooled = _quantize(np.sum(phi, axis=0), accum, rounding, f"layer {pooling.name} accumulator")
        pooled = pooled * 2.0 ** -(pooling.cap.bit_length() - 1)  # the mean's code: a shift
    return _quantize(pooled, pooling.result_type, rounding, f"layer {pooling.name}")


def trace_set_network(values, network: SetNetwork, rounding: str = ROUNDING, faults: SetRtlFaults = NO_FAULTS):
    """The network on a da4ml ``FixedVariableArray`` of ``cap * features`` raw input values (slot-major):
    input quantizer and φ on every slot, pooling, ρ. Returns the output array."""
    cap = network.pooling.cap
    slots = cap if faults.phi_slots is None else int(faults.phi_slots)
    x = _quantize(values.reshape(cap, _features(network)), network.input_type, rounding, "input quantizer")
    phi = trace_stages(x[:slots], network.phi, rounding)
    return trace_stages(trace_pooling(phi, network, rounding, faults), network.rho, rounding)


def _inputs(n: int, fixed: FixedType | Words):
    """``n`` da4ml inputs of one type, or (``fixed`` a tuple of per-field words) slot-major, field by field."""
    from da4ml.trace import FixedVariableArray, HWConfig

    kif = np.array([_kif(w) for w in fixed]) if isinstance(fixed, tuple) else np.array([_kif(fixed)])
    k, i, f = (np.resize(kif[:, j], n) for j in range(3))
    return FixedVariableArray.from_kif(k, i, f, HWConfig(*HWCONFIG), solver_options=dict(SOLVER_OPTIONS))


def check_words(network: SetNetwork, words: Words | None) -> None:
    """One-line error unless ``words`` has one word per field, each held exactly by the input type."""
    if words is None:
        return
    it = network.input_type
    if len(words) != _features(network) or any(w.frac > it.frac or w.max_value > it.max_value
                                               or w.min_value < it.min_value for w in words):
        raise QTriggerError(f"input words {[str(w) for w in words]}: expected {_features(network)} field words "
                            f"that {it} holds exactly")


def set_trace(network: SetNetwork, rounding: str = ROUNDING, faults: SetRtlFaults = NO_FAULTS,
              words: Words | None = None):
    """The whole set network as one da4ml ``CombLogic``; returns ``(comb, raw input type)``. With ``words``
    (one word per field, :meth:`Preprocessor.word_types`) each input port is its field's word, as the
    hardware receives it, instead of the widened common type; the raw type returned is then ``words``."""
    from da4ml.trace import comb_trace

    _require_da4ml()
    check_set_network(network)
    check_words(network, words)
    raw = tuple(words) if words is not None else raw_input_type(network)
    inputs = _inputs(network.pooling.cap * _features(network), raw)
    return comb_trace(inputs, trace_set_network(inputs, network, rounding, faults)), raw


def part_costs(network: SetNetwork, rounding: str = ROUNDING, words: Words | None = None) -> dict[str, float]:
    """da4ml cost (LUT-equivalents) of one slot's φ, of one pooling step (two φ outputs into the accumulator)
    and of ρ: the parts a serial-φ layout keeps."""
    from da4ml.trace import comb_trace

    raw = tuple(words) if words is not None else raw_input_type(network)
    x = _inputs(_features(network), raw)
    phi_out = trace_stages(_quantize(x, network.input_type, rounding, "input quantizer"), network.phi, rounding)
    phi_type = network.phi[-1].activation_type or network.phi[-1].accum_type
    width = len(phi_out)
    pair = _inputs(2 * width, phi_type)
    step = np.max(pair.reshape(2, width), axis=0) if network.pooling.kind == "max" else \
        np.sum(pair.reshape(2, width), axis=0)
    pooled = _inputs(width, network.pooling.result_type)
    return {"phi_one_slot": float(comb_trace(x, phi_out).cost),
            "pooling_step": float(comb_trace(pair, step).cost),
            "rho": float(comb_trace(pooled, trace_stages(pooled, network.rho, rounding)).cost)}


# ================================================================ stimulus


def _snap(values: np.ndarray, raw: FixedType | Words) -> np.ndarray:
    values = np.asarray(values, np.float64)
    if isinstance(raw, tuple):  # per-field words: each field onto its own word (saturated codes at its ends)
        return np.stack([w.with_modes("TRN", "SAT").quantize(values[..., j]) for j, w in enumerate(raw)], axis=-1)
    return raw.with_modes("TRN", "SAT").quantize(values)


def set_rtl_stimulus(network: SetNetwork, x: np.ndarray, raw: FixedType | Words, n_stress: int,
                     seed: int = 1) -> dict[str, np.ndarray]:
    """(jets, cap, features) sets on the raw input grid: the given jets, the same jets with their slots
    permuted, stress jets drawn from them (ties, saturation, one constituent, shuffled, all padding) and
    synthetic stress jets (empty, single, duplicated, ties, saturated, every slot at the extremes)."""
    cap, n_features = network.pooling.cap, _features(network)
    real = (x != 0).any(axis=2)
    half = n_stress // 2
    return {
        "real": _snap(x, raw),
        "permuted": _snap(scatter_padding(x, real, seed)[0], raw),
        "stress": _snap(set_stress_inputs(network.input_type, x, half, seed), raw),
        "synthetic stress": _snap(stress_jets(network.input_type, cap, n_features, n_stress - half, seed + 1), raw),
    }


def expected_outputs(network: SetNetwork, sets: dict[str, np.ndarray]) -> np.ndarray:
    """The integer reference's output values of every set's jets, sets in order."""
    rows = np.concatenate([sets[name] for name in sets if len(sets[name])])
    return network.forward_codes(rows).astype(np.float64) * network.output_type.lsb


# ================================================================ per event


def clock_harmonic(clock_ns: float) -> int:
    """The clock as a multiple of f_BX: round(f / f_BX), at least 1."""
    return max(1, round(1000.0 / clock_ns / F_BX_MHZ))


def multiplexed_layouts(resources: dict, latency_cycles: int | None, clock_ns: float, jets: int, period_bx: int,
                        slots: int, serial_fraction: float | None = None) -> dict:
    """Per jet and per event of ``jets`` jets, at time-multiplexing period T = ``period_bx`` bunch crossings.

    The clock is taken as the nearest multiple n of f_BX, so an instance has T * n cycles per event.
    (a) one instance per jet; (b) the fewest II-1 instances whose jets fit the event's cycles; (c) one
    φ shared serially over the slots (II = ``slots``), resources estimated as the measured design times
    ``serial_fraction`` (da4ml cost of one φ + a pooling step + ρ over the whole design's cost).
    """
    harmonic = clock_harmonic(clock_ns)
    cycles = period_bx * harmonic
    clock_mhz = harmonic * F_BX_MHZ
    lat = latency_cycles

    def layout(instances, per_instance, ii, res, extra_latency, note):
        fits = per_instance * ii <= cycles
        event_latency = None if lat is None else lat + extra_latency
        return {"instances": instances, "jets_per_instance": per_instance, "ii": ii, "fits_event": fits,
                "per_instance": dict(res), "total": {k: round(v * instances) for k, v in res.items()},
                "per_jet": {k: round(v * instances / jets, 1) for k, v in res.items()},
                "event_latency_cycles": event_latency,
                "event_latency_ns": None if event_latency is None else round(event_latency * 1000.0 / clock_mhz, 2),
                "note": note}

    b_instances = math.ceil(jets / cycles)
    b_per = math.ceil(jets / b_instances)
    out = {"jets": jets, "period_bx": period_bx, "clock_mhz": round(clock_mhz, 3), "clock_harmonic": harmonic,
           "cycles_per_event": cycles, "timing": NO_TIMING,
           "a_instance_per_jet": layout(jets, 1, 1, resources, 0, "measured"),
           "b_fewest_ii1": layout(b_instances, b_per, 1, resources, b_per - 1,
                                  "measured instance; jets enter on consecutive cycles (buffers not counted)")}
    if serial_fraction is not None:
        per = max(1, cycles // slots)
        serial = {k: round(v * serial_fraction, 1) for k, v in resources.items()}
        c = layout(math.ceil(jets / per), min(per, jets), slots, serial, slots * min(per, jets) - 1,
                   "ESTIMATE from the measured design: one φ, one pooling step and ρ (da4ml cost fraction "
                   f"{serial_fraction:.3f} of the whole design), slots enter serially; not built")
        c["fits_event"] = slots <= cycles
        out["c_serial_phi"] = c
    return out


def _serial_fraction(network: SetNetwork, total_cost: float, words: Words | None = None) -> float:
    parts = part_costs(network, words=words)
    return min(1.0, sum(parts.values()) / total_cost) if total_cost > 0 else 1.0


# ================================================================ the stage


@dataclass
class SetRtlResult(RtlResult):
    """:class:`RtlResult` of a set network, with its per-event layouts (``layouts``)."""

    layouts: dict | None = None

    def to_json(self) -> dict:
        """The ``rtl`` dict of ``metrics.json``, with ``per_event_layouts``."""
        return {**super().to_json(), "per_event_layouts": self.layouts}

    def summary(self) -> str:
        """The RTL summary and one line per layout."""
        lines = [super().summary()]
        lay = self.layouts or {}
        for key in ("a_instance_per_jet", "b_fewest_ii1", "c_serial_phi"):
            if key in lay:
                v = lay[key]
                lines.append(f"{key}: {v['instances']} instance(s), II {v['ii']}, {v['total'].get('lut')} LUT per "
                             f"event ({v['per_jet'].get('lut')} per jet), event latency {v['event_latency_cycles']} "
                             f"cycles; fits {lay['cycles_per_event']} cycles/event: {v['fits_event']}")
        if lay:
            lines.append(f"(T = {lay['period_bx']} BX at {lay['clock_mhz']} MHz; {NO_TIMING})")
        return "\n".join(lines)


def _check_inputs(network: SetNetwork, x: np.ndarray, out_dir: Path) -> np.ndarray:
    if out_dir.exists() and any(out_dir.iterdir()):
        raise QTriggerError(f"{out_dir}: exists and is not empty; expected a new directory for the RTL project")
    x = np.asarray(x, np.float64)
    shape = (network.pooling.cap, _features(network))
    if x.ndim != 3 or len(x) == 0 or x.shape[1:] != shape:
        raise QTriggerError(f"constituent jets of shape {x.shape}: expected (jets, {shape[0]}, {shape[1]})")
    check_set_network(network)
    return x


def write_set_project(network: SetNetwork, out_dir: Path, clock: float, part: str, faults: SetRtlFaults,
                      words: Words | None = None):
    """Write da4ml's Verilog of the whole set network; returns (comb, raw, pipe, cutoff)."""
    from da4ml.codegen import VerilogModel
    from da4ml.trace import to_pipeline

    comb, raw = set_trace(network, ROUNDING, faults, words)
    cutoff = float(default_latency_cutoff(network, clock, part))
    VerilogModel(comb, TOP, out_dir, latency_cutoff=cutoff, clock_period=clock, part_name=part).write(
        metadata={"generator": "qtrigger", "rounding": ROUNDING, "design": "DeepSets network"})
    return comb, raw, to_pipeline(comb, cutoff, verbose=False), cutoff


def set_rtl_stage(network: SetNetwork, x_test: np.ndarray, hls_cfg, out_dir, *, jets_per_event: int = 4,
                  synthesize: bool = True, n_stress: int = 10_000, seed: int = 1, nproc: int = 2,
                  faults: SetRtlFaults = NO_FAULTS, words: Words | None = None) -> SetRtlResult:
    """Write the set network's RTL project to ``out_dir``, measure latency/II and mismatches against the integer
    reference on ``x_test`` (jets, cap, features) and stress jets, synthesize with yosys if installed, and give
    the per-event layouts of ``jets_per_event`` jets at T = ``hls_cfg.time_multiplexing``. ``words``: per-field
    input words (:func:`set_trace`); stress jets are then snapped onto each field's word.

    Raises QTriggerError for a non-empty ``out_dir``, wrongly shaped jets, a kept mask input or missing
    da4ml/Verilator; a missing yosys only skips synthesis.
    """
    out_dir = Path(out_dir)
    x = _check_inputs(network, x_test, out_dir)
    _require_da4ml()
    _verilator_root()
    clock, part = float(hls_cfg.clock_period_ns), str(hls_cfg.part)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    comb, raw, pipe, cutoff = write_set_project(network, out_dir, clock, part, faults, words)
    seconds = {"write": round(time.perf_counter() - start, 1)}
    sets = set_rtl_stimulus(network, x, raw, n_stress, seed)
    flat = {name: rows.reshape(len(rows), -1) for name, rows in sets.items()}
    latency, synth, note = measure_and_synthesize(out_dir, TOP, pipe, expected_outputs(network, sets), flat, clock,
                                                  synthesize, seconds, nproc)
    period = int(getattr(hls_cfg, "time_multiplexing", 1))
    design = {"artefact": ARTEFACT, "top": TOP, "slots": network.pooling.cap, "features": _features(network),
              "pooling": network.pooling.kind, "pooling_accumulator": str(network.pooling.accum_type),
              "inputs": [str(w) for w in raw] if isinstance(raw, tuple) else f"{raw} (common, widened)",
              "rows": {name: int(len(r)) for name, r in sets.items()},
              "reference": "SetNetwork.forward_codes (exact int64, φ on every slot incl. padding)",
              "against": "integer reference (= trained model)",
              **({"faults": asdict(faults)} if faults.any else {})}
    result = SetRtlResult(str(out_dir), clock, part, verilog_summary(comb, cutoff, clock), latency, synth, note,
                          jets_per_event, period, seconds, design=design)
    result.layouts = multiplexed_layouts(result.resources()[0], latency.latency_cycles, clock, jets_per_event, period,
                                         network.pooling.cap, _serial_fraction(network, float(comb.cost), words))
    return result
