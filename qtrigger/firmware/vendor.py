"""Vivado/Vitis HLS: the build command, running it, and reading its reports.

:func:`read_reports` returns the numbers of a project synthesized elsewhere (C synthesis
and, if present, Vivado synthesis), each tagged ``verification: "hls-report"`` or
``"synthesis-report"``. :func:`build_project` runs the vendor tool where it exists and
otherwise says exactly which command to run on a machine that has it.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from qtrigger.errors import QTriggerError, one_line


def _number(value, what: str, source: Path, kind=int):
    """A report field as int/float; 'undef' (unbounded latency) → None."""
    text = str(value).strip() if value is not None else ""
    if text.lower() in ("undef", "n/a", "-"):
        return None
    try:
        return kind(float(text)) if kind is int else kind(text)
    except ValueError:
        raise QTriggerError(f"{source}: field {what}={value!r} is not a number") from None


def _hls_fields(csynth: dict, source: Path) -> dict:
    """hls4ml's CSynthesisReport dict (string values) → our hls_report dict.

    Note: hls4ml's own printer shows ``BestLatency`` under "Worst-case latency"; here
    each is read from its own field.
    """
    need = ("TargetClockPeriod", "EstimatedClockPeriod", "BestLatency", "WorstLatency", "IntervalMax", "FF", "LUT", "DSP")
    missing = [key for key in need if key not in csynth]
    if missing:
        raise QTriggerError(f"{source}: C-synthesis report lacks {missing}; expected a Vivado/Vitis HLS csynth.xml")
    target = _number(csynth["TargetClockPeriod"], "TargetClockPeriod", source, float)
    worst = _number(csynth["WorstLatency"], "Worst-caseLatency", source)
    available = {k: _number(csynth.get("Available" + tag), "Available" + tag, source)
                 for k, tag in (("lut", "LUT"), ("ff", "FF"), ("dsp", "DSP"), ("bram", "BRAM_18K"))
                 if csynth.get("Available" + tag) is not None}
    return {
        "latency_cycles_best": _number(csynth["BestLatency"], "Best-caseLatency", source),
        "latency_cycles_worst": worst,
        "latency_ns": round(worst * target, 3) if worst is not None else None,
        "ii": _number(csynth["IntervalMax"], "Interval-max", source),
        "lut": _number(csynth["LUT"], "LUT", source),
        "ff": _number(csynth["FF"], "FF", source),
        "dsp": _number(csynth["DSP"], "DSP", source),
        "bram": _number(csynth.get("BRAM_18K", 0), "BRAM_18K", source),
        "clock_ns_estimated": _number(csynth["EstimatedClockPeriod"], "EstimatedClockPeriod", source, float),
        "clock_ns_target": target,
        "available": available,
        "source": str(source),
        "verification": "hls-report",
    }


def _synth_fields(vsynth: dict, source: Path) -> dict:
    """hls4ml's VivadoSynthReport dict → our synthesis_report dict.

    hls4ml stores the "Block RAM Tile" count (36 Kb tiles) under the key BRAM_18K; it is
    converted here to 18 Kb blocks (x2) so that HLS and synthesis BRAM are comparable.
    """
    missing = [key for key in ("LUT", "FF", "DSP48E") if key not in vsynth]
    if missing:
        raise QTriggerError(f"{source}: Vivado synthesis report lacks {missing}; expected report_utilization output")
    tiles = _number(vsynth.get("BRAM_18K", 0), "Block RAM Tile", source, float) or 0.0
    return {
        "lut": _number(vsynth["LUT"], "Slice/CLB LUTs", source),
        "ff": _number(vsynth["FF"], "Slice/CLB Registers", source),
        "dsp": _number(vsynth["DSP48E"], "DSPs", source),
        "bram": int(round(2 * tiles)),
        "source": str(source),
        "verification": "synthesis-report",
    }


def parse_csynth_xml(path: Path) -> dict:
    """A Vivado/Vitis HLS ``*_csynth.xml`` as hls4ml's CSynthesisReport dict (strings)."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as err:
        raise QTriggerError(f"{path}: unreadable C-synthesis XML ({one_line(str(err))}); expected a Vivado/Vitis HLS csynth.xml") from None
    fields = {
        "TargetClockPeriod": "./UserAssignments/TargetClockPeriod",
        "EstimatedClockPeriod": "./PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod",
        "BestLatency": "./PerformanceEstimates/SummaryOfOverallLatency/Best-caseLatency",
        "WorstLatency": "./PerformanceEstimates/SummaryOfOverallLatency/Worst-caseLatency",
        "IntervalMin": "./PerformanceEstimates/SummaryOfOverallLatency/Interval-min",
        "IntervalMax": "./PerformanceEstimates/SummaryOfOverallLatency/Interval-max",
    }
    report = {key: node.text for key, xpath in fields.items() if (node := root.find(xpath)) is not None}
    for prefix, xpath in (("", "./AreaEstimates/Resources"), ("Available", "./AreaEstimates/AvailableResources")):
        for child in root.find(xpath) if root.find(xpath) is not None else []:
            report[prefix + ("DSP" if child.tag == "DSP48E" else child.tag)] = child.text
    return report


def parse_vivado_synth_rpt(path: Path) -> dict:
    """A Vivado ``report_utilization`` file as hls4ml's VivadoSynthReport dict (strings)."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as err:
        raise QTriggerError(f"{path}: unreadable Vivado synthesis report ({one_line(str(err))})") from None
    report, section = {}, 0
    rows = {1: (("LUT", ("CLB LUTs", "Slice LUTs")), ("FF", ("CLB Registers", "Slice Registers"))),
            2: (("BRAM_18K", ("Block RAM Tile",)), ("URAM", ("URAM",))), 3: (("DSP48E", ("DSPs",)),)}
    for line in lines:
        match = re.match(r"^(\d)\.", line)
        section = int(match.group(1)) if match else section
        if "|" not in line:
            continue
        for key, names in rows.get(section, ()):
            if key not in report and any(name in line for name in names):
                report[key] = line.split("|")[2].strip()
    return report


def _find_csynth_xml(directory: Path) -> Path:
    top = _app_top(directory)
    if top and (directory / f"{top}_csynth.xml").is_file():
        return directory / f"{top}_csynth.xml"
    if (directory / "csynth.xml").is_file():
        return directory / "csynth.xml"
    candidates = sorted(directory.glob("*_csynth.xml"))
    if len(candidates) == 1:
        return candidates[0]
    expected = f"{directory}/<top>_csynth.xml (from <name>_prj/solution1/syn/report/) or an hls4ml project with project.tcl"
    if not candidates:
        raise QTriggerError(f"{directory}: no C-synthesis report; expected {expected}")
    names = ", ".join(p.name for p in candidates)
    raise QTriggerError(f"{directory}: several C-synthesis reports ({names}); add vivado_hls.app or keep only the top's")


def _app_top(directory: Path) -> str | None:
    for name in ("vivado_hls.app", "hls.app"):
        app = directory / name
        if app.is_file():
            match = re.search(r'\btop="([^"]+)"', app.read_text(errors="replace"))
            if match:
                return match.group(1)
    return None


def _read_project(project_dir: Path) -> tuple[dict, Path, dict | None, Path]:
    """hls4ml's parse_vivado_report on an hls4ml project (stdout captured)."""
    from hls4ml.report import parse_vivado_report

    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            report = parse_vivado_report(str(project_dir))
    except Exception as err:  # hls4ml raises bare errors on partial layouts (e.g. no solution)
        raise QTriggerError(
            f"{project_dir}: hls4ml could not read the project ({one_line(str(err))}); expected project.tcl and "
            "<name>_prj/solution1/syn/report/<name>_csynth.xml"
        ) from None
    name = _project_name(project_dir)
    expected = project_dir / f"{name}_prj" / "solution1" / "syn" / "report" / f"{name}_csynth.xml"
    if not report or "CSynthesisReport" not in report:
        said = " ".join(printed.getvalue().split()[:20])
        raise QTriggerError(f"{expected}: C-synthesis report not found (hls4ml: {said or 'nothing'}); run C synthesis first")
    return report["CSynthesisReport"], expected, report.get("VivadoSynthReport"), project_dir / "vivado_synth.rpt"


def _project_name(project_dir: Path) -> str:
    text = (project_dir / "project.tcl").read_text(errors="replace")
    match = re.search(r'set project_name "([^"]+)"', text)
    return match.group(1) if match else "<name>"


def read_reports(project_dir) -> dict:
    """HLS and Vivado-synthesis figures of a project synthesized elsewhere.

    ``project_dir`` is an hls4ml project (``project.tcl`` + ``<name>_prj/solution1/syn/report/``,
    read with hls4ml's ``parse_vivado_report``) or a plain directory holding
    ``<top>_csynth.xml`` and optionally ``vivado_synth.rpt``. Returns ``{"hls_report": {...},
    "synthesis_report": {...} or None}``, each tagged with its ``verification``. A missing or
    unreadable report raises QTriggerError naming the path and what was expected.
    """
    directory = Path(project_dir)
    if not directory.is_dir():
        raise QTriggerError(f"{directory}: not a directory; expected an hls4ml project or a directory with *_csynth.xml")
    if (directory / "project.tcl").is_file():
        csynth, csynth_path, vsynth, vsynth_path = _read_project(directory)
    else:
        csynth_path = _find_csynth_xml(directory)
        csynth = parse_csynth_xml(csynth_path)
        vsynth_path = directory / "vivado_synth.rpt"
        vsynth = parse_vivado_synth_rpt(vsynth_path) if vsynth_path.is_file() else None
    return {
        "hls_report": _hls_fields(csynth, csynth_path),
        "synthesis_report": _synth_fields(vsynth, vsynth_path) if vsynth is not None else None,
    }


# ---------------------------------------------------------------- building


def _build_options(csim: bool, synth: bool, cosim: bool, vsynth: bool) -> dict:
    return {"reset": 0, "csim": int(csim), "synth": int(synth), "cosim": int(cosim), "validation": 0,
            "export": 0, "vsynth": int(vsynth), "fifo_opt": 0}


def build_command(project_dir, csim: bool = False, synth: bool = True, cosim: bool = False, vsynth: bool = False,
                  backend: str = "Vivado", tool: str | None = None) -> tuple[list[str], str, str | None]:
    """(argv, one-line shell command incl. ``cd``, Vitis build_opt.tcl text or None) for a build."""
    opts = _build_options(csim, synth, cosim, vsynth)
    cd = f"cd {shlex.quote(str(Path(project_dir).resolve()))}"
    if backend == "Vivado":
        args = " ".join(f"{k}={v}" for k, v in opts.items())
        argv = ["vivado_hls", "-f", "build_prj.tcl", args]
        return argv, f'{cd} && vivado_hls -f build_prj.tcl "{args}"', None
    opt_tcl = "array set opt {" + " ".join(f"{k} {v}" for k, v in opts.items()) + "}"
    tool = tool or "vitis_hls"
    argv = ["vitis-run", "--tcl", "build_prj.tcl", "--mode", "hls"] if tool == "vitis-run" else ["vitis_hls", "-f", "build_prj.tcl"]
    shell = f"{cd} && echo {shlex.quote(opt_tcl)} > build_opt.tcl && {' '.join(argv)}"
    return argv, shell, opt_tcl + "\n"


def build_project(project_dir, csim: bool = False, synth: bool = True, cosim: bool = False, vsynth: bool = False,
                  backend: str = "Vivado") -> None:
    """Run hls4ml's ``build_prj.tcl`` with the vendor tool (as hls4ml's backends do).

    Vivado: ``vivado_hls -f build_prj.tcl "csim=.. synth=.. ..."``; Vitis: options in
    ``build_opt.tcl`` then ``vitis-run --tcl build_prj.tcl --mode hls`` (or ``vitis_hls -f``).
    Without the tool on PATH, raises QTriggerError naming it and the exact command to run
    on a machine that has it. The tool's output goes to ``qtrigger_build.log`` in the project.
    """
    directory = Path(project_dir)
    if backend not in ("Vivado", "Vitis"):
        raise QTriggerError(f"backend={backend!r}: expected 'Vivado' or 'Vitis'")
    missing = [name for name in ("build_prj.tcl", "project.tcl") if not (directory / name).is_file()]
    if missing:
        raise QTriggerError(f"{directory}: no {' or '.join(missing)}; expected a project written by hls4ml")
    candidates = ["vivado_hls"] if backend == "Vivado" else ["vitis-run", "vitis_hls"]
    tool = next((name for name in candidates if shutil.which(name)), None)
    argv, shell, opt_tcl = build_command(directory, csim, synth, cosim, vsynth, backend, tool)
    if tool is None:
        raise QTriggerError(f"{' / '.join(candidates)} not found on PATH; on a machine with {backend} HLS run: {shell}")
    if vsynth and not shutil.which("vivado"):
        raise QTriggerError(f"vivado not found on PATH (needed for vsynth=True); on a machine with Vivado run: {shell}")
    _run_build(directory, argv, shell, opt_tcl)


def _run_build(directory: Path, argv: list[str], shell: str, opt_tcl: str | None) -> None:
    if opt_tcl is not None:
        (directory / "build_opt.tcl").write_text(opt_tcl)
    log = directory / "qtrigger_build.log"
    with open(log, "w") as out:
        result = subprocess.run(argv, cwd=directory, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise QTriggerError(f"{argv[0]} exited with status {result.returncode}; see {log} (command: {shell})")

