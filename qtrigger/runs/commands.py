"""Library verbs behind the CLI commands that act on a finished run or on loose files.

Each is a plain function a notebook can call; the CLI only parses arguments and prints.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from glob import glob
from pathlib import Path

from qtrigger.config import HLSConfig
from qtrigger.data.reader import check_branches
from qtrigger.data.crossing import rate_sample_info
from qtrigger.errors import QTriggerError
from qtrigger.estimate.latency import check_budget
from qtrigger.firmware import vendor
from qtrigger.emulate.sets import is_hgq_model
from qtrigger.firmware.check import hls_check as check_model
from qtrigger.firmware.hgq import check_hgq_model
from qtrigger.firmware.set_spellings import canonical_set_model
from qtrigger.fixedpoint import parse_fixed
from qtrigger.levels import level_for
from qtrigger.models.build import load_model
from qtrigger.rundir import EVALUATION, check_replaceable, claimed_folder, write_json
from qtrigger.runs.evaluation import evaluate, evaluate_trigger
from qtrigger.runs.finished import FinishedRun, _check_hdf5
from qtrigger.runs.preflight import check_rate_normalisation


def expand_globs(patterns: list[str] | None) -> list[str]:
    """Files matching each pattern (a pattern that matches nothing is kept, to be reported by name)."""
    return [f for pattern in patterns or [] for f in (sorted(glob(pattern)) or [pattern])]


def evaluate_files(run_dir: str | Path, data: list[str] | None = None, signal: list[str] | None = None,
                   background: list[str] | None = None, normalisation: str | None = None, csim: bool = True,
                   max_events: int | None = None, progress: bool = False, overwrite: bool = False) -> dict:
    """``qtrigger evaluate``: classifier metrics on ``data`` files and/or the trigger study on signal/background.

    Returns ``{"data": ..., "trigger": ..., "trigger_directory": ...}`` (the parts asked for). Every
    file and the evaluation's folder (:func:`evaluation_name`) are checked before any work; an
    existing evaluation of the same files is replaced only with ``overwrite``; a failed trigger
    evaluation leaves no ``evaluations/`` folder behind.
    """
    if bool(signal) != bool(background):
        raise QTriggerError("evaluate: give both --signal and --background for the trigger study")
    if not (data or signal):
        raise QTriggerError("evaluate: give --data FILES, or --signal FILES --background FILES")
    if max_events is not None and max_events < 1:
        raise QTriggerError(f"evaluate: --max-events must be >= 1 (got {max_events})")
    finished = FinishedRun.load(run_dir)
    data, signal, background = expand_globs(data), expand_globs(signal), expand_globs(background)
    _check_event_files(finished, data + signal + background)
    if background:
        _check_background(finished, background, normalisation)
        folder = finished.directory / "evaluations" / evaluation_name(signal, background, normalisation)
        check_replaceable(folder, overwrite, EVALUATION)
    out: dict = {}
    if data:
        out["data"] = evaluate(finished.directory, data, csim=csim, progress=progress, max_events=max_events)
    if signal:
        out["trigger"] = _evaluate_trigger_staged(finished.directory, folder, signal, background, normalisation,
                                                  overwrite)
        out["trigger_directory"] = str(folder)
    return out


def evaluation_name(signal: list[str], background: list[str], normalisation: str | None) -> str:
    """``<first background's stem>-<8 hex digits>``: the digits hash the resolved signal and background paths
    and the normalisation, so evaluations of different files never share a folder."""
    inputs = [[str(Path(f).resolve()) for f in signal], [str(Path(f).resolve()) for f in background], normalisation]
    return f"{Path(background[0]).stem}-{hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:8]}"


def _check_background(finished: FinishedRun, background: list[str], normalisation: str | None) -> None:
    """The Runs tree normalises the rate and the run's target rates lie below its total rate: before any work."""
    trigger = finished.config.trigger
    if normalisation:
        trigger = trigger.model_copy(update={"normalisation": normalisation})
    info = rate_sample_info(background, trigger.normalisation)
    check_rate_normalisation(trigger, info, "the --background sample", f"evaluate: run {finished.config.name}: ")


def _check_event_files(finished: FinishedRun, files: list[str]) -> None:
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise QTriggerError(f"evaluate: no such file: {', '.join(missing)}")
    config = finished.config
    branches = list(dict.fromkeys([*config.features.jet_branches, config.labels.branch, "Jet_pt", "Jet_eta"]))
    check_branches(files, branches, config.data.tree)
    level_for(config).check_files(config, files, training=False)


def _evaluate_trigger_staged(run_dir: Path, folder: Path, signal: list[str], background: list[str],
                             normalisation: str | None, overwrite: bool) -> dict:
    """The trigger study into ``folder``, written to a staging folder first and stamped as an evaluation."""

    with claimed_folder(folder, overwrite, EVALUATION) as (staging, _):
        return evaluate_trigger(run_dir, signal, background, normalisation, output_dir=staging)


def parse_precision_overrides(texts: list[str]) -> dict[str, dict[str, str]]:
    """``LAYER.FIELD=TYPE`` strings → ``{layer: {field: type}}``; a malformed TYPE is a one-line error."""

    overrides: dict[str, dict[str, str]] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        layer, dot, field = key.partition(".")
        if not (sep and dot and value):
            raise QTriggerError(f"--override {text!r}: expected LAYER.FIELD=TYPE, e.g. dense_0.accum=ap_fixed<12,4>")
        try:
            parse_fixed(value)
        except ValueError as err:
            raise QTriggerError(f"--override {text!r}: {err}") from None
        overrides.setdefault(layer, {})[field] = value
    return overrides


def check_override_layers(overrides: dict[str, dict[str, str]], keras_model) -> None:
    """Every ``--override`` layer must name a layer of the model (before any conversion)."""
    names = [layer.name for layer in keras_model.layers]
    unknown = [layer for layer in overrides if layer not in names]
    if unknown:
        raise QTriggerError(f"--override: no layer {', '.join(map(repr, unknown))} in the model; "
                            f"its layers: {', '.join(names)}")


def load_inputs(path: str | Path):
    """Network inputs: a 2-D (events x features) or 3-D (jets x constituents x features) ``.npy`` array, or an
    ``.npz`` with one such array per model input (by input name); non-empty, finite and numeric, else a
    one-line error."""
    import numpy as np

    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise QTriggerError(f"{path}: not a readable .npy/.npz array ({type(err).__name__})") from None
    if isinstance(loaded, np.ndarray):
        return _checked_inputs(loaded, str(path))
    with loaded:
        return {name: _checked_inputs(loaded[name], f"{path}[{name}]") for name in loaded.files}


def _checked_inputs(inputs, source: str):
    import numpy as np

    if not np.issubdtype(inputs.dtype, np.number) or np.issubdtype(inputs.dtype, np.complexfloating):
        raise QTriggerError(f"{source}: expected a real numeric array, got dtype {inputs.dtype}")
    if inputs.ndim not in (2, 3) or 0 in inputs.shape:
        raise QTriggerError(f"{source}: expected a non-empty 2-D array (events x features) or 3-D array "
                            f"(jets x constituents x features), got shape {inputs.shape}")
    if not np.isfinite(inputs).all():
        bad = (~np.isfinite(inputs.reshape(len(inputs), -1))).any(axis=1)
        raise QTriggerError(f"{source}: {int(bad.sum())} rows hold NaN/inf; "
                            "network inputs must be finite")
    return inputs


def hls_check(run_dir: str | Path | None = None, model: str | Path | None = None, inputs: str | Path | None = None,
              overrides: list[str] | None = None, write: bool = True):
    """``qtrigger hls check``: bit-exactness of a run's network (or a saved QKeras model) in C-simulation.

    Returns the :class:`~qtrigger.firmware.check.CheckResult`; for a run without overrides it is
    also written to ``<run>/hls_check.json`` when ``write``.
    """

    if bool(run_dir) == bool(model):
        raise QTriggerError("hls check: give a run directory or --model FILE.h5 --inputs FILE.npy")
    precision = parse_precision_overrides(overrides or [])
    if model:
        if not inputs:
            raise QTriggerError("hls check --model needs --inputs FILE.npy (network inputs, one row per event)")

        if not Path(model).is_file():
            raise QTriggerError(f"{model}: no such model file")
        if Path(model).suffix == ".keras":
            return _check_hgq(_load_keras3(Path(model)), load_inputs(inputs), HLSConfig(), "check", str(model),
                              precision)
        _check_hdf5(Path(model))
        x = load_inputs(inputs)
        keras_model, hls_cfg, name = load_model(model), HLSConfig(), "check"
    else:
        finished = FinishedRun.load(run_dir)
        x = load_inputs(inputs) if inputs else finished.test_jets()["inputs"]
        keras_model, hls_cfg, name = finished.load_model("qat"), finished.config.hls, finished.config.name

    source = str(inputs) if inputs else f"{run_dir} test jets"
    if is_hgq_model(keras_model):  # a run of quantization.method: hgq
        result = _check_hgq(keras_model, x, hls_cfg, name, source, precision)
        if write:
            write_json(Path(run_dir) / "hls_check.json", result.as_dict())
        return result
    canonical, spelling = canonical_set_model(keras_model)  # TimeDistributed / mask-multiply DeepSets
    combined = spelling.inputs(x, source)
    check_override_layers(precision, canonical)
    shape = spelling.array_shape or tuple(canonical.inputs[0].shape[1:])
    if combined.shape[1:] != shape:
        what = f"{combined.shape[1]} features per row" if combined.ndim == 2 else f"jets of shape {combined.shape[1:]}"
        raise QTriggerError(f"{inputs}: {what}, the model takes {shape[-1] if len(shape) == 1 else shape}")
    with tempfile.TemporaryDirectory(prefix="qtrigger-check-") as tmp:  # hls_check canonicalizes again (notes)
        result = check_model(keras_model, x, hls_cfg, Path(tmp), name, precision_overrides=precision, source=source)
    if run_dir and not precision and write:
        write_json(Path(run_dir) / "hls_check.json", result.as_dict())
    return result


def _load_keras3(model: Path):
    """A Keras-3 model saved with HGQ2 layers (``quantization.method: hgq``; the HGQ2 world stays deferred)."""
    from qtrigger.models.hgq import load_hgq

    return load_hgq(model)


def _check_hgq(keras_model, x, hls_cfg: HLSConfig, name: str, source: str, precision: dict):
    """``hls check`` of an HGQ2 model: hls4ml's Keras-3 C-simulation against the exact reference."""
    if precision:
        raise QTriggerError("hls check: --override applies to QKeras models; HGQ2 models carry their own types")
    with tempfile.TemporaryDirectory(prefix="qtrigger-check-") as tmp:
        return check_hgq_model(keras_model, x, hls_cfg, Path(tmp), name, source=source)


def hls_build(run_or_project: str | Path, steps: dict[str, bool]) -> Path:
    """``qtrigger hls build``: the vendor build of a run's (or a loose) HLS project; returns the project folder."""

    path = Path(run_or_project)
    if (path / "metrics.json").is_file():
        finished = FinishedRun.load(path)
        project, backend = finished.hls_project_dir, finished.result.hls.get("backend", "Vivado")
    else:
        project, backend = path, "Vivado"
    if project is None or not project.is_dir():
        raise QTriggerError(f"{run_or_project}: HLS project {project} does not exist")
    if not any(steps.values()):
        steps = dict(steps, synth=True)
    vendor.build_project(project, backend=backend, **steps)
    return project


def hls_report(run_or_project: str | Path, project: str | Path | None = None) -> dict:
    """``qtrigger hls report``: read vendor reports; for a run, record them in its ``metrics.json``."""

    path = Path(run_or_project)
    finished = FinishedRun.load(path) if (path / "metrics.json").is_file() else None
    folder = Path(project) if project else (finished.hls_project_dir if finished else path)
    reports = vendor.read_reports(folder)
    if finished is not None:
        budget = (finished.result.hls.get("budget", {}).get("checks", {}).get("latency_ns", {}).get("budget", 100.0))
        finished.result.hls["synth"] = {
            "hls_report": reports["hls_report"],
            "synthesis_report": reports.get("synthesis_report"),
            "budget": check_budget(reports["hls_report"], budget),
        }
        finished.save_result()
    return reports
