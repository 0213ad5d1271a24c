"""A finished run applied to other files: its network on any file, or its trigger study on another signal and
rate sample (``qtrigger evaluate``). The run's input level reads the files as it read its own."""

from __future__ import annotations

from pathlib import Path

from qtrigger.config import validate_config
from qtrigger.data.samples import read_pileup
from qtrigger.levels import level_for
from qtrigger.rundir import write_json
from qtrigger.runs.finished import FinishedRun
from qtrigger.runs.preflight import PILEUP_LUMI_REL_TOL, pileup_lumi_cm2s


def evaluate(run_dir: str | Path, files: list[str], csim: bool = True, progress: bool = False,
             max_events: int | None = None) -> dict:
    """Apply a finished run (QAT model, and its C-simulation when ``csim``) to other ROOT files.

    Every event is read unless ``max_events`` caps the events read (per call). Features
    saturating their input word far more often than on the training split are reported
    in ``warnings`` (and logged).
    """
    finished = FinishedRun.load(run_dir)
    config = finished.config.model_copy(update={"data": finished.config.data.model_copy(update={"max_events": max_events})})
    result = level_for(config).evaluate_files(finished, config, list(files), csim, max_events, progress)
    result["pileup"] = pileup_report(finished.config, list(files))
    if result["pileup"]["warning"]:
        result.setdefault("warnings", []).append(result["pileup"]["warning"])
    return result


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
    lumi_note = _lumi_of_pileup(raw["trigger"], background_files)
    config = validate_config(raw, source=f"{run_dir}/config.resolved.yaml")
    out = Path(output_dir) if output_dir else run_dir / "evaluations" / Path(background_files[0]).stem
    result = level_for(config).evaluate_trigger(finished, config, list(background_files), out)
    result["pileup"] = pileup_report(finished.config, [*signal_files, *background_files])
    result["pileup"]["lumi_note"] = lumi_note
    result["pileup_warning"] = "; ".join(w for w in (result["pileup"]["warning"], lumi_note) if w) or None
    write_json(out / "trigger.json", result)
    return result


def _lumi_of_pileup(trigger: dict, background_files: list[str]) -> str | None:
    """At pileup the luminosity is the background's: L = mu f_rev n_bunches / sigma_inel. Sets it in the raw
    ``trigger`` section when the run's differs, and returns a note saying so (None when nothing changed)."""
    recorded = read_pileup(background_files)
    if not recorded:
        return None
    mu, sigma = next(iter(recorded.values()))
    lumi = pileup_lumi_cm2s(mu, sigma, trigger["n_bunches"])
    if abs(trigger["lumi_cm2s"] / lumi - 1) <= PILEUP_LUMI_REL_TOL:
        return None
    note = (f"rates at L = {lumi:.4g} cm^-2 s^-1, the luminosity of the background's pileup (mu = {mu:g}), not the "
            f"run's {trigger['lumi_cm2s']:.4g}")
    trigger["lumi_cm2s"] = lumi
    return note


def _mu_of(files: list[str]) -> dict[str, float | None]:
    """Per file, the mean pileup its ``Runs`` tree records (0 without a record; None for a missing file)."""
    recorded = read_pileup([f for f in files if Path(f).is_file()])
    return {f: (recorded[f][0] if f in recorded else 0.0) if Path(f).is_file() else None for f in files}


def pileup_report(run_config, files: list[str]) -> dict:
    """The pileup (mu) of every file evaluated and of the run's training samples, and a warning when they differ:
    a network and its thresholds are tuned at the training mu."""
    training = _mu_of([f for s in run_config.data.samples for f in s.files])
    evaluated = _mu_of(files)
    train_mu = sorted({mu for mu in training.values() if mu is not None})
    differ = {f: mu for f, mu in evaluated.items() if train_mu and mu not in train_mu}
    warning = None
    if differ:
        listed = ", ".join(f"{f} (mu {mu:g})" for f, mu in list(differ.items())[:3]) + (" ..." if len(differ) > 3 else "")
        warning = (f"pileup differs from training: the run was trained at mu = {'/'.join(f'{m:g}' for m in train_mu)}, "
                   f"evaluated on {listed}; its thresholds and rates do not transfer between pileup conditions")
    return {"training_mu": train_mu, "files": evaluated, "warning": warning}
