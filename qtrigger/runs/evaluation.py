"""A finished run applied to other files: its network on any file, or its trigger study on another signal and
rate sample (``qtrigger evaluate``). The run's input level reads the files as it read its own."""

from __future__ import annotations

from pathlib import Path

from qtrigger.config import validate_config
from qtrigger.levels import level_for
from qtrigger.rundir import write_json
from qtrigger.runs.finished import FinishedRun


def evaluate(run_dir: str | Path, files: list[str], csim: bool = True, progress: bool = False,
             max_events: int | None = None) -> dict:
    """Apply a finished run (QAT model, and its C-simulation when ``csim``) to other ROOT files.

    Every event is read unless ``max_events`` caps the events read (per call). Features
    saturating their input word far more often than on the training split are reported
    in ``warnings`` (and logged).
    """
    finished = FinishedRun.load(run_dir)
    config = finished.config.model_copy(update={"data": finished.config.data.model_copy(update={"max_events": max_events})})
    return level_for(config).evaluate_files(finished, config, list(files), csim, max_events, progress)


def evaluate_trigger(run_dir: str | Path, signal_files: list[str], background_files: list[str],
                     normalisation: str | None = None, output_dir: str | Path | None = None) -> dict:
    """Redo the trigger study of a finished run on other signal/background files (no retraining).

    The background is the rate sample (split in calibration / held-out halves, seeds re-tuned);
    the run's own seeds are also applied unchanged to all of it (``rate_at_run_threshold_hz``).
    References that need training are skipped. Plots and trigger.json go to ``output_dir``
    (default ``runs/<run>/evaluations/<background file stem>``).
    """
    run_dir = Path(run_dir)
    finished = FinishedRun.load(run_dir)
    raw = finished.config.model_dump(mode="json")
    raw["data"]["samples"] = [{"name": "signal", "files": list(signal_files), "role": "signal"}]
    raw["data"]["max_events"] = None
    raw["trigger"].update(bdt=False, rate_files=list(background_files), score="qat")
    if normalisation:
        raw["trigger"]["normalisation"] = normalisation
    config = validate_config(raw, source=f"{run_dir}/config.resolved.yaml")
    out = Path(output_dir) if output_dir else run_dir / "evaluations" / Path(background_files[0]).stem
    result = level_for(config).evaluate_trigger(finished, config, list(background_files), out)
    write_json(out / "trigger.json", result)
    return result
