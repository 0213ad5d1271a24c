"""What every trainer shares (QKeras on tf-keras, HGQ2 on Keras 3): class balancing and the training recipe
(which epoch is kept, the learning-rate schedule)."""

from __future__ import annotations

import numpy as np

from qtrigger.config import TrainingConfig
from qtrigger.errors import QTriggerError


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Balanced class weights: n / (k · n_c), so each class carries equal total weight."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    if (counts == 0).any():
        missing = [int(i) for i in np.flatnonzero(counts == 0)]

        raise QTriggerError(f"training split has no jets of class {missing}; need more data or other labels")
    return {i: float(len(labels) / (n_classes * c)) for i, c in enumerate(counts)}


def balanced(weight: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Weights rescaled per class so that every present class carries the same total."""
    labels = np.asarray(labels).astype(np.int64)
    totals = np.bincount(labels, weights=weight, minlength=n_classes)
    factor = np.divide(weight.sum(), n_classes * totals, out=np.zeros_like(totals), where=totals > 0)
    return weight * factor[labels]


def recipe_callbacks(keras, cfg: TrainingConfig, start_from: int = 0) -> list:
    """Early stopping and the learning-rate schedule of ``cfg`` for ``keras`` (tf-keras or Keras 3).

    ``keep_epoch: best`` restores the best validation loss from epoch ``start_from`` on, ``last`` keeps the
    final epoch's weights; ``lr_schedule: plateau`` halves (``lr_factor``) the rate on a validation plateau,
    ``cosine`` decays it from ``learning_rate`` to 0 over the configured epochs (per epoch).
    """
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.early_stopping_patience,
                                               restore_best_weights=cfg.keep_epoch == "best",
                                               start_from_epoch=min(start_from, max(cfg.epochs - 1, 0)))]
    if cfg.lr_schedule == "cosine":
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch: cosine_rate(cfg, epoch)))
    else:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=cfg.lr_factor,
                                                           patience=cfg.lr_patience, verbose=0))
    return callbacks


def cosine_rate(cfg: TrainingConfig, epoch: int) -> float:
    """The cosine-decayed learning rate of ``epoch`` (0-based): ``learning_rate`` at 0, towards 0 at the end."""
    return float(cfg.learning_rate * 0.5 * (1.0 + np.cos(np.pi * epoch / max(cfg.epochs, 1))))


def kept_epoch(cfg: TrainingConfig, val_loss: list[float], start_from: int = 0) -> int:
    """The epoch whose weights the trained model holds: the best eligible validation loss, or the last epoch."""
    if not val_loss:
        return 0
    if cfg.keep_epoch == "last":
        return len(val_loss) - 1
    eligible = val_loss[start_from:] if start_from < len(val_loss) else val_loss
    return (len(val_loss) - len(eligible)) + int(np.argmin(eligible))
