"""The RTL stage of a run: da4ml Verilog written, latency measured, yosys cell counts.

:func:`rtl_stage` writes da4ml's pipelined Verilog of the whole network (QKeras rounding,
half to even, so it equals the trained model) with da4ml's Vivado build script into a
directory, finds its latency and II independently in Verilator
(:mod:`qtrigger.firmware.latency`), counts mismatches against the trained model on the test
jets plus rounding-tie and over-range rows, and synthesizes it with yosys
(:mod:`qtrigger.firmware.synth`) when yosys is installed — else synthesis is skipped with a
one-line note. Its :class:`RtlResult` is the ``rtl`` dict of ``metrics.json``. The
hls4ml project itself stays estimate-only; these figures are about the da4ml Verilog.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtrigger.emulate.network import QuantizedNetwork
from qtrigger.errors import QTriggerError
from qtrigger.firmware.latency import measure_latency
from qtrigger.firmware.rtl import _require_da4ml, _verilator_root, da4ml_trace, default_latency_cutoff, verilog_summary
from qtrigger.firmware.rtl_check import rtl_stimulus
from qtrigger.firmware.synth import synthesize_or_note

ARTEFACT = "da4ml Verilog"
TOP = "qtrigger_net"
BUNCH_SPACING_NS = 25.0
ROUNDING = "half_even"
QKERAS_ROUNDING = "half_even (QKeras): equal to the trained model"


@dataclass
class RtlResult:
    """What the RTL stage measured (``synth`` None when skipped, with ``synth_note`` saying why)."""

    directory: str
    clock_period_ns: float
    part: str
    da4ml_estimate: dict
    latency: object  # qtrigger.firmware.latency.LatencyResult
    synth: object | None  # qtrigger.firmware.synth.SynthResult
    synth_note: str | None
    jets_per_event: int
    time_multiplexing: int
    seconds: dict
    design: dict | None = None  # what the Verilog holds beyond the network (the event seed's chain)
    rounding: str = QKERAS_ROUNDING  # how the Verilog rounds (the network's ``rounding_note`` when it has one)

    @property
    def artefact(self) -> str:
        """What was built: the network's Verilog, or the design around it."""
        return self.design["artefact"] if self.design else ARTEFACT

    @property
    def mismatches_vs_model(self) -> int:
        """RTL outputs differing from the trained model over every streamed row."""
        return int(sum(self.latency.mismatches_vs_model.values()))

    def resources(self) -> tuple[dict, str]:
        """Per-instance resources and where they come from: yosys cells, else da4ml's estimate."""
        if self.synth is not None:
            t = self.synth.total
            return {"lut": t.lut, "ff": t.ff, "carry": t.carry, "dsp": t.dsp, "bram": t.bram}, \
                f"yosys cells ({self.synth.version.split(' (')[0]})"
        est = self.da4ml_estimate
        return {"lut": round(est["cost_lut_estimate"]), "ff": est["register_bits"], "dsp": 0, "bram": 0}, \
            "da4ml estimate (no synthesis)"

    def per_event(self) -> dict:
        """Per event of ``jets_per_event`` jets: one instance per jet (parallel) or one shared at II = 1."""
        return per_event(self.resources(), self.latency.latency_cycles, self.latency.ii, self.clock_period_ns,
                         self.jets_per_event, self.time_multiplexing)

    def to_json(self) -> dict:
        """The ``rtl`` dict of ``metrics.json``."""
        synth = self.synth.to_json() if self.synth is not None else {"skipped": self.synth_note}
        lat = self.latency
        return {
            "artefact": self.artefact,
            **({"design": self.design} if self.design else {}),
            "directory": self.directory,
            "rounding": self.rounding,
            "clock_period_ns": self.clock_period_ns,
            "part": self.part,
            "synth": synth,
            "latency_cycles": lat.latency_cycles,
            "latency_ns": lat.latency_ns,
            "latency_ns_note": lat.latency_ns_note,
            "registers": lat.registers,
            "ii": lat.ii,
            "mismatches_vs_model": self.mismatches_vs_model,
            "mismatches_by_set": lat.mismatches_vs_model,
            "rows_checked": lat.rows,
            "latency_search": lat.to_json(),
            "da4ml_estimate": self.da4ml_estimate,
            "per_event": self.per_event(),
            "seconds": self.seconds,
        }

    def summary(self) -> str:
        """A few lines for the terminal."""
        lat = self.latency
        lines = [f"{self.artefact} in {self.directory} (rounding: {self.rounding.split(':')[0]})"]
        if lat.latency_cycles is None:
            lines.append(f"latency NOT found: offsets matching every row: {lat.matching_offsets or 'none'}")
        else:
            lines.append(f"latency {lat.latency_cycles} cycles = {lat.latency_ns:g} ns {lat.latency_ns_note}; II = 1 "
                         f"(read-offset search over {lat.rows} streamed rows; in/out registers included)")
        against = self.design.get("against", "Python chain (accept, HT, score)") if self.design else "trained model"
        lines.append(f"RTL vs {against}: {self.mismatches_vs_model} mismatching rows "
                     f"({', '.join(f'{k} {v}' for k, v in lat.mismatches_vs_model.items())})")
        if self.synth is not None:
            t = self.synth.total
            lines.append(f"{self.synth.version.split(' (')[0]}: {t.lut} LUT, {t.ff} FF, {t.carry} CARRY4, {t.muxf} MUXF, "
                         f"{t.dsp} DSP, {t.bram} BRAM, {t.inv} INV — {self.synth.caveats}")
        else:
            lines.append(self.synth_note or "synthesis not run")
        ev = self.per_event()
        lines.append(f"per event ({ev['jets_per_event']} jets, {ev['source']}): parallel {ev['parallel']['total']} "
                     f"at {ev['parallel']['latency_ns']} ns; shared {ev['shared']['total']} at "
                     f"{ev['shared']['latency_ns']} ns ({'meets' if ev['shared']['meets_rate'] else 'MISSES'} "
                     f"{ev['event_period_ns']:g} ns per event)")
        return "\n".join(lines)


def per_event(resources: tuple[dict, str], latency_cycles: int | None, ii: int | None, clock_ns: float,
              jets_per_event: int = 4, time_multiplexing: int = 1) -> dict:
    """Parallel (one instance per jet) and shared (one instance, jets on consecutive cycles) totals.

    The shared instance takes a jet every ``ii`` cycles; it keeps up when ``jets * ii``
    cycles fit in one event period (25 ns x time multiplexing). The registers that hold
    the event's jets and collect the results in shared mode are not counted.
    """
    counts, source = resources
    period = BUNCH_SPACING_NS * time_multiplexing
    cycles_per_event = math.floor(period / clock_ns + 1e-9)
    lat = latency_cycles

    def ns(cycles):
        return None if cycles is None else round(cycles * clock_ns, 3)

    shared_cycles = None if lat is None or ii is None else lat + (jets_per_event - 1) * ii
    return {
        "jets_per_event": jets_per_event,
        "source": source,
        "event_period_ns": period,
        "cycles_per_event": cycles_per_event,
        "parallel": {"instances": jets_per_event, "total": {k: v * jets_per_event for k, v in counts.items()},
                     "latency_cycles": lat, "latency_ns": ns(lat)},
        "shared": {"instances": 1, "total": dict(counts), "latency_cycles": shared_cycles, "latency_ns": ns(shared_cycles),
                   "meets_rate": ii is not None and jets_per_event * ii <= cycles_per_event,
                   "note": "jets enter on consecutive cycles; the last jet's result is out (jets-1)*II cycles after the "
                           "first's; jet buffering/collection registers not counted"},
    }


def write_rtl_project(network: QuantizedNetwork, out_dir, clock_period_ns: float, part: str):
    """Write da4ml's Verilog (QKeras rounding) with its Vivado/Quartus build scripts; return (comb, raw, pipe, cutoff)."""
    from da4ml.codegen import VerilogModel
    from da4ml.trace import to_pipeline


    comb, raw = da4ml_trace(network, ROUNDING)
    cutoff = float(default_latency_cutoff(network, clock_period_ns, part))
    model = VerilogModel(comb, TOP, out_dir, latency_cutoff=cutoff, clock_period=clock_period_ns, part_name=part)
    model.write(metadata={"generator": "qtrigger", "rounding": ROUNDING})
    return comb, raw, to_pipeline(comb, cutoff, verbose=False), cutoff


def measure_and_synthesize(out_dir, top: str, pipe, reference, sets: dict, clock_ns: float, synthesize: bool,
                           seconds: dict, nproc: int = 2):
    """Latency/II and mismatches in Verilator (:func:`~qtrigger.firmware.latency.measure_latency`), then
    yosys when asked and installed. Adds the timings to ``seconds``; returns (latency, synth, synth note)."""

    latency = measure_latency(out_dir, top, pipe, reference, sets, clock_ns, nproc=nproc)
    seconds.update(latency.seconds)
    synth, note = None, "synthesis not requested"
    if synthesize:
        synth, note = synthesize_or_note(out_dir, top, pipeline=pipe)
        if synth is not None:
            seconds["yosys"] = round(synth.seconds, 1)
    return latency, synth, note


def rtl_stage(network: QuantizedNetwork, x_test: np.ndarray, hls_cfg, out_dir, *, synthesize: bool = True,
              n_ties: int = 2000, n_overrange: int = 1000, seed: int = 1, nproc: int = 2) -> RtlResult:
    """Write the RTL project to ``out_dir``, measure latency/II and mismatches, synthesize if yosys exists.

    ``hls_cfg`` supplies ``clock_period_ns``, ``part``, ``jets_per_event`` and
    ``time_multiplexing``. Raises QTriggerError for a non-empty ``out_dir``, bad inputs or
    missing da4ml/Verilator; a missing yosys only skips synthesis (``synth_note``).
    """

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise QTriggerError(f"{out_dir}: exists and is not empty; expected a new directory for the RTL project")
    x = np.asarray(x_test, np.float64)
    n_in = np.asarray(network.stages[0].weight_codes).shape[0]
    if x.ndim != 2 or len(x) == 0 or x.shape[1] != n_in:
        raise QTriggerError(f"x_test of shape {x.shape}: expected (jets, {n_in})")
    _require_da4ml()
    _verilator_root()
    clock, part = float(hls_cfg.clock_period_ns), str(hls_cfg.part)
    out_dir.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    comb, raw, pipe, cutoff = write_rtl_project(network, out_dir, clock, part)
    seconds = {"write": round(time.perf_counter() - start, 1)}
    sets = rtl_stimulus(network, x, raw, n_ties, n_overrange, seed)
    latency, synth, note = measure_and_synthesize(out_dir, TOP, pipe, network, sets, clock, synthesize, seconds, nproc)
    return RtlResult(str(out_dir), clock, part, verilog_summary(comb, cutoff, clock), latency, synth, note,
                     int(getattr(hls_cfg, "jets_per_event", 4)), int(getattr(hls_cfg, "time_multiplexing", 1)), seconds,
                     rounding=getattr(network, "rounding_note", QKERAS_ROUNDING))
