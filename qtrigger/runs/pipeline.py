"""One run end to end, whatever its input level and model form.

The stages in order: data and inputs (the config's :class:`~qtrigger.levels.base.InputLevel`) → model and
training (the ``model.form``) → the exact integer reference → firmware (hls4ml project, C-simulation)
→ hardware estimate → trigger study and RTL (the level's) → report. Stages pass plain objects:
RunConfig → :class:`~qtrigger.levels.base.Prepared` → trained models → QuantizedNetwork →
HLSProject/CsimResult → :class:`~qtrigger.results.RunResult` → run directory.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from qtrigger import firmware
from qtrigger.config import RunConfig, config_to_dict, load_config
from qtrigger.data.reader import nonfinite_text
from qtrigger.emulate.sets import extract_any_network, settle_overflow
from qtrigger.estimate import estimate_hardware
from qtrigger.firmware.check import precision_profile
from qtrigger.inputs.codes import training_saturation
from qtrigger.levels import Prepared, level_for
from qtrigger.models.autoencoder import train_autoencoder, with_mu_quantizer
from qtrigger.models.build import build_model, copy_dense_weights, count_parameters, model_file, quant_method
from qtrigger.models.train import configure_tensorflow, pruning_shortfall, train
from qtrigger.results import ModelSummary, RunResult
from qtrigger.rundir import claimed_outputs, write_provenance
from qtrigger.runs import report
from qtrigger.runs.preflight import check_run_inputs


def prepare_data(config: RunConfig, progress: bool = False) -> Prepared:
    """The config's training samples as network rows of its input level (labels, split, fixed-point inputs)."""
    return level_for(config).prepare(config, progress)


def run(config: RunConfig | str | Path, overrides: list[str] | None = None, overwrite: bool = False,
        progress: bool = True) -> RunResult:
    """Train QAT + float twin, convert with hls4ml, C-simulate every test row, write the run.

    ``config``: a RunConfig, or a YAML path (with ``--set``-style ``overrides``). Every
    input, output folder and tool is checked before any work; the outputs are locked for
    the whole run and appear only when complete.
    """
    if not isinstance(config, RunConfig):
        config = load_config(config, overrides)
    run_dir = Path(config.output_dir) / str(config.name)
    hls_dir = Path(config.hls.output_dir) / str(config.name)
    check_run_inputs(config)
    started = time.perf_counter()
    with claimed_outputs(run_dir, hls_dir, overwrite) as staged:
        prepared = prepare_data(config, progress=progress)
        warnings = [w for w in [nonfinite_text(prepared.table)] if w]
        warnings += training_saturation(prepared.preprocessor.saturated_fraction, config.features.saturation_intended)
        configure_tensorflow(config.training.seed, config.training.threads)
        write_provenance(staged.run_dir, config_to_dict(config), config.training.threads, config.training.seed,
                         staged.run_id)
        prepared.preprocessor.save(staged.run_dir / "preprocessing.json")
        result, artefacts = run_stages(config, prepared, staged.run_dir, staged.hls_dir)
        result.hls["project_dir"] = str(hls_dir)
        warnings += [w for w in [pruning_shortfall(result.model.extra.get("pruning"))] if w]
        if warnings:
            result.extra["warnings"] = warnings
        result.wall_seconds = round(time.perf_counter() - started, 1)
        report.write_run_report(staged.run_dir, config, result, artefacts)
    result.directory = run_dir
    return result


def run_stages(config: RunConfig, prepared: Prepared, run_dir: Path, hls_dir: Path) -> tuple[RunResult, dict]:
    """Train, take the exact reference, build and C-simulate the firmware, run the trigger study and the RTL;
    return the result and the plots' inputs."""
    level = prepared.input_level
    qat, twin = train_models(config, prepared)
    overflow = settle_overflow(qat.model)  # HGQ2 wrap kept only where unreachable (overflow_mode: WRAP)
    method = quant_method(config.quantization)
    method.save_model(qat.model, run_dir / model_file(config.quantization))
    network = extract_any_network(qat.model)
    x_test = prepared.inputs[prepared.split.test]
    signal = level.test_signal(config, prepared)
    level.save_test_rows(run_dir / "test_jets.npz", config, prepared, signal)
    exact_codes = network.forward_codes(x_test)
    qat_scores = level.scores(config, exact_codes * network.output_type.lsb)
    result = RunResult(run=config.name, data=level.summary(config, prepared),
                       model=model_summary(qat, network, prepared.preprocessor.input_type,
                                           method.parameters(qat.model)),
                       precision_profile=precision_profile(network, x_test),
                       qat=level.score_metrics(config, prepared, qat_scores))
    val_auc = level.validation_auc(config, prepared, network)  # choices without the test rows (scan, recipe)
    if val_auc is not None:
        result.qat.extra["val_auc"] = val_auc
    if overflow:
        result.extra["hgq_overflow"] = overflow
    artefacts = {"test_labels": signal, "scores": {"QAT (exact)": qat_scores}, "history": {"qat": qat.history},
                 "exact_codes": exact_codes, **level.artefacts(config, prepared)}
    if twin is not None:
        twin.model.save(run_dir / "model_float.h5")
        float_scores = level.scores(config, twin.model.predict(x_test.astype(np.float32), batch_size=8192, verbose=0))
        result.float_twin = level.score_metrics(config, prepared, float_scores)
        artefacts["scores"]["float twin"] = float_scores
        artefacts["history"]["float"] = twin.history
    project, result.hls = firmware_stage(level.hls_config(config), config.name, qat.model, network, hls_dir, x_test,
                                         level.input_words(prepared.preprocessor))
    result.csim = {"enabled": config.hls.csim}
    if config.hls.csim:
        csim = firmware.run_csim(project, network, qat.model, x_test, exact_codes, seed=config.training.seed)
        csim_scores = level.scores(config, csim.csim_codes * network.output_type.lsb)
        result.csim.update(csim.to_json())
        result.csim.update(level.csim_metrics(config, prepared, csim_scores, result.qat))
        artefacts["scores"]["C-simulation"] = csim_scores
        artefacts["csim_codes"] = csim.csim_codes
    if config.trigger.enabled:
        result.trigger = level.trigger(config, prepared, network, artefacts, run_dir, hls_dir, project.project_name)
    if config.hls.rtl_enabled:
        result.extra["rtl"] = level.rtl(config, prepared, network, result.trigger, run_dir, hls_dir)
    return result, artefacts


def train_models(config: RunConfig, prepared: Prepared):
    """The QAT model and (``training.float_twin``) its float twin; with ``training.qat_init: float_twin`` the twin
    is trained first and QAT starts from its weights."""
    n_out = prepared.input_level.n_outputs(config)
    weights = prepared.input_level.fit_weights(config, prepared)
    fine_tune = config.training.qat_init == "float_twin"
    twin = fit(config, prepared, n_out, False, *weights) if fine_tune else None
    qat = fit(config, prepared, n_out, True, *weights, init_from=twin.model if fine_tune else None)
    if config.training.float_twin and twin is None:
        twin = fit(config, prepared, n_out, False, *weights)
    return qat, twin if config.training.float_twin else None


def fit(config: RunConfig, prepared: Prepared, n_out: int, quantized: bool, weights=None, val_weights=None,
        init_from=None):
    """Build and train the QAT model (``quantized``) or its float twin on the train/val rows.

    ``weights``/``val_weights``: per train/val row; ``init_from``: a trained model whose Dense kernels and
    biases the new model starts from.
    """
    x, t = prepared.inputs, config.training
    input_type = prepared.preprocessor.input_type if quantized else None
    model = build_model(x.shape[-1], n_out, config.model, config.quantization, input_type, quantized, t.seed)
    if init_from is not None:
        copy_dense_weights(init_from, model)
    return OBJECTIVES[t.objective](config, prepared, model, n_out, quantized, weights, val_weights)


def _fit_classifier(config: RunConfig, prepared: Prepared, model, n_out: int, quantized: bool, weights, val_weights):
    """``training.objective: classifier``: the labelled train/val rows, the method's trainer (QKeras or HGQ2)."""
    x, y, split, t = prepared.inputs, prepared.labels, prepared.split, config.training
    rows = (x[split.train], y[split.train], x[split.val], y[split.val], n_out, t)
    trainer = quant_method(config.quantization).train if quantized else None
    if trainer is not None:  # the method's own trainer (HGQ2: β schedule and EBOPs)
        return trainer(model, *rows, config.quantization, config.pruning, "QAT model", weights, val_weights)
    return train(model, *rows, config.pruning, "QAT model" if quantized else "float twin", weights,
                 val_sample_weight=val_weights)


def _fit_autoencoder(config: RunConfig, prepared: Prepared, model, n_out: int, quantized: bool, weights,
                     val_weights):
    """``training.objective: autoencoder``: ``model`` is the encoder's mu head, trained as a VAE without labels."""
    x, split = prepared.inputs, prepared.split
    model = with_mu_quantizer(model, config.model.autoencoder) if quantized else model
    return train_autoencoder(model, x[split.train], x[split.val], config.model.autoencoder, config.training,
                             "QAT encoder" if quantized else "float encoder", weights, val_weights)


OBJECTIVES = {"classifier": _fit_classifier, "autoencoder": _fit_autoencoder}  # training.objective → trainer


def model_summary(qat, network, input_type, parameters: tuple[int, int] | None = None) -> ModelSummary:
    """Size, derived types and training length of the QAT model (``parameters``: (all, non-zero), else counted
    as for a QKeras model)."""
    params, nonzero = parameters or count_parameters(qat.model)
    summary = ModelSummary(
        parameters=params, nonzero_parameters=nonzero, input_type=str(input_type),
        output_type=str(network.output_type), best_epoch=qat.best_epoch, epochs_run=qat.epochs_run,
        layers=[{"name": s.name, "accum_type": str(s.accum_type),
                 "activation_type": str(s.activation_type) if s.activation_type else None} for s in network.stages])
    val_loss = (getattr(qat, "history", None) or {}).get("val_loss") or []
    if qat.best_epoch is not None and 0 <= qat.best_epoch < len(val_loss):  # model selection without labels (VAE)
        summary.extra["val_loss_kept_epoch"] = round(float(val_loss[qat.best_epoch]), 6)
    if getattr(qat, "batchnorm", None) is not None:  # training with folded batch normalization reports it
        summary.extra["batchnorm"] = qat.batchnorm
    if getattr(qat, "pruning", None) is not None:  # per pruned layer: target and achieved sparsity
        summary.extra["pruning"] = qat.pruning
    if getattr(qat, "widths", None):  # learned widths (HGQ2): per layer, and the resource estimate it trained on
        summary.extra["learned_widths"] = {"ebops": qat.ebops, "layers": qat.widths}
    return summary


def firmware_stage(hls, name: str, qat_model, network, hls_dir: Path, x_test: np.ndarray,
                   input_words=None) -> tuple:
    """Estimate (inputs at ``input_words``, the level's, or the common type), convert and write the HLS project;
    return (project, the ``hls`` section)."""
    hardware = estimate_hardware(network, hls, input_words=input_words)
    project = firmware.convert(qat_model, network, hls, hls_dir, name, x_test[: hls.testbench_jets],
                               compile_model=hls.csim)
    if hls.strategy == "distributed_arithmetic":
        hardware.add_da(project, network, hls)
    section = {"backend": hls.backend, "part": hls.part, "clock_period_ns": hls.clock_period_ns,
               "reuse_factor": hls.reuse_factor, "strategy": hls.strategy, "io_type": hls.io_type,
               **{k: v for k, v in hardware.to_json().items() if k != "estimate_da"},
               "project_name": project.project_name}
    if hardware.da is not None:
        section["estimate_da"] = hardware.da
    return project, section
