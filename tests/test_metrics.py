import numpy as np
import pytest

from qtrigger.metrics import (
    binomial_error,
    roc_auc,
    roc_curve,
    score_from_logits,
    threshold_for_background_efficiency,
    working_point,
)


def test_auc_known_values():
    labels = np.array([0, 0, 0, 1, 1, 1] * 10)
    assert roc_auc(labels, np.array([0, 1, 2, 3, 4, 5] * 10)) == 1.0
    assert roc_auc(labels, np.array([5, 4, 3, 2, 1, 0] * 10)) == 0.0
    assert roc_auc(labels, labels.astype(float)) == 1.0
    assert roc_auc(labels, np.zeros(60)) == 0.5  # ties count half
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y, s = rng.integers(0, 2, 500), rng.normal(size=500)
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_auc_refuses_tiny_samples():
    assert roc_auc(np.array([1] * 4 + [0] * 200), np.arange(204.0)) is None


def test_threshold_keeps_at_most_target_background():
    labels = np.r_[np.zeros(1000, int), np.ones(100, int)]
    scores = np.r_[np.arange(1000.0), np.arange(100.0) + 950]
    t = threshold_for_background_efficiency(labels, scores, 0.01)
    assert t == 990.0
    point = working_point(labels, scores, t)
    assert point.background_efficiency == pytest.approx(0.01)
    assert point.signal_efficiency == pytest.approx(0.60)
    assert point.signal_efficiency_err == pytest.approx(np.sqrt(0.6 * 0.4 / 100))


def test_threshold_with_discrete_scores_never_exceeds_target():
    labels = np.r_[np.zeros(100, int), np.ones(10, int)]
    scores = np.r_[np.zeros(95), np.full(5, 3.0), np.full(10, 3.0)]
    t = threshold_for_background_efficiency(labels, scores, 0.01)
    assert working_point(labels, scores, t).background_efficiency <= 0.01


def test_roc_curve_endpoints():
    labels = np.array([0, 1, 0, 1])
    bkg, sig = roc_curve(labels, np.array([0.1, 0.9, 0.4, 0.4]))
    assert bkg[0] == 0 and sig[0] == 0 and bkg[-1] == 1 and sig[-1] == 1
    assert sig[1] == 0.5 and bkg[1] == 0.0


def test_score_difference_of_logits():
    logits = np.array([[1.0, 3.0, 0.5], [2.0, 0.0, 1.0]])
    assert score_from_logits(logits, 0, 2).tolist() == [0.5, 1.0]
    assert score_from_logits(logits[:, :1]).tolist() == [1.0, 2.0]


def test_binomial_error():
    assert binomial_error(50, 100) == pytest.approx(0.05)
    assert binomial_error(0, 0) == 0.0


def test_pt_eta_reweighting_matches_background_spectrum():
    from qtrigger.models.train import pt_eta_weights

    rng = np.random.default_rng(0)
    pt = np.r_[rng.exponential(30, 20000) + 20, rng.exponential(80, 4000) + 20]
    eta = np.r_[rng.uniform(0, 2.5, 20000), rng.uniform(0, 1.0, 4000)]
    signal = np.r_[np.zeros(20000, bool), np.ones(4000, bool)]
    w = pt_eta_weights(pt, eta, signal)
    assert np.all(w[~signal] == 1.0)
    assert np.average(pt[signal], weights=w[signal]) == pytest.approx(pt[~signal].mean(), rel=0.1)
    assert pt[signal].mean() > 1.5 * pt[~signal].mean()


def test_leading_rank_within_event():
    from qtrigger.inputs.seed_jets import leading_rank

    assert leading_rank(np.array([0, 0, 0, 3, 5, 5])).tolist() == [0, 1, 2, 0, 0, 1]


def test_flavour_aucs_pick_the_two_flavours():
    from qtrigger.metrics import flavour_aucs

    flavour = np.repeat([5, 4, 0], 30)
    scores = np.concatenate([np.full(30, 3.0), np.full(30, 2.0), np.full(30, 1.0)])
    scores[:10] = 0.0  # 10 of 30 b jets below every light and c jet
    out = flavour_aucs(flavour, scores)
    assert out["b_vs_light"] == pytest.approx(20 / 30) and out["b_vs_c"] == pytest.approx(20 / 30)
    assert flavour_aucs(flavour[30:], scores[30:]) == {"b_vs_light": None, "b_vs_c": None}  # no b jets
