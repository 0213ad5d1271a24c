"""One run end to end, and applying a finished run to other files.

Stages pass plain objects: RunConfig → JetTable → PreparedData → trained models →
QuantizedNetwork → HLSProject/CsimComparison → :class:`~qtrigger.results.RunResult` → run directory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtrigger.config import RunConfig, config_to_dict, resolve_sample_files
from qtrigger.constituents import constituent_inputs, finite_constituents
from qtrigger.data import EventSplit, JetTable, make_labels, nonfinite_text, read_jets, split_by_event
from qtrigger.errors import QTriggerError
from qtrigger.metrics import (
    auc_unavailable_reason,
    roc_auc,
    score_from_logits,
    threshold_for_background_efficiency,
    working_point,
)
from qtrigger.preprocess import Preprocessor, run_inputs, saturation_warnings, to_feature_codes
from qtrigger.results import DataSummary, ModelSummary, RunResult, ScoreMetrics
from qtrigger.rundir import RTL_PROJECT, write_stamp
from qtrigger.train import pruning_shortfall

log = logging.getLogger("qtrigger")


@dataclass
class PreparedData:
    """Jets with labels, split by event, as fixed-point network inputs."""

    table: JetTable
    labels: np.ndarray
    split: EventSplit
    inputs: np.ndarray
    preprocessor: Preprocessor


def load_jets(config: RunConfig, samples: dict[str, list[str]] | None = None, progress: bool = False) -> JetTable:
    """Read the configured (or given) samples with the configured selection (constituent runs: the
    jets only, their constituents come from :func:`qtrigger.constituents.constituent_inputs`)."""
    samples = samples or resolve_sample_files(config)
    return read_jets(
        samples,
        config.features.jet_branches or ["Jet_pt"],
        truth_branch=config.labels.branch,
        pt_min=config.data.selection.pt_min,
        abs_eta_max=config.data.selection.abs_eta_max,
        tree=config.data.tree,
        step_size=config.data.step_size,
        max_events=config.data.max_events,
        on_nonfinite=config.data.on_nonfinite,
        progress=progress,
    )


def prepare_data(config: RunConfig, progress: bool = False) -> PreparedData:
    """Read, label, split by event, quantize features and fit the power-of-two shifts on train."""
    table = load_jets(config, progress=progress)
    if config.features.level == "constituent":
        return _prepare_constituents(config, table)
    labels = jet_labels(config, table)
    split = split_by_event(table, config.data.split.train, config.data.split.val, config.data.split.seed)
    codes = to_feature_codes(table.features, config.features, table.feature_names)
    preprocessor = Preprocessor.fit(codes[split.train], config.features, table.feature_names, raw=table.features[split.train])
    return PreparedData(table, labels, split, preprocessor.transform(codes), preprocessor)


def _prepare_constituents(config: RunConfig, table: JetTable) -> PreparedData:
    """A constituent run's data: jets with a NaN/inf constituent input dropped (or refused) first, per
    ``data.on_nonfinite``; then labels, the split by event and the shifts fitted on train."""
    table, cands = finite_constituents(table, config.features, config.model.constituents, config.data)
    labels = jet_labels(config, table)
    split = split_by_event(table, config.data.split.train, config.data.split.val, config.data.split.seed)
    inputs, preprocessor = constituent_inputs(cands, config.features, split.train)
    return PreparedData(table, labels, split, inputs, preprocessor)


def jet_labels(config: RunConfig, table: JetTable) -> np.ndarray:
    """Labels from truth (default) or, with ``labels.source: sample``, 1 for jets of signal-role samples."""
    if config.labels.source == "sample":
        signal_samples = [i for i, name in enumerate(table.samples)
                          if any(s.name == name and s.role == "signal" for s in config.data.samples)]
        if not signal_samples:
            raise QTriggerError("labels.source: sample needs a data.samples entry with role: signal")
        return np.isin(table.jet_sample, signal_samples).astype(np.int64)
    return make_labels(table.truth, config.labels.mode, config.labels.signal, config.labels.classes)


def trigger_score(config: RunConfig, logits: np.ndarray) -> np.ndarray:
    """Score from logits per the label config."""
    if config.labels.mode == "binary":
        return score_from_logits(logits)
    names = config.labels.class_names
    minus = names.index(config.labels.score.minus) if config.labels.score.minus else None
    return score_from_logits(logits, names.index(config.labels.score.plus), minus)


def signal_mask(config: RunConfig, labels: np.ndarray) -> np.ndarray:
    """Which jets count as signal for ROC/efficiency (delegates to ``config.labels.signal_mask``)."""
    return config.labels.signal_mask(labels)


def _check_trainable(config: RunConfig, prepared: PreparedData, n_classes: int) -> None:
    """Both label classes present overall, >= 10 jets of each in every split, >= 10 events per sample role."""
    binary = config.labels.mode == "binary"
    names = ["background", "signal"] if binary else config.labels.class_names
    overall = np.bincount(prepared.labels, minlength=len(names))
    absent = [name for name, count in zip(names, overall) if count == 0]
    if absent:
        rule = f"labels.signal {config.labels.signal}" if binary else f"labels.classes {config.labels.classes}"
        raise QTriggerError(
            f"labels: no {' or '.join(absent)} jets among {prepared.table.n_jets} selected jets "
            f"(key labels.branch {config.labels.branch}, {rule}); files: {', '.join(prepared.table.files)}")
    for part in ("train", "val", "test"):
        mask = getattr(prepared.split, part)
        counts = np.bincount(prepared.labels[mask], minlength=len(names))
        if counts.min() < 10:
            use = "train on" if part != "test" else "measure on"
            raise QTriggerError(
                f"{part} split has too few jets to {use} (per class: {counts.tolist()}; need >= 10 of each); "
                "use a larger sample"
            )
    _check_events_per_role(config, prepared)


def _check_events_per_role(config: RunConfig, prepared: PreparedData) -> None:
    """>= 10 events of the signal samples and of the background samples in every split (efficiencies, rates)."""
    table, roles = prepared.table, {s.name: s.role for s in config.data.samples}
    for role in ("signal", "background"):
        indexes = [i for i, name in enumerate(table.samples) if roles.get(name) == role]
        if not indexes:
            continue
        of_role = np.isin(table.event_sample, indexes)
        for code, part in enumerate(("train", "val", "test")):
            n = int((of_role & (prepared.split.event_part == code)).sum())
            if n < 10:
                raise QTriggerError(
                    f"{part} split has {n} events of the {role} sample(s) {[table.samples[i] for i in indexes]} "
                    "(need >= 10; efficiencies and rates are quoted on them); use a larger sample")


def run(config: RunConfig | str | Path, overrides: list[str] | None = None, overwrite: bool = False,
        progress: bool = True) -> RunResult:
    """Train QAT + float twin, convert with hls4ml, C-simulate every test jet, write the run.

    ``config``: a RunConfig, or a YAML path (with ``--set``-style ``overrides``). Every
    input, output folder and tool is checked before any work; the outputs are locked for
    the whole run and appear only when complete.
    """
    from qtrigger import report
    from qtrigger.preflight import check_run_inputs
    from qtrigger.preprocess import training_saturation
    from qtrigger.rundir import claimed_outputs, write_provenance

    if not isinstance(config, RunConfig):
        from qtrigger.config import load_config

        config = load_config(config, overrides)
    run_dir = Path(config.output_dir) / str(config.name)
    hls_dir = Path(config.hls.output_dir) / str(config.name)
    check_run_inputs(config)
    started = time.perf_counter()
    with claimed_outputs(run_dir, hls_dir, overwrite) as staged:
        event_level = config.features.level == "event"
        if event_level:  # one input row per event (qtrigger.event_pipeline)
            from qtrigger.event_pipeline import prepare_event_data

            prepared = prepare_event_data(config)
        else:
            prepared = prepare_data(config, progress=progress)
            n_classes = 1 if config.labels.mode == "binary" else len(config.labels.class_names)
            _check_trainable(config, prepared, max(2, n_classes))
        warnings = [w for w in [nonfinite_text(prepared.table)] if w]
        warnings += training_saturation(prepared.preprocessor.saturated_fraction, config.features.saturation_intended)
        from qtrigger.train import configure_tensorflow

        configure_tensorflow(config.training.seed, config.training.threads)
        write_provenance(staged.run_dir, config_to_dict(config), config.training.threads, config.training.seed,
                         staged.run_id)
        prepared.preprocessor.save(staged.run_dir / "preprocessing.json")
        if event_level:
            from qtrigger.event_pipeline import event_stages

            result, artefacts = event_stages(config, prepared, staged.run_dir, staged.hls_dir)
        else:
            result, artefacts = _train_convert_compare(config, prepared, n_classes, staged.run_dir, staged.hls_dir)
        result.hls["project_dir"] = str(hls_dir)
        warnings += [w for w in [pruning_shortfall(result.model.extra.get("pruning"))] if w]
        if warnings:
            result.extra["warnings"] = warnings
        result.wall_seconds = round(time.perf_counter() - started, 1)
        report.write_run_report(staged.run_dir, config, result, artefacts)
    result.directory = run_dir
    return result


def _train_convert_compare(config, prepared, n_classes, run_dir, hls_dir) -> tuple[RunResult, dict]:
    """Train both models, C-simulate the QAT one, run the trigger study; return (result, plot inputs)."""
    from qtrigger.check import precision_profile
    from qtrigger.emulate_sets import extract_any_network

    x, y, split = prepared.inputs, prepared.labels, prepared.split
    n_out = 1 if config.labels.mode == "binary" else n_classes
    weights = training_weights(config, prepared)
    fine_tune = config.training.qat_init == "float_twin"
    twin = _fit(config, prepared, n_out, False, weights) if fine_tune else None  # QAT starts from its weights
    qat = _fit(config, prepared, n_out, True, weights, init_from=twin.model if fine_tune else None)
    qat.model.save(run_dir / "model_qat.h5")
    network = extract_any_network(qat.model)
    x_test, sig_test = x[split.test], signal_mask(config, y[split.test])
    save_test_jets(run_dir / "test_jets.npz", prepared, sig_test)
    exact_codes = network.forward_codes(x_test)
    qat_scores = trigger_score(config, exact_codes * network.output_type.lsb)

    result = RunResult(run=config.name, data=_data_summary(config, prepared),
                       model=_model_summary(qat, network, prepared.preprocessor.input_type),
                       precision_profile=precision_profile(network, x_test),
                       qat=_score_metrics(config, sig_test, qat_scores, threshold=None))
    _add_flavour_aucs(config, prepared, result.qat, qat_scores)
    artefacts = {"test_labels": sig_test, "scores": {"QAT (exact)": qat_scores}, "history": {"qat": qat.history}}
    if config.labels.branch == "Jet_hadronFlavour":
        artefacts["test_flavour"] = prepared.table.truth[split.test]
    if config.training.float_twin:
        twin = twin or _fit(config, prepared, n_out, False, weights)
        twin.model.save(run_dir / "model_float.h5")
        float_scores = trigger_score(config, twin.model.predict(x_test.astype(np.float32), batch_size=8192, verbose=0))
        result.float_twin = _score_metrics(config, sig_test, float_scores, threshold=None)
        _add_flavour_aucs(config, prepared, result.float_twin, float_scores)
        artefacts["scores"]["float twin"] = float_scores
        artefacts["history"]["float"] = twin.history

    project, result.hls = _firmware(config, qat.model, network, hls_dir, x_test)
    result.csim = {"enabled": config.hls.csim}
    if config.hls.csim:
        from qtrigger.firmware import run_csim

        csim = run_csim(project, network, qat.model, x_test, exact_codes, seed=config.training.seed)
        csim_scores = trigger_score(config, csim.csim_codes * network.output_type.lsb)
        score = _score_metrics(config, sig_test, csim_scores, result.qat.threshold).to_json()
        csim.scores = {k: v for k, v in score.items() if k in ("auc", "signal_efficiency", "background_rejection")}
        result.csim.update(csim.to_json())
        artefacts["scores"]["C-simulation"] = csim_scores
        artefacts["csim_codes"] = csim.csim_codes
    if config.hls.rtl_enabled:
        result.extra["rtl"] = _rtl(config, network, x_test, hls_dir)
    if config.trigger.enabled:
        result.trigger = _trigger(config, prepared, network, exact_codes, artefacts, run_dir, hls_dir, project.project_name)
    return result, artefacts


def _fit(config, prepared, n_out: int, quantized: bool, weights, val_weights=None, init_from=None):
    """Build and train the QAT model (``quantized``) or its float twin on the train/val splits.

    ``prepared``: anything with ``inputs``, ``labels``, ``split`` and ``preprocessor`` (per-jet
    :class:`PreparedData` or event-level ``EventData``); ``weights``/``val_weights`` per train/val row.
    ``init_from``: a trained model whose Dense kernels and biases the new model starts from.
    """
    from qtrigger.model import build_model, copy_dense_weights
    from qtrigger.train import train

    x, y, split, t = prepared.inputs, prepared.labels, prepared.split, config.training
    input_type = prepared.preprocessor.input_type if quantized else None
    model = build_model(x.shape[-1], n_out, config.model, config.quantization, input_type, quantized, t.seed)
    if init_from is not None:
        copy_dense_weights(init_from, model)
    return train(model, x[split.train], y[split.train], x[split.val], y[split.val], n_out, t, config.pruning,
                 "QAT model" if quantized else "float twin", weights, val_sample_weight=val_weights)


def _model_summary(qat, network, input_type) -> ModelSummary:
    from qtrigger.model import count_parameters

    params, nonzero = count_parameters(qat.model)
    summary = ModelSummary(
        parameters=params, nonzero_parameters=nonzero, input_type=str(input_type),
        output_type=str(network.output_type), best_epoch=qat.best_epoch, epochs_run=qat.epochs_run,
        layers=[{"name": s.name, "accum_type": str(s.accum_type),
                 "activation_type": str(s.activation_type) if s.activation_type else None} for s in network.stages])
    if getattr(qat, "batchnorm", None) is not None:  # training with folded batch normalization reports it
        summary.extra["batchnorm"] = qat.batchnorm
    if getattr(qat, "pruning", None) is not None:  # per pruned layer: target and achieved sparsity
        summary.extra["pruning"] = qat.pruning
    return summary


def _firmware(config, qat_model, network, hls_dir, x_test) -> tuple:
    """Estimate, convert and write the HLS project; return (project, the ``hls`` section)."""
    from qtrigger import firmware
    from qtrigger.estimate import estimate_hardware

    hls = config.hls
    hardware = estimate_hardware(network, hls)
    project = firmware.convert(qat_model, network, hls, hls_dir, config.name, x_test[: hls.testbench_jets], compile_model=hls.csim)
    if hls.strategy == "distributed_arithmetic":
        hardware.add_da(project, network, hls)
    section = {"backend": hls.backend, "part": hls.part, "clock_period_ns": hls.clock_period_ns,
               "reuse_factor": hls.reuse_factor, "strategy": hls.strategy, "io_type": hls.io_type,
               **{k: v for k, v in hardware.to_json().items() if k != "estimate_da"},
               "project_name": project.project_name}
    if hardware.da is not None:
        section["estimate_da"] = hardware.da
    return project, section


def _rtl(config, network, x_test, hls_dir) -> dict:
    """da4ml Verilog beside the HLS project: measured latency/II, RTL = model, yosys counts (``rtl``)."""
    from qtrigger.firmware.rtl_stage import rtl_stage

    rtl = rtl_stage(network, x_test, config.hls, hls_dir / "rtl", synthesize=config.hls.rtl_synthesis,
                    seed=config.training.seed)
    write_stamp(hls_dir / "rtl", RTL_PROJECT)  # hls rtl --overwrite may replace it
    print(rtl.summary())
    out = rtl.to_json()
    out["directory"] = str(Path(config.hls.output_dir) / str(config.name) / "rtl")
    return out


def _trigger(config, prepared, network, exact_codes, artefacts, run_dir, hls_dir, project_name) -> dict:
    """Menu-style seeds at the target rates on the firmware score codes (see qtrigger.trigger.study)."""
    from qtrigger.trigger.study import study_from_run

    return study_from_run(config, prepared, network, exact_codes, artefacts, run_dir, hls_dir, project_name,
                          trigger_score).to_json()


def training_weights(config: RunConfig, prepared: PreparedData) -> np.ndarray | None:
    """Per training jet weights, or None.

    ``training.event_weights: gen_weight`` weights every jet by its event's generator
    weight, normalised per sample (so a pTHat-biased QCD sample counts jets as the rate
    does); ``training.reweight_pt_eta`` gives signal the background's (pT, |eta|) shape.
    """
    mask, table = prepared.split.train, prepared.table
    weights = np.ones(int(mask.sum()))
    if config.training.event_weights == "gen_weight":
        weights = table.jet_weight[mask].copy()
        samples = table.jet_sample[mask]
        for sample in np.unique(samples):
            in_sample = samples == sample
            weights[in_sample] /= weights[in_sample].mean()
    if config.training.reweight_pt_eta:
        from qtrigger.train import pt_eta_weights

        weights *= pt_eta_weights(table.extra["pt"][mask], np.abs(table.extra["eta"][mask]),
                                  signal_mask(config, prepared.labels[mask]))
    return None if np.all(weights == 1.0) else weights


def save_test_jets(path: Path, prepared: PreparedData, signal: np.ndarray) -> None:
    """The test jets as the network saw them, for later checks and comparisons without re-reading ROOT."""
    mask, table = prepared.split.test, prepared.table
    np.savez_compressed(
        path, inputs=prepared.inputs[mask], labels=prepared.labels[mask], signal=signal,
        event=table.event[mask], sample=table.jet_sample[mask], weight=table.jet_weight[mask],
        pt=table.column("Jet_pt")[mask] if "Jet_pt" in table.feature_names else table.extra["pt"][mask],
        eta=table.extra["eta"][mask],
    )


def _data_summary(config: RunConfig, prepared: PreparedData) -> DataSummary:
    split, table = prepared.split, prepared.table
    signal = signal_mask(config, prepared.labels)
    return DataSummary(
        samples={name: [table.files[i] for i in sorted(set(table.event_file[table.event_sample == k]))]
                 for k, name in enumerate(table.samples)},
        n_events=int(table.n_events),
        n_jets={"train": int(split.train.sum()), "val": int(split.val.sum()), "test": int(split.test.sum())},
        signal_fraction=float(signal.mean()),
        dropped_nonfinite=table.dropped_nonfinite,
        input_type=str(prepared.preprocessor.input_type),
        shifts=dict(zip(prepared.preprocessor.names, prepared.preprocessor.shifts)),
    )


def _add_flavour_aucs(config: RunConfig, prepared: PreparedData, metrics: ScoreMetrics, scores: np.ndarray) -> None:
    """With ``labels.branch: Jet_hadronFlavour``: b vs light and b vs c AUCs of the test jets, all samples and the
    signal-role samples' jets only (``auc_by_flavour``; a tagger is judged on the jets it will tag)."""
    from qtrigger.metrics import flavour_aucs

    if config.labels.branch != "Jet_hadronFlavour":
        return
    table, test = prepared.table, prepared.split.test
    flavour = table.truth[test]
    signal_samples = [k for k, s in enumerate(config.data.samples) if s.role == "signal"]
    in_signal = np.isin(table.jet_sample[test], signal_samples)
    by = {"test_jets": flavour_aucs(flavour, scores)}
    if in_signal.any() and not in_signal.all():
        names = "+".join(config.data.samples[k].name for k in signal_samples)
        by[f"{names}_test_jets"] = flavour_aucs(flavour[in_signal], scores[in_signal])
    metrics.extra["auc_by_flavour"] = by


def _score_metrics(config: RunConfig, signal: np.ndarray, scores: np.ndarray, threshold: float | None) -> ScoreMetrics:
    """AUC and the working point (threshold keeping trigger.background_efficiency of background)."""
    auc = roc_auc(signal, scores)
    out = ScoreMetrics(auc=auc, auc_note=auc_unavailable_reason(signal) if auc is None else None)
    if (~signal).sum() == 0:
        return out
    if threshold is None:
        threshold = threshold_for_background_efficiency(signal, scores, config.trigger.background_efficiency)
    point = working_point(signal, scores, threshold)
    out.threshold = point.threshold
    out.target_background_efficiency = config.trigger.background_efficiency
    out.background_efficiency = point.background_efficiency
    out.signal_efficiency = point.signal_efficiency
    out.signal_efficiency_err = point.signal_efficiency_err
    out.background_rejection = point.background_rejection
    return out


def evaluate(run_dir: str | Path, files: list[str], csim: bool = True, progress: bool = False,
             max_events: int | None = None) -> dict:
    """Apply a finished run (QAT model, and its C-simulation when ``csim``) to other ROOT files.

    Every event is read unless ``max_events`` caps the events read (per call). Features
    saturating their input word far more often than on the training split are reported
    in ``warnings`` (and logged).
    """
    from qtrigger.emulate_sets import extract_any_network
    from qtrigger.results import FinishedRun

    finished = FinishedRun.load(run_dir)
    config = finished.config.model_copy(update={"data": finished.config.data.model_copy(update={"max_events": max_events})})
    if config.features.level == "event":
        from qtrigger.event_pipeline import evaluate_event_files

        return evaluate_event_files(finished, config, list(files), csim=csim, max_events=max_events)
    table = load_jets(config, samples={"data": list(files)}, progress=progress)
    preprocessor = finished.preprocessor
    table, x, saturated = run_inputs(config, table, preprocessor)
    labels = make_labels(table.truth, config.labels.mode, config.labels.signal, config.labels.classes)
    warnings = [w for w in [nonfinite_text(table)] if w] + saturation_warnings(saturated, preprocessor.saturated_fraction)
    for warning in warnings:
        log.warning("evaluate: %s", warning)
    model = finished.load_model("qat")
    network = extract_any_network(model)
    exact_codes = network.forward_codes(x)
    signal = signal_mask(config, labels)
    scores = trigger_score(config, exact_codes * network.output_type.lsb)
    result = {"run": config.name, "files": list(files), "n_events": table.n_events, "n_jets": table.n_jets,
              "n_signal_jets": int(signal.sum()), "max_events": max_events,
              "qat": _score_metrics(config, signal, scores, finished.result.qat.threshold).to_json(),
              "warnings": warnings}
    if csim:
        result["csim"] = csim_in_temporary_project(model, network, config.hls, config.name, x, exact_codes)
    return result


def csim_in_temporary_project(model, network, hls, name: str, x: np.ndarray, exact_codes: np.ndarray) -> dict:
    """Convert ``model`` into a throw-away HLS project, C-simulate ``x`` and compare with ``exact_codes`` (summary)."""
    import tempfile

    from qtrigger import firmware

    with tempfile.TemporaryDirectory(prefix="qtrigger-eval-") as tmp:
        project = firmware.convert(model, network, hls, Path(tmp), name)
        comparison = firmware.compare_codes(firmware.csim_predict_codes(project, network, x), exact_codes,
                                            network.output_type)
    return comparison.summary()


def evaluate_trigger(run_dir: str | Path, signal_files: list[str], background_files: list[str],
                     normalisation: str | None = None, output_dir: str | Path | None = None) -> dict:
    """Redo the trigger study of a finished run on other signal/background files (no retraining).

    The background is the rate sample (split in calibration / held-out halves, seeds re-tuned);
    the run's own seeds are also applied unchanged to all of it (``rate_at_run_threshold_hz``).
    The BDT reference (which needs training) is skipped. Plots and trigger.json go to
    ``output_dir`` (default ``runs/<run>/evaluations/<background file stem>``).
    """
    from qtrigger.config import validate_config
    from qtrigger.emulate_sets import extract_any_network
    from qtrigger.results import FinishedRun
    from qtrigger.rundir import write_json
    from qtrigger.trigger.study import trigger_study

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
    if config.features.level == "event":
        from qtrigger.event_pipeline import evaluate_event_trigger

        result = evaluate_event_trigger(finished, config, list(background_files), out)
        write_json(out / "trigger.json", result)
        return result
    run_trigger = finished.result.trigger or {}
    table = load_jets(config)
    preprocessor = finished.preprocessor
    table, x, _ = run_inputs(config, table, preprocessor)
    network = extract_any_network(finished.load_model("qat"))
    everything = np.ones(table.n_jets, bool)
    split = EventSplit(~everything, ~everything, everything, np.full(table.n_events, 2, np.int8))
    prepared = PreparedData(table, jet_labels(config, table), split, x, preprocessor)

    def score_fn(inputs):
        return np.asarray(trigger_score(config, network.forward_codes(inputs)), dtype=np.int64)

    result = trigger_study(config, prepared, score_fn(x), network.output_type, out, None, None, score_fn=score_fn,
                           run_trigger=run_trigger if "at_rate" in run_trigger else None).to_json()
    write_json(out / "trigger.json", result)
    return result
