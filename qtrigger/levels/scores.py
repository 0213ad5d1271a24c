"""Per-jet scores and their test metrics: the trigger score from logits, AUC, the working point, flavour AUCs."""

from __future__ import annotations

import numpy as np

from qtrigger.config import RunConfig
from qtrigger.metrics import (
    auc_unavailable_reason,
    flavour_aucs,
    roc_auc,
    score_from_logits,
    threshold_for_background_efficiency,
    working_point,
)
from qtrigger.results import ScoreMetrics


def trigger_score(config: RunConfig, logits: np.ndarray) -> np.ndarray:
    """Score from logits per the label config (one logit, or the difference of two; no softmax)."""
    if config.labels.mode == "binary":
        return score_from_logits(logits)
    names = config.labels.class_names
    minus = names.index(config.labels.score.minus) if config.labels.score.minus else None
    return score_from_logits(logits, names.index(config.labels.score.plus), minus)


def jet_score_metrics(config: RunConfig, signal: np.ndarray, scores: np.ndarray,
                      threshold: float | None) -> ScoreMetrics:
    """AUC and the working point (threshold keeping ``trigger.background_efficiency`` of background)."""
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


def add_flavour_aucs(config: RunConfig, prepared, metrics: ScoreMetrics, scores: np.ndarray) -> None:
    """With ``labels.branch: Jet_hadronFlavour``: b vs light and b vs c AUCs of the test jets, all samples and the
    signal-role samples' jets only (``auc_by_flavour``; a tagger is judged on the jets it will tag)."""
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
