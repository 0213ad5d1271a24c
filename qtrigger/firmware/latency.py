"""Latency and initiation interval of da4ml's pipelined Verilog, measured in Verilator.

da4ml's own Verilator binder reads each output at the latency da4ml declares, so a
zero-mismatch result from it cannot show the latency is right. This module uses its own
small C++ harness instead: it drives the RTL top (``<top>_wrapper``, da4ml's fixed-width
port wrapper) with a *different* input row before every rising clock edge (II = 1) and
records the output port after *every* edge. Python then tries every read offset ``L``
(output after edge ``t + L`` belongs to the input presented before edge ``t``) and keeps
the offsets at which every row equals the trained model's exact output
(:meth:`QuantizedNetwork.forward_codes`). Exactly one offset must match; it is the
latency. Because a new row enters on every cycle and all rows are checked at the same
offset, the match also shows II = 1.

Registers counted: da4ml's top registers its input (``stage0_inp <= model_inp``) and its
output (``model_out <= ...``). With the input presented before edge ``t`` the result is on
``model_out`` after edge ``t + L``: ``L`` counts the edge that loads the input register and
every stage register up to the output register, i.e. both top-level registers are part of
the measured latency (``L`` = number of pipeline stages; ``L + 1`` register levels).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qtrigger.errors import QTriggerError
from qtrigger.firmware.rtl import _environment, verilator_environment, verilator_version

REGISTERS = ("L counts clock edges from the one that loads the top-level input register (stage0_inp <= model_inp) "
             "to the one that loads the top-level output register (model_out); both registers are included")
LATENCY_NS_NOTE = "at the configured clock, assuming timing closes (no place-and-route was run)"

_HARNESS = r"""// qtrigger latency harness: one input row before every rising edge, output recorded after every edge.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>
#include "Vdut.h"
#include "verilated.h"

template <typename T> static void put(T &port, const uint32_t *w) {
    uint64_t v = w[0];
    if (sizeof(T) > 4) v |= static_cast<uint64_t>(w[1]) << 32;
    port = static_cast<T>(v);
}
template <std::size_t N> static void put(VlWide<N> &port, const uint32_t *w) {
    for (std::size_t i = 0; i < N; ++i) port[i] = w[i];
}
template <typename T> static void get(const T &port, uint32_t *w) {
    uint64_t v = port;
    w[0] = static_cast<uint32_t>(v);
    if (sizeof(T) > 4) w[1] = static_cast<uint32_t>(v >> 32);
}
template <std::size_t N> static void get(const VlWide<N> &port, uint32_t *w) {
    for (std::size_t i = 0; i < N; ++i) w[i] = port[i];
}

int main(int argc, char **argv) {
    if (argc != 5) { std::fprintf(stderr, "usage: harness IN OUT ROWS CYCLES\n"); return 2; }
    const long rows = std::atol(argv[3]), cycles = std::atol(argv[4]);
    std::vector<uint32_t> in(static_cast<size_t>(rows) * W_IN + W_IN + 2, 0u), out(W_OUT + 2, 0u);
    FILE *fi = std::fopen(argv[1], "rb");
    if (!fi || std::fread(in.data(), 4, rows * W_IN, fi) != static_cast<size_t>(rows * W_IN)) return 3;
    std::fclose(fi);
    FILE *fo = std::fopen(argv[2], "wb");
    if (!fo) return 4;
    auto ctx = std::make_unique<VerilatedContext>();
    auto dut = std::make_unique<Vdut>(ctx.get());
    const std::vector<uint32_t> zeros(W_IN + 2, 0u);
    dut->clk = 0;
    dut->eval();
    for (long t = 0; t < cycles; ++t) {
        put(dut->model_inp, t < rows ? &in[static_cast<size_t>(t) * W_IN] : zeros.data());
        dut->clk = 0;
        dut->eval();
        dut->clk = 1;
        dut->eval();
        get(dut->model_out, out.data());
        std::fwrite(out.data(), 4, W_OUT, fo);
    }
    std::fclose(fo);
    dut->final();
    return 0;
}
"""


@dataclass
class PortLayout:
    """da4ml's fixed-width wrapper ports: ``n`` values of ``bits`` each, ``frac`` fractional bits."""

    n: int
    bits: int
    frac: int
    signed: bool

    @property
    def words(self) -> int:
        """32-bit words of the whole port."""
        return (self.n * self.bits + 31) // 32


def port_layouts(pipe) -> tuple[PortLayout, PortLayout]:
    """Input and output layouts of ``<top>_wrapper`` (as da4ml's binder packs them)."""
    from da4ml.codegen.rtl.rtl_model import get_io_kifs

    (k_in, i_in, f_in), (k_out, i_out, f_out) = get_io_kifs(pipe)
    n_in, n_out = pipe.shape

    def layout(n, k, i, f):
        return PortLayout(int(n), int(k.max() + i.max() + f.max()), int(f.max()), bool(k.max()))

    return layout(n_in, k_in, i_in, f_in), layout(n_out, k_out, i_out, f_out)


def pack_rows(values: np.ndarray, layout: PortLayout) -> np.ndarray:
    """Rows of values → uint32 words of the input port (value j at bits [j*bits, (j+1)*bits))."""
    codes = np.floor(np.asarray(values, np.float64) * 2.0**layout.frac).astype(np.int64)
    mask = (1 << layout.bits) - 1
    words = np.zeros((len(codes), layout.words), np.uint32)
    for r, row in enumerate(codes):
        big = 0
        for j, code in enumerate(row):
            big |= (int(code) & mask) << (j * layout.bits)
        for w in range(layout.words):
            words[r, w] = (big >> (32 * w)) & 0xFFFFFFFF
    return words


def unpack_words(words: np.ndarray, layout: PortLayout) -> np.ndarray:
    """uint32 words of the output port → values (float64, exact)."""
    mask, sign = (1 << layout.bits) - 1, 1 << (layout.bits - 1)
    out = np.zeros((len(words), layout.n), np.float64)
    for r, row in enumerate(words):
        big = sum(int(w) << (32 * i) for i, w in enumerate(row))
        for j in range(layout.n):
            code = (big >> (j * layout.bits)) & mask
            if layout.signed and code & sign:
                code -= 1 << layout.bits
            out[r, j] = code * 2.0**-layout.frac
    return out


def build_harness(project_dir, top: str, pipe, nproc: int = 2) -> Path:
    """Verilate ``<top>_wrapper`` with the harness; returns the executable's path."""
    project_dir = Path(project_dir).absolute()  # Verilator runs in sim_latency/: no path may be relative
    wrapper = project_dir / "src" / f"{top}_wrapper.v"
    if not wrapper.is_file():
        raise QTriggerError(f"{wrapper}: no such file (write the da4ml RTL project first)")
    inp, out = port_layouts(pipe)
    sim = project_dir / "sim_latency"
    sim.mkdir(parents=True, exist_ok=True)
    (sim / "harness.cpp").write_text(_HARNESS)
    env = verilator_environment(sim / "tools")
    argv = ["verilator", "--cc", "--exe", "--build", "-j", str(max(1, nproc)), "-Wno-fatal", "--prefix", "Vdut",
            "--top-module", f"{top}_wrapper", "-Mdir", "obj_dir", "-o", "harness",
            f"-I{project_dir / 'src'}", f"-I{project_dir / 'src' / 'static'}",
            "-CFLAGS", f"-O1 -DW_IN={inp.words} -DW_OUT={out.words}", "harness.cpp", str(wrapper)]
    with _environment(env):
        proc = subprocess.run(argv, cwd=sim, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        (sim / "build.log").write_text(proc.stdout + proc.stderr)
        raise QTriggerError(f"Verilator build of the latency harness in {sim} failed (log: {sim / 'build.log'})")
    executable = sim / "harness"
    shutil.move(sim / "obj_dir" / "harness", executable)
    shutil.rmtree(sim / "obj_dir")  # Verilator's objects: megabytes, not needed once linked
    return executable


def run_stream(executable: Path, rows: np.ndarray, pipe, extra_cycles: int) -> np.ndarray:
    """Stream ``rows`` one per cycle, then ``extra_cycles`` zero rows; output values after every edge."""
    inp, out = port_layouts(pipe)
    sim = executable.parent
    cycles = len(rows) + int(extra_cycles)
    pack_rows(rows, inp).tofile(sim / "stream_in.bin")
    memfiles = sim.parent / "src" / "memfiles"  # da4ml's lookup tables: $readmemh of names relative to here
    proc = subprocess.run([str(executable), str(sim / "stream_in.bin"), str(sim / "stream_out.bin"), str(len(rows)),
                           str(cycles)], capture_output=True, text=True, check=False,
                          cwd=memfiles if memfiles.is_dir() else None)
    if proc.returncode != 0:
        raise QTriggerError(f"latency harness {executable} exited with {proc.returncode}: {proc.stderr.strip()}")
    words = np.fromfile(sim / "stream_out.bin", np.uint32).reshape(cycles, out.words)
    return unpack_words(words, out)


@dataclass
class LatencyResult:
    """Read-offset search on a II = 1 stream; ``latency_cycles`` is None unless exactly one offset matches."""

    latency_cycles: int | None
    ii: int | None
    matching_offsets: list[int]
    rows_matching_by_offset: dict[int, int]
    rows: int
    read_offset: int  # the unique matching offset, else the best one (mismatches are counted there)
    mismatches_vs_model: dict[str, int]
    da4ml_declared_latency: int
    clock_period_ns: float
    latency_ns: float | None
    registers: str = REGISTERS
    latency_ns_note: str = LATENCY_NS_NOTE
    verilator: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        """JSON-ready dict (offset keys as strings)."""
        data = asdict(self)
        data["rows_matching_by_offset"] = {str(k): v for k, v in self.rows_matching_by_offset.items()}
        return data


def find_latency(outputs: np.ndarray, expected: np.ndarray, max_offset: int) -> dict[int, int]:
    """For each read offset 0..max_offset, how many rows' outputs equal ``expected``."""
    n = len(expected)
    flat = expected.reshape(n, -1)
    return {L: int(np.all(outputs[L:L + n].reshape(n, -1) == flat, axis=1).sum())
            for L in range(max_offset + 1) if L + n <= len(outputs)}


def measure_latency(project_dir, top: str, pipe, reference, sets: dict[str, np.ndarray],
                    clock_period_ns: float, nproc: int = 2, max_offset: int | None = None) -> LatencyResult:
    """Build the harness, stream every set's rows back to back at II = 1 and find the read offset.

    ``sets`` maps a name (real, ties, overrange) to rows on the RTL's raw input grid.
    ``reference``: a network (a :class:`QuantizedNetwork` or any reference with ``forward_codes`` and
    ``output_type``; expected output = its exact output values) or the
    expected output values of every streamed row, sets in order (for designs around a network, e.g.
    the event seed).
    ``mismatches_vs_model`` counts, per set, rows whose RTL output at the found latency
    (else at the best offset) differs from the reference.
    """
    declared = len(pipe.solutions)
    max_offset = int(max_offset if max_offset is not None else 2 * declared + 8)
    names = [name for name, rows in sets.items() if len(rows)]
    if not names:
        raise QTriggerError("measure_latency: no input rows")
    rows = np.concatenate([np.asarray(sets[name], np.float64) for name in names])
    if hasattr(reference, "forward_codes"):
        expected = reference.forward_codes(rows).astype(np.float64) * reference.output_type.lsb
    else:
        expected = np.asarray(reference, np.float64)
        if len(expected) != len(rows):
            raise QTriggerError(f"measure_latency: {len(expected)} expected outputs for {len(rows)} rows")
    start = time.perf_counter()
    executable = build_harness(project_dir, top, pipe, nproc)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    outputs = run_stream(executable, rows, pipe, extra_cycles=max_offset + 1)
    counts = find_latency(outputs, expected, max_offset)
    matching = [L for L, n in counts.items() if n == len(rows)]
    latency = matching[0] if len(matching) == 1 else None
    read_offset = latency if latency is not None else max(counts, key=lambda L: (counts[L], -L))
    mismatches, offset = {}, 0
    for name in names:
        n = len(sets[name])
        got = outputs[read_offset + offset: read_offset + offset + n].reshape(n, -1)
        mismatches[name] = int(np.any(got != expected[offset: offset + n].reshape(n, -1), axis=1).sum())
        offset += n
    env = verilator_environment(Path(project_dir) / "sim_latency" / "tools")
    return LatencyResult(
        latency_cycles=latency,
        ii=1 if latency is not None else None,
        matching_offsets=matching,
        rows_matching_by_offset=counts,
        rows=int(len(rows)),
        read_offset=int(read_offset),
        mismatches_vs_model=mismatches,
        da4ml_declared_latency=declared,
        clock_period_ns=float(clock_period_ns),
        latency_ns=round(latency * clock_period_ns, 3) if latency is not None else None,
        verilator=verilator_version(env),
        seconds={"verilator_build": round(build_s, 1), "stream": round(time.perf_counter() - start, 1)},
    )
