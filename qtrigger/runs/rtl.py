"""RTL verbs on a finished run: ``qtrigger hls rtl`` (the level's design, measured) and ``qtrigger hls rtl-check``
(the network's da4ml RTL against the integer reference in Verilator)."""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qtrigger.config import load_config
from qtrigger.emulate.network import extract_network
from qtrigger.errors import QTriggerError
from qtrigger.firmware.rtl import ROUNDINGS, _require_da4ml, _verilator_root
from qtrigger.firmware.rtl_check import rtl_check, rtl_summary
from qtrigger.firmware.rtl_stage import RtlResult
from qtrigger.firmware.synth import require_yosys
from qtrigger.levels import level_for
from qtrigger.models.build import load_model
from qtrigger.rundir import RTL_PROJECT, check_replaceable, claimed_folder, overlapping, write_json
from qtrigger.runs.finished import FinishedRun, read_test_jets


def rtl_stage_for_run(run_dir, output=None, overwrite: bool = False, jets: int | None = None,
                      synthesize: bool = True) -> RtlResult:
    """The RTL stage on a finished run (its level's design: the network, or an event run's whole seed); writes
    ``<run>/rtl.json``. Synthesis requires yosys here.

    Everything is checked before any work: ``jets``, the output folder (never the run folder or a
    folder around it; an existing one is replaced only with ``overwrite`` and only when it is a
    qtrigger RTL project, :data:`~qtrigger.rundir.RTL_PROJECT`), yosys, the run and its inputs
    (an event-level run's ``decision_events.npz``). The project is built in a staging folder
    and appears, stamped, only when complete; a failure leaves the previous one untouched.
    """
    run_dir = Path(run_dir)
    if jets is not None and jets < 1:
        raise QTriggerError(f"--jets {jets}: expected a positive number of jets")
    if not (run_dir / "config.resolved.yaml").is_file():
        FinishedRun.load(run_dir)  # raises its one-line error
    config = load_config(run_dir / "config.resolved.yaml", check_files=False)
    out = Path(output) if output else Path(config.hls.output_dir) / (config.name or run_dir.name) / "rtl"
    check_rtl_output(out, run_dir)
    check_replaceable(out.absolute(), overwrite, RTL_PROJECT, empty_ok=True)
    if synthesize:
        require_yosys()  # an explicit synthesis command fails without yosys, before any work
    build = level_for(config).rtl_builder(FinishedRun.load(run_dir), jets, synthesize)
    with claimed_folder(out, overwrite, RTL_PROJECT, empty_ok=True) as (staging, _):
        result = build(staging)
    result.directory = str(out.absolute())
    write_json(run_dir / "rtl.json", result.to_json())
    return result


def check_rtl_output(out: Path, run_dir: Path) -> None:
    """The RTL project's folder must be neither the run folder, nor inside it, nor around it."""
    if overlapping(out, run_dir):
        raise QTriggerError(f"--output {out}: overlaps the run folder {run_dir}; the RTL project needs a folder of its "
                            "own (default: <hls.output_dir>/<run name>/rtl)")


@dataclass
class RtlCheckResult:
    """``qtrigger hls rtl-check RUN`` as data: the :func:`rtl_check` dict and where it was written."""

    result: dict
    written_to: Path

    @property
    def exact(self) -> bool:
        """RTL, da4ml interpreter and the reference agree on every row."""
        return bool(self.result["exact"])

    def to_json(self) -> dict:
        """The ``<run>/rtl_check.json`` content."""
        return self.result

    def summary(self) -> str:
        """A few human-readable lines (:func:`rtl_summary`)."""
        return rtl_summary(self.result)


def rtl_check_run(run_dir, *, rounding: str = "half_even", ties: int = 2000, overrange: int = 1000,
                  jets: int | None = None, work_dir=None) -> RtlCheckResult:
    """RTL check of a finished run's network on its test jets; writes ``<run>/rtl_check.json``.

    ``work_dir`` keeps the Verilog/Verilator project (default: a temporary directory,
    removed afterwards). Everything is checked before TensorFlow or Verilator is started.
    """
    run_dir = Path(run_dir)
    model_path, jets_path = run_dir / "model_qat.h5", run_dir / "test_jets.npz"
    for path in (model_path, jets_path):
        if not path.is_file():
            raise QTriggerError(f"{path}: no such file (is {run_dir} a finished run directory?)")
    if jets is not None and jets < 1:
        raise QTriggerError(f"--jets {jets}: expected a positive number of jets")
    if ties < 0 or overrange < 0:
        raise QTriggerError("--ties/--overrange: expected non-negative numbers of rows")
    if rounding not in ROUNDINGS:
        raise QTriggerError(f"rounding={rounding!r}: expected one of {ROUNDINGS}")
    config_path = run_dir / "config.resolved.yaml"
    hls_cfg = load_config(config_path, check_files=False).hls if config_path.is_file() else None
    clock = hls_cfg.clock_period_ns if hls_cfg else 5.0
    part = hls_cfg.part if hls_cfg else None
    x = read_test_jets(jets_path)["inputs"]
    _require_da4ml()
    _verilator_root()  # fail fast, before loading TensorFlow
    network = extract_network(load_model(model_path))
    if jets is not None:
        x = x[:jets]
    with contextlib.ExitStack() as stack:
        directory = Path(work_dir) if work_dir else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qtrigger-rtl-")))
        result = rtl_check(network, x, directory, n_ties=ties, n_overrange=overrange, clock_period_ns=clock,
                           rounding=rounding, part=part)
    if not work_dir:
        result["directory"] = None
    write_json(run_dir / "rtl_check.json", result)
    return RtlCheckResult(result, run_dir / "rtl_check.json")
