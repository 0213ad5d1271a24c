"""Class balancing of training weights, shared by every trainer (QKeras on tf-keras, HGQ2 on Keras 3)."""

from __future__ import annotations

import numpy as np

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
