"""Rate errors when events share an interaction (a reused pileup-library interaction): qtrigger.trigger.shared."""

from __future__ import annotations

import numpy as np
import pytest

from qtrigger.trigger.rates import WeightedRate
from qtrigger.trigger.shared import group_codes, grouped_tail_sums


def test_grouped_tail_sums_equal_the_sums_over_groups():
    rng = np.random.default_rng(5)
    keys, weight = rng.integers(0, 40, 300), rng.exponential(1.0, 300)
    group = rng.integers(0, 60, 300).astype(float)
    codes = group_codes(group)
    thresholds = np.array([-1, 0, 7, 20, 39, 40])
    n, sumw, square, cross = grouped_tail_sums(keys, weight, codes, thresholds)
    for k, t in enumerate(thresholds):
        fired = keys >= t
        a = np.bincount(codes, weights=weight * fired, minlength=codes.max() + 1)
        total = np.bincount(codes, weights=weight)
        assert n[k] == fired.sum() and sumw[k] == pytest.approx(weight[fired].sum())
        assert square[k] == pytest.approx((a**2).sum()) and cross[k] == pytest.approx((a * total).sum())


def test_one_event_per_group_changes_nothing():
    rng = np.random.default_rng(6)
    keys, weight = rng.integers(0, 50, 400), rng.exponential(1.0, 400)
    plain = WeightedRate(weight, 1e6, "crossing", np.ones(400, bool))
    grouped = WeightedRate(weight, 1e6, "crossing", np.ones(400, bool), group=np.arange(400) * 1.5)
    for a, b in zip(plain.at(keys, [10, 30, 45]), grouped.at(keys, [10, 30, 45])):
        assert np.allclose(a, b)


def test_an_interaction_drawn_four_times_counts_once():
    """Every crossing repeated 4 times (one library interaction in 4 crossings): the grouped error and n_eff are
    those of the crossings without the copies, where sum w^2 would shrink the error by 2."""
    rng = np.random.default_rng(7)
    keys = rng.integers(0, 100, 500)
    once = WeightedRate(np.ones(500), 3e7, "zero_bias", np.ones(500, bool))
    copies = np.repeat(keys, 4)
    naive = WeightedRate(np.ones(2000), 3e7, "zero_bias", np.ones(2000, bool))
    grouped = WeightedRate(np.ones(2000), 3e7, "zero_bias", np.ones(2000, bool), group=np.repeat(np.arange(500.0), 4))
    r1, e1, _, n1 = once.at(keys, [50, 90])
    r4, e4, _, n4 = grouped.at(copies, [50, 90])
    _, e_naive, _, _ = naive.at(copies, [50, 90])
    assert np.allclose(r1, r4) and np.allclose(e1, e4) and np.allclose(n1, n4)
    assert np.allclose(e_naive, e1 / 2)
    point = grouped.point(copies, 90)
    assert point.n_fired == 4 * (keys >= 90).sum() and point.n_eff_fired == pytest.approx((keys >= 90).sum())
