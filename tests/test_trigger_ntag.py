"""The ht_ntag seed family: HT >= H, >= n jets with pT >= p, >= k of them tagged (score >= t)."""

import numpy as np
import pytest

from qtrigger.fixedpoint import FixedType
from qtrigger.inputs.seed_jets import NO_CODE, JetWords, SeedJets
from qtrigger.trigger.rates import WeightedRate, split_events
from qtrigger.trigger.seed_decision import _python_seed_decisions, check_seed_csim, random_seed_jets, write_seed_hls
from qtrigger.trigger.seeds import GridSpec, Seed, best_rows, outer_grid, score_grid, search_family, tag_grid
from qtrigger.trigger.working_points import seed_from_dict
from tests.test_trigger_seeds import _toy_sample, _unit_rate

WORDS = JetWords(pt_lsb_gev=0.25, pt_bits=12, ht_bits=12, ht_jet_pt_gev=30.0)
N = NO_CODE


def _events(rows):
    """SeedJets from rows (HT, [(pT code, score code), ...]); 6 slots, the first 4 scored; HT given as is."""
    pt = np.zeros((len(rows), 6), np.int64)
    score = np.full((len(rows), 6), NO_CODE, np.int64)
    valid = np.zeros((len(rows), 6), bool)
    for i, (_, jets) in enumerate(rows):
        for j, (p, s) in enumerate(jets):
            pt[i, j], valid[i, j] = p, True
            score[i, j] = s if j < 4 else NO_CODE
    return SeedJets(pt, score, valid, np.array([h for h, _ in rows], np.int64), 4)


def test_ht_ntag_on_hand_made_events_with_ties_at_every_threshold():
    seed = Seed("ht_ntag", 3, jet_pt_code=120, score_code=10, ht_code=600, n_tagged=2)
    rows = [
        (600, [(120, 10), (120, 10), (120, -5)]),            # every threshold met with equality: fires
        (600, [(120, 10), (120, 10), (119, -5)]),            # third jet one code below p: 2 < n jets
        (600, [(120, 10), (120, 9), (120, -5)]),             # second tag one code below t: 1 < k tagged
        (599, [(120, 10), (120, 10), (120, -5)]),            # HT one code below H
        (600, [(200, -5), (150, -5), (130, 10), (125, 10)]),  # the tags on the 3rd and 4th counted jets: fires
        (600, [(200, -5), (150, -5), (130, -5), (125, 10), (121, 99), (120, 99)]),  # 5th/6th slots unscored
        (600, [(200, 10), (150, 10), (119, 10), (118, 10)]),  # tagged jets below p do not count as tags or jets
        (600, [(200, 10), (150, 10), (130, -5), (119, 99)]),  # 3 jets >= p, 2 tagged: fires
        (600, []),                                            # no jets
    ]
    jets = _events(rows)
    fires = [True, False, False, False, True, False, False, True, False]
    assert seed.fires(jets).tolist() == fires
    assert seed.keys(jets).tolist() == [600 if f else (599 if i == 3 else N) for i, f in enumerate(fires)]
    # n, p, k, t relaxed by one each: the failing event of that threshold now fires
    assert Seed("ht_ntag", 2, 120, 10, 600, 2).fires(jets)[1]
    assert Seed("ht_ntag", 3, 119, 10, 600, 2).fires(jets)[1]
    assert Seed("ht_ntag", 3, 120, 10, 600, 1).fires(jets)[2]
    assert Seed("ht_ntag", 3, 120, 9, 600, 2).fires(jets)[2]
    assert Seed("ht_ntag", 3, 120, 10, 599, 2).fires(jets)[3]
    assert not Seed("ht_ntag", 3, 120, 10, 600, 3).fires(jets)[7]  # k = n = 3: only 2 of them tagged
    parts = seed.ntag_parts(jets)
    assert parts[0].tolist() == [True, False, True, True, True, True, False, True, False]
    assert parts[1][:3].tolist() == [10, 10, 9]  # the 2nd largest score of the counted jets


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_k0_is_the_ht_family_and_k_n_is_ht_tagged(n):
    score_type = FixedType(8, 3)
    for p, t, h in [(80, -10, 700), (120, 3, 900), (160, 0, 4095)]:
        probe = Seed("ht_ntag", n, jet_pt_code=p, score_code=t, ht_code=h, n_tagged=n)
        for jets in (random_seed_jets(probe, WORDS, score_type, 6, 4, 3000, seed_rng=n),
                     _toy_sample(3, 3000, 300)[0]):
            zero = Seed("ht_ntag", n, jet_pt_code=p, score_code=t, ht_code=h, n_tagged=0)
            assert np.array_equal(zero.keys(jets), Seed("ht", n, jet_pt_code=p, ht_code=h).keys(jets))
            tagged = Seed("ht_tagged", n, jet_pt_code=p, score_code=t, ht_code=h)
            assert np.array_equal(probe.keys(jets), tagged.keys(jets))
            assert np.array_equal(probe.fires(jets), tagged.fires(jets))


def test_ht_ntag_agrees_with_the_counting_reference_of_the_cpp():
    score_type = FixedType(8, 3)
    for seed in [Seed("ht_ntag", 3, 120, 3, 900, 1), Seed("ht_ntag", 4, 80, -10, 700, 2),
                 Seed("ht_ntag", 5, 160, 0, 1000, 3), Seed("ht_ntag", 2, 120, 5, 500, 0)]:
        jets = random_seed_jets(seed, WORDS, score_type, 6, 4, 4000, seed_rng=3)
        want = _python_seed_decisions(seed, jets, WORDS, 4, score_type)
        assert np.array_equal(seed.fires(jets), want[:, 0].astype(bool)), seed
        assert 0.02 < want[:, 0].mean() < 0.98 and (jets.ht == seed.ht_code).sum() > 20  # at the thresholds


def test_describe_as_dict_and_round_trip():
    seed = Seed("ht_ntag", 3, jet_pt_code=120, score_code=7, ht_code=1000, n_tagged=1)
    text = seed.describe(WORDS, 0.1)
    assert text == "HT >= 250 GeV and >= 3 jets with pT >= 30 GeV, >= 1 of them with score >= 0.7"
    d = seed.as_dict(WORDS, 0.1)
    assert d["n_tagged"] == 1 and d["tuned"] == "ht" and d["description"] == text and seed.tagged
    assert seed_from_dict(d) == seed
    old = Seed("ht_tagged", 2, 80, 3, 900)
    assert seed_from_dict(old.as_dict(WORDS, 0.1)) == old and old.as_dict(WORDS)["n_tagged"] is None
    assert "and score >= code 3" in old.describe(WORDS)
    assert seed.with_tuned(1200) == Seed("ht_ntag", 3, 120, 7, 1200, 1)


def test_tag_grid_reaches_the_reference_efficiencies():
    reference = np.arange(100)  # codes 0..99, one jet each
    assert tag_grid(reference, [0.95, 0.5, 0.05]) == [5, 50, 95]  # score >= 5 keeps 95 of 100
    rng = np.random.default_rng(0)
    reference = rng.integers(-50, 50, 1234)
    grid = tag_grid(np.r_[reference, [NO_CODE] * 10])
    assert (reference >= grid[0]).mean() >= 0.95 and (reference >= grid[0] + 1).mean() < 0.95
    assert len(grid) <= 19 and grid == sorted(grid)
    assert tag_grid(np.array([], np.int64)) == []


def test_outer_grid_of_ht_ntag():
    grid = GridSpec(pt_min_gev=20, pt_step_gev=10, ht_jet_pt_max_gev=50)
    outer = outer_grid("ht_ntag", grid, WORDS, 2, 6, [1, 2, 3], tags=[5, 6])
    assert {s.score_code for s in outer} == {5, 6} and all(s.family == "ht_ntag" for s in outer)
    assert all(1 <= s.n_tagged <= min(s.n_jets, 2) for s in outer)
    # n = 1..4, p = 20..50 GeV (4 codes), k = 1..min(n, 2), 2 tags
    assert len(outer) == (1 + 2 + 2 + 2) * 4 * 2
    assert {s.score_code for s in outer_grid("ht_ntag", grid, WORDS, 2, 6, [1, 2, 3])} == {1, 2, 3}


def test_search_finds_the_best_ht_ntag_seed_at_a_rate():
    jets, background, signal = _toy_sample(1, 20_000, 2_000)
    calibration, held_out = split_events(background, 11)
    signal_a, _ = split_events(signal, 12)
    cal = _unit_rate(calibration)
    grid = GridSpec(pt_min_gev=20, pt_step_gev=10, ht_jet_pt_max_gev=50, score_steps=16)
    scores = score_grid(jets.score[calibration].ravel(), grid.score_steps)
    targets = [20e3, 5e3]
    ntag = search_family("ht_ntag", outer_grid("ht_ntag", grid, WORDS, 4, 6, scores), jets, cal, jets, signal_a,
                         targets)
    tagged = search_family("ht_tagged", outer_grid("ht_tagged", grid, WORDS, 4, 6, scores), jets, cal, jets,
                           signal_a, targets)
    assert all(r.calibration_rate_hz <= r.target_rate_hz for r in ntag)
    for target in targets:
        best = best_rows(ntag, ("ht_ntag",))[target]
        # the cached search keys are the seed's own keys
        keys = best.seed.keys(jets)
        assert best.selection_efficiency == pytest.approx((keys[signal_a] >= best.seed.ht_code).mean())
        assert cal.at(keys, [best.seed.ht_code])[0][0] == pytest.approx(best.calibration_rate_hz)
        # ht_ntag with the same tag grid contains ht_tagged (k = n): never worse on the selection events
        assert best.selection_efficiency >= best_rows(tagged, ("ht_tagged",))[target].selection_efficiency
        assert best.seed.n_tagged <= best.seed.n_jets


def test_families_accept_ht_ntag_and_need_per_jet_scores():
    from qtrigger.config import validate_config
    from qtrigger.errors import QTriggerError
    from tests.test_event_network import raw_config

    base = {"data": {"samples": [{"name": "s", "files": ["x.root"], "role": "signal"}]}}
    config = validate_config(base | {"trigger": {"families": ["ht_ntag", "ht"]}})
    assert config.trigger.families == ["ht_ntag", "ht"] and config.trigger.grid_tag_efficiencies[0] == 0.95
    with pytest.raises(QTriggerError) as err:
        validate_config(raw_config(trigger__families=["event_network", "ht_ntag", "ht"]), source="c.yaml")
    assert "\n" not in str(err.value) and "not the per-jet families ['ht_ntag']" in str(err.value)
    with pytest.raises(QTriggerError, match="tag-grid efficiency"):
        validate_config(base | {"trigger": {"grid_tag_efficiencies": [0.95, 1.5]}})


def test_ht_ntag_header_states_the_definition(tmp_path):
    seed = Seed("ht_ntag", 3, jet_pt_code=120, score_code=-5, ht_code=1000, n_tagged=1)
    header = write_seed_hls(tmp_path, "demo", seed, WORDS, FixedType(10, 4), 8, 4).read_text()
    assert ">= 3 jets with pT >= 30 GeV, >= 1 of them with score >= -0.078125" in header
    assert "static const int MIN_TAGGED = 1;" in header and "static const bool USE_TAG = false;" in header
    assert "static const int MIN_JETS = 3;" in header


@pytest.mark.slow
@pytest.mark.parametrize("seed", [Seed("ht_ntag", 3, 120, -5, 900, 1), Seed("ht_ntag", 4, 80, 37, 1200, 2),
                                  Seed("ht_ntag", 2, 80, -512, 4095, 2), Seed("ht_ntag", 6, 80, 0, 1500, 4)],
                         ids=lambda s: f"n{s.n_jets}-k{s.n_tagged}")
def test_ht_ntag_decision_is_bit_exact_on_random_and_toy_events(tmp_path, seed):
    toy = _toy_sample(5, 3000, 1000)[0]
    score_type = FixedType(10, 4)
    clipped = SeedJets(np.minimum(toy.pt, WORDS.pt_max_code), np.where(toy.valid[:, :6] & (np.arange(6) < 4),
                       np.clip(toy.score, score_type.min_code, score_type.max_code), NO_CODE), toy.valid,
                       np.minimum(toy.ht, WORDS.ht_max_code), 4)
    result = check_seed_csim(tmp_path, "toy", seed, WORDS, score_type, 6, 4, jets=clipped, n_events=5000)
    assert result == {"events": 9000, "disagreements": 0, "python_fires_disagreements": 0}


@pytest.mark.slow
def test_ht_ntag_decision_check_detects_a_wrong_tag_count(tmp_path, monkeypatch):
    from qtrigger.trigger import seed_decision as decision

    real = decision._seed_header
    monkeypatch.setattr(decision, "_seed_header", lambda *a: real(*a).replace("static const int MIN_TAGGED = 2;",
                                                                              "static const int MIN_TAGGED = 1;"))
    result = check_seed_csim(tmp_path, "toy", Seed("ht_ntag", 3, 120, 0, 900, 2), WORDS, FixedType(10, 4), 6, 4,
                             n_events=5000)
    assert result["disagreements"] > 0
