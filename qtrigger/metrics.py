"""Classifier and working-point metrics in plain numpy (no TensorFlow, no hls4ml)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MIN_JETS_PER_CLASS = 20


def score_from_logits(logits: np.ndarray, plus: int = 0, minus: int | None = None) -> np.ndarray:
    """The trigger score: one logit, or the difference of two logits (no softmax)."""
    logits = np.asarray(logits).reshape(len(logits), -1)
    score = logits[:, plus]
    return score - logits[:, minus] if minus is not None else score


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC (scikit-learn; ties count half); None if either class has < 20 jets."""
    labels = np.asarray(labels).astype(bool)
    n_sig, n_bkg = int(labels.sum()), int((~labels).sum())
    if min(n_sig, n_bkg) < MIN_JETS_PER_CLASS:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, np.asarray(scores)))


FLAVOUR_PAIRS = {"b_vs_light": (5, 0), "b_vs_c": (5, 4)}


def flavour_aucs(flavour: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    """Per-jet AUCs between hadron flavours (``Jet_hadronFlavour``: 5 b, 4 c, 0 light): b vs light, b vs c."""
    flavour, scores = np.asarray(flavour), np.asarray(scores)
    out = {}
    for name, (plus, minus) in FLAVOUR_PAIRS.items():
        pick = (flavour == plus) | (flavour == minus)
        out[name] = roc_auc(flavour[pick] == plus, scores[pick])
    return out


def auc_unavailable_reason(labels: np.ndarray) -> str:
    """One line saying why no AUC was computed."""
    labels = np.asarray(labels).astype(bool)
    return (f"too few jets for an AUC: {int(labels.sum())} signal and {int((~labels).sum())} background "
            f"(need >= {MIN_JETS_PER_CLASS} of each)")


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(background efficiency, signal efficiency) for every distinct threshold, score >= t."""
    labels = np.asarray(labels).astype(bool)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
    tp = np.cumsum(sorted_labels)[last_of_value]
    fp = np.cumsum(~sorted_labels)[last_of_value]
    return np.r_[0.0, fp / max(1, (~labels).sum())], np.r_[0.0, tp / max(1, labels.sum())]


def binomial_error(k: float, n: float) -> float:
    """Standard error of an efficiency k/n (normal approximation; 0 for n = 0)."""
    if n <= 0:
        return 0.0
    p = k / n
    return float(np.sqrt(max(p * (1 - p), 0.0) / n))


@dataclass
class WorkingPoint:
    """A score threshold and what it keeps."""

    threshold: float
    background_efficiency: float
    background_efficiency_err: float
    background_rejection: float
    signal_efficiency: float
    signal_efficiency_err: float
    n_signal: int
    n_background: int

    def as_dict(self) -> dict:
        """JSON-ready."""
        return asdict(self)


def threshold_for_background_efficiency(labels: np.ndarray, scores: np.ndarray, target: float) -> float:
    """Lowest threshold t (among observed scores) with background fraction(score >= t) <= target."""
    labels = np.asarray(labels).astype(bool)
    background = np.sort(scores[~labels])
    if len(background) == 0:
        raise ValueError("no background jets to set a threshold on")
    allowed = int(np.floor(target * len(background)))
    candidates = np.unique(np.r_[background, np.inf])
    # number of background jets with score >= c, for each candidate c
    passing = len(background) - np.searchsorted(background, candidates, side="left")
    return float(candidates[np.argmax(passing <= allowed)])


def working_point(labels: np.ndarray, scores: np.ndarray, threshold: float) -> WorkingPoint:
    """Efficiencies (with binomial errors) of ``score >= threshold``."""
    labels = np.asarray(labels).astype(bool)
    passed = scores >= threshold
    n_sig, n_bkg = int(labels.sum()), int((~labels).sum())
    k_sig, k_bkg = int((passed & labels).sum()), int((passed & ~labels).sum())
    bkg_eff = k_bkg / n_bkg if n_bkg else float("nan")
    return WorkingPoint(
        threshold=float(threshold),
        background_efficiency=bkg_eff,
        background_efficiency_err=binomial_error(k_bkg, n_bkg),
        background_rejection=1.0 - bkg_eff,
        signal_efficiency=k_sig / n_sig if n_sig else float("nan"),
        signal_efficiency_err=binomial_error(k_sig, n_sig),
        n_signal=n_sig,
        n_background=n_bkg,
    )
