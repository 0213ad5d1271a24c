"""Seeded, deterministic Keras training with pruning, early stopping and LR reduction."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from qtrigger.config import PruningConfig, TrainingConfig
from qtrigger.errors import QTriggerError
from qtrigger.models.batchnorm import fold_batchnorm, is_batchnorm_layer
from qtrigger.models.recipe import balanced, class_weights, kept_epoch, recipe_callbacks
from qtrigger.models.build import apply_pruning, pruning_steps, pruning_targets, strip_pruning

log = logging.getLogger("qtrigger")
SPARSITY_SLACK = 0.01  # a pruned layer may end this far below the sparsity its mask granularity allows


def configure_tensorflow(seed: int, threads: int) -> None:
    """Seeds, op determinism and thread counts; call before any model is built."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # already initialised in this process: thread counts are fixed from the first call
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@dataclass
class TrainResult:
    """A trained model (pruning stripped, batch norm folded) and its history.

    ``batchnorm`` (JSON-ready, for ``metrics["model"]["batchnorm"]``) describes the folded
    layers; ``unfolded_model`` keeps the trained QDenseBatchnorm model; ``pruning_masks``
    holds each pruned layer's final tfmot mask (1 = kept).
    """

    model: object
    history: dict
    best_epoch: int
    epochs_run: int
    batchnorm: dict | None = None
    unfolded_model: object | None = None
    pruning_masks: dict[str, np.ndarray] = field(default_factory=dict)
    pruning: dict | None = None  # the schedule and each pruned layer's target and achieved sparsity


def pt_eta_weights(pt: np.ndarray, abs_eta: np.ndarray, is_signal: np.ndarray, bins: int = 20) -> np.ndarray:
    """Per-jet weights giving signal the background's (pT, |eta|) distribution; background keeps 1.

    Bins are background quantiles in pT (log-spaced tails handled by quantiles) and
    uniform in |eta|; empty signal bins get weight 0 (no signal there to reweight).
    """
    pt_edges = np.unique(np.quantile(pt[~is_signal], np.linspace(0, 1, bins + 1)))
    pt_edges[0], pt_edges[-1] = -np.inf, np.inf
    eta_edges = np.linspace(0, max(float(abs_eta.max()), 1e-6) + 1e-9, 6)
    sig, _, _ = np.histogram2d(pt[is_signal], abs_eta[is_signal], [pt_edges, eta_edges])
    bkg, _, _ = np.histogram2d(pt[~is_signal], abs_eta[~is_signal], [pt_edges, eta_edges])
    ratio = np.divide(bkg / max(bkg.sum(), 1), sig / max(sig.sum(), 1), out=np.zeros_like(bkg), where=sig > 0)
    i = np.clip(np.searchsorted(pt_edges, pt, side="right") - 1, 0, len(pt_edges) - 2)
    j = np.clip(np.searchsorted(eta_edges, abs_eta, side="right") - 1, 0, len(eta_edges) - 2)
    return np.where(is_signal, ratio[i, j], 1.0)


def train(model, x_train, y_train, x_val, y_val, n_classes: int, cfg: TrainingConfig,
          pruning: PruningConfig | None, label: str = "model", sample_weight: np.ndarray | None = None,
          val_sample_weight: np.ndarray | None = None) -> TrainResult:
    """Fit ``model`` (logit outputs); return it with pruning wrappers stripped and batch norm folded.

    ``sample_weight`` (per training jet) multiplies the balanced class weights;
    ``val_sample_weight`` (per validation row) is balanced the same way and weights the
    validation loss, so early stopping and learning-rate reduction judge what training optimises.
    QDenseBatchnorm layers without a ``freeze_step`` freeze at the first epoch early
    stopping may restore (see :func:`batchnorm_freeze_step`); early stopping never
    restores an epoch whose batch-norm statistics were still moving.
    """
    import tf_keras as keras


    steps = int(np.ceil(len(x_train) / cfg.batch_size))
    pruned = pruning is not None and pruning.active
    start_from = int(np.ceil(pruning.end_fraction * cfg.epochs)) if pruned else 0  # judge only fully pruned epochs
    freeze = batchnorm_freeze_step(model, steps, cfg.epochs, start_from if pruned else None)
    if freeze is not None:
        start_from = max(start_from, int(np.ceil(freeze / steps)))
    callbacks = []
    if pruned:
        import tensorflow_model_optimization as tfmot

        targets, schedule = pruning_targets(model, pruning), pruning_schedule(pruning, steps, cfg.epochs)
        if schedule["reached_fraction"] < 1 - SPARSITY_SLACK:
            log.warning("%s: %s", label, schedule_text(schedule))
        model = apply_pruning(model, pruning, steps, cfg.epochs)
        callbacks.append(tfmot.sparsity.keras.UpdatePruningStep())
    binary = n_classes == 1
    loss = keras.losses.BinaryCrossentropy(from_logits=True) if binary else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss)
    callbacks += recipe_callbacks(keras, cfg, start_from)
    per_jet = np.ones(len(y_train)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    k = 2 if binary else n_classes
    if cfg.class_weight == "balanced":
        # balance the (possibly reweighted) class totals
        class_weights(y_train, k)  # raises on an empty class
        per_jet = balanced(per_jet, y_train, k)
    validation = (x_val.astype(np.float32), y_val.astype(np.float32 if binary else np.int64))
    if val_sample_weight is not None:
        w_val = np.asarray(val_sample_weight, np.float64)
        w_val = balanced(w_val, y_val, k) if cfg.class_weight == "balanced" else w_val
        validation = (*validation, w_val.astype(np.float32))
    if cfg.verbose:
        print(f"training {label}: {len(x_train)} jets, {cfg.epochs} epochs max"
              + (f", batch-norm statistics frozen after step {freeze}" if freeze is not None else ""))
    history = model.fit(
        x_train.astype(np.float32), y_train.astype(np.float32 if binary else np.int64),
        validation_data=validation,
        epochs=cfg.epochs, batch_size=cfg.batch_size, sample_weight=per_jet.astype(np.float32),
        callbacks=callbacks, verbose=(1 if sys.stdout.isatty() else 2) if cfg.verbose else 0, shuffle=True,
    )
    val_loss = history.history.get("val_loss", [])
    best_epoch = kept_epoch(cfg, val_loss, start_from)
    masks = pruning_masks(model) if pruned else {}
    achieved = pruning_summary(targets, masks, schedule) if pruned else None
    stripped = strip_pruning(model) if pruned else model
    folded, reports = fold_batchnorm(stripped)
    summary = None
    if reports:
        summary = {"freeze_step": freeze, "steps_per_epoch": steps, "pruning_ranks": "|W| (unfolded kernel, tfmot)",
                   "layers": [r.as_dict() for r in reports],
                   "weights_clipped_fraction": _pooled(reports, "weights"),
                   "biases_clipped_fraction": _pooled(reports, "biases")}
    return TrainResult(folded, {k: [float(v) for v in vals] for k, vals in history.history.items()}, best_epoch,
                       len(val_loss), summary, stripped if reports else None, masks, achieved)


def pruning_schedule(pruning: PruningConfig, steps_per_epoch: int, epochs: int) -> dict:
    """Where tfmot's polynomial-decay schedule (power 3) prunes in a training of ``epochs`` x ``steps_per_epoch``.

    Masks are updated at steps ``begin + k * frequency`` up to ``end`` (and before the last step);
    ``reached_fraction`` is the share of each layer's target the last update reaches (0: never prunes).
    """
    begin, end = pruning_steps(pruning, steps_per_epoch, epochs)
    total = max(1, steps_per_epoch * epochs)
    stop = min(end, total - 1)
    last = begin + (stop - begin) // pruning.frequency * pruning.frequency if stop >= begin else None
    reached = 0.0 if last is None else 1 - (1 - (last - begin) / (end - begin)) ** 3
    return {"steps": total, "epochs": epochs, "steps_per_epoch": steps_per_epoch, "begin_step": begin,
            "end_step": end, "frequency": pruning.frequency, "last_pruning_step": last, "reached_fraction": reached}


def schedule_text(schedule: dict) -> str:
    """Why a schedule falls short, and what to change."""
    s = schedule
    room = min(s["end_step"], s["steps"] - 1) - s["begin_step"]
    fix = (f"a pruning.frequency dividing {room} (e.g. {room}) reaches it, or train longer" if room >= 1
           else "train longer (training.epochs)")
    return (f"the pruning schedule updates its masks every pruning.frequency={s['frequency']} steps from step "
            f"{s['begin_step']} to {s['end_step']} of {s['steps']} training steps ({s['epochs']} epochs x "
            f"{s['steps_per_epoch']}), reaching {100 * s['reached_fraction']:.0f} % of each target sparsity: {fix}")


def pruning_summary(targets: dict[str, float], masks: dict[str, np.ndarray], schedule: dict) -> dict:
    """Each pruned layer's target and achieved sparsity (zeros of its final mask), with the schedule."""
    layers = [{"name": name, "weights": int(mask.size), "target": float(targets[name]),
               "achieved": round(1.0 - float(np.mean(mask)), 4)} for name, mask in masks.items()]
    return {"schedule": schedule, "layers": layers}


def attainable_sparsity(weights: int, target: float) -> float:
    """The sparsity tfmot's mask gives ``weights`` at ``target``: it keeps round(n (1 - target)), at least 1."""
    kept = max(round(weights * (1 - target)), 1)
    return (weights - kept) / weights


def pruning_shortfall(summary: dict | None) -> str | None:
    """A warning when a pruned layer ended more than :data:`SPARSITY_SLACK` below its attainable target."""
    short = [layer for layer in (summary or {}).get("layers", [])
             if layer["achieved"] < attainable_sparsity(layer["weights"], layer["target"]) - SPARSITY_SLACK]
    if not short:
        return None
    layers = ", ".join(f"{layer['name']} {100 * layer['achieved']:.1f} % (target {100 * layer['target']:.1f} %)"
                       for layer in short)
    return (f"pruning fell short of its target: zero weights {layers}; {schedule_text(summary['schedule'])}")


def _pooled(reports, what: str) -> float:
    """Clipped fraction over all folded layers' weights (or biases)."""
    total = sum(getattr(r, what) for r in reports)
    clipped = sum(getattr(r, f"{what}_clipped_fraction") * getattr(r, what) for r in reports)
    return clipped / total if total else 0.0


def batchnorm_freeze_step(model, steps_per_epoch: int, epochs: int, pruned_from_epoch: int | None) -> int | None:
    """Resolve and set the freeze step of the model's QDenseBatchnorm layers; None if it has none.

    Unset layers freeze at the first fully pruned epoch (``pruned_from_epoch``), or after
    half the epochs without pruning. A freeze step at or beyond the last training step is
    an error: the model early stopping restores must have frozen statistics.
    """

    layers = [layer for layer in model.layers if is_batchnorm_layer(layer)]
    if not layers:
        return None
    total = steps_per_epoch * epochs
    default_epoch = pruned_from_epoch if pruned_from_epoch else int(np.ceil(epochs / 2))
    default = max(1, min(default_epoch, epochs - 1) * steps_per_epoch)
    steps = {layer.freeze_step if layer.freeze_step is not None else default for layer in layers}
    if len(steps) > 1:
        raise QTriggerError(f"model: batch-norm layers have different freeze steps {sorted(steps)}; use one")
    step = steps.pop()
    if step >= total:
        raise QTriggerError(f"model.batchnorm_freeze_step={step}: training has only {total} steps "
                            f"({epochs} epochs x {steps_per_epoch}); statistics would never freeze")
    for layer in layers:
        layer.freeze_step = step
    return step


def pruning_masks(model) -> dict[str, np.ndarray]:
    """Each tfmot-wrapped layer's current mask of its (first) prunable weight, by layer name."""
    masks = {}
    for layer in model.layers:
        for _weight, mask, _threshold in getattr(layer, "pruning_vars", [])[:1]:
            masks[layer.layer.name] = np.asarray(mask)
    return masks
