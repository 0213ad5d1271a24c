"""Reference seeds at the same rate: a jet-pT cut alone, and a BDT on the same inputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from qtrigger.inputs.seed_jets import event_keys
from qtrigger.metrics import roc_auc
from qtrigger.trigger.efficiency import EfficiencyResult, efficiencies
from qtrigger.trigger.rates import RateFn
from qtrigger.trigger.thresholds import _search


@dataclass
class PtCutResult:
    """The jet-pT threshold (``pt >= pt_cut``) giving a target rate, and its efficiency.

    Any cut in ``(previous_pt, pt_cut]`` selects the same events on the rate sample.
    """

    pt_cut: float
    previous_pt: float | None
    rate_hz: float
    rate_err_hz: float
    target_rate_hz: float
    efficiency: EfficiencyResult | None

    def as_dict(self) -> dict:
        """JSON-ready."""
        return asdict(self)


def pt_cut_for_rate(
    jet_pt: np.ndarray,
    jet_event: np.ndarray,
    n_events: int,
    event_weight: np.ndarray,
    rate_fn: RateFn,
    target_rate_hz: float = 100e3,
    min_jets: int = 1,
    jet_mask: np.ndarray | None = None,
    signal_events: np.ndarray | None = None,
    jet_is_signal: np.ndarray | None = None,
) -> PtCutResult:
    """Lowest observed jet-pT value ``c`` whose rate with ``pt >= c`` is <= target, and its efficiencies.

    The search runs over the distinct per-event keys (one sort); efficiencies (unit weights)
    are computed when ``signal_events`` and ``jet_is_signal`` are given (weighted by ``event_weight``).
    """
    pt = np.asarray(jet_pt, dtype=np.float64)
    keys = event_keys(pt, jet_event, n_events, min_jets, jet_mask)
    candidates, rates, errs, j = _search(keys, np.asarray(event_weight, np.float64), rate_fn, target_rate_hz, min_jets)
    cut = float(candidates[j])
    efficiency = None
    if signal_events is not None and jet_is_signal is not None:
        efficiency = efficiencies(pt, jet_event, n_events, cut, signal_events, jet_is_signal,
                                  jet_mask=jet_mask, min_jets=min_jets, event_weight=event_weight)
    return PtCutResult(cut, float(candidates[j - 1]) if j > 0 else None, float(rates[j]), float(errs[j]),
                       float(target_rate_hz), efficiency)


@dataclass
class BDTResult:
    """Test-set scores of the BDT reference, its AUC (None if too few jets) and the model."""

    scores: np.ndarray
    auc: float | None
    n_iter: int
    model: object = field(repr=False)


def bdt_reference(x_train, y_train, x_test, y_test, seed: int, max_iter: int = 300,
                  learning_rate: float = 0.1, sample_weight=None) -> BDTResult:
    """Seeded ``HistGradientBoostingClassifier`` (early stopping on 20% of train) for binary labels.

    ``sample_weight`` (per training row) weights the fit and the early-stopping validation part.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    y_train = np.asarray(y_train)
    if set(np.unique(y_train).tolist()) - {0, 1}:
        raise ValueError("bdt_reference needs binary 0/1 labels")
    model = HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=learning_rate, early_stopping=True, validation_fraction=0.2,
        n_iter_no_change=10, random_state=seed,
    )
    model.fit(np.asarray(x_train), y_train,
              sample_weight=None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64))
    scores = model.predict_proba(np.asarray(x_test))[:, 1]
    return BDTResult(scores, roc_auc(np.asarray(y_test), scores), int(model.n_iter_), model)
