"""Menu seeds, held-out quotes, intervals, paired gains and the bias guard, on samples with known answers."""

import math

import numpy as np
import pytest

from qtrigger.data.samples import read_sample_info
from qtrigger.fixedpoint import FixedType
from qtrigger.inputs.seed_jets import NO_CODE, JetWords, SeedJets, seed_jets
from qtrigger.trigger.efficiency import clopper_pearson, paired_gain, weighted_efficiency
from qtrigger.trigger.rates import WeightedRate, split_events
from qtrigger.trigger.seed_decision import _python_seed_decisions, random_seed_jets
from qtrigger.trigger.seeds import (
    GridSpec,
    Seed,
    best_rows,
    lowest_code_at_rate,
    outer_grid,
    score_grid,
    search_family,
)
from qtrigger.trigger.summary import trigger_summary_lines
from qtrigger.trigger.working_points import (
    SignalEvents,
    bias_fraction,
    bias_region,
    efficiency_verdict,
    quote,
    rate_verdict,
)

WORDS = JetWords(pt_lsb_gev=0.25, pt_bits=12, ht_bits=12, ht_jet_pt_gev=30.0)


# --------------------------------------------------------------------------- jet slots and HT


def test_seed_jets_slots_codes_and_saturated_ht():
    # event 0: jets 100.3, 40.1, 25.0 (HT counts >= 30 GeV); event 1: none; event 2: three 900 GeV jets
    pt = np.array([100.3, 40.1, 25.0, 900.0, 900.0, 900.0])
    codes = np.array([5, -3, 7, 1, 2, 3])
    jet_event = np.array([0, 0, 0, 2, 2, 2])
    jets = seed_jets(pt, codes, jet_event, 3, n_slots=2, n_scored=1, words=WORDS)
    assert jets.pt.tolist() == [[401, 160], [0, 0], [3600, 3600]]  # floor(pt / 0.25)
    assert jets.valid.tolist() == [[True, True], [False, False], [True, True]]
    assert jets.score[:, 0].tolist() == [5, NO_CODE, 1] and (jets.score[:, 1] == NO_CODE).all()
    assert jets.ht.tolist() == [401 + 160, 0, 4095]  # 7200 saturates at 2^12 - 1


def test_seed_keys_agree_with_counting_reference():
    """Seed.fires (n-th largest key) equals the counting definition the C++ implements."""
    score_type = FixedType(8, 3)
    for seed in [Seed("jets_tagged", 2, jet_pt_code=120, score_code=3),
                 Seed("ht_tagged", 1, jet_pt_code=80, score_code=-10, ht_code=900),
                 Seed("jets", 3, jet_pt_code=150), Seed("ht", 0, ht_code=700), Seed("ht", 2, jet_pt_code=160, ht_code=600)]:
        jets = random_seed_jets(seed, WORDS, score_type, 6, 4, 4000, seed_rng=3)
        want = _python_seed_decisions(seed, jets, WORDS, 4, score_type)[:, 0].astype(bool)
        assert np.array_equal(seed.fires(jets), want), seed
        assert 0.05 < want.mean() < 0.95  # the events really probe the thresholds


# --------------------------------------------------------------------------- rates and tuning


def _unit_rate(events, scale=1e6):
    events = np.asarray(events, bool)
    return WeightedRate(np.ones(int(events.sum())), scale, "zero_bias", events)


def test_lowest_code_at_rate_by_hand():
    keys = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    rate = _unit_rate(np.ones(10, bool), scale=1000.0)  # each event = 100 Hz
    codes, rates, errs = lowest_code_at_rate(keys, rate, [300.0, 250.0, 1000.0, 1.0])
    assert codes.tolist() == [8, 9, 1, 11] and rates.tolist() == [300.0, 200.0, 1000.0, 0.0]
    assert errs[0] == pytest.approx(1000 * math.sqrt(0.3 * 0.7 / 10))


def test_weighted_rate_n_eff_and_error():
    w = np.array([1.0, 1.0, 2.0, 4.0])
    rate = WeightedRate(w, 800.0, "cross_section", np.ones(4, bool))
    point = rate.of(np.array([False, True, True, True]))
    assert point.rate_hz == pytest.approx(700.0) and point.n_fired == 3
    assert point.n_eff_fired == pytest.approx(7.0**2 / 21.0)
    f = 7 / 8
    assert point.rate_err_hz == pytest.approx(800 * math.sqrt(((1 - 2 * f) * 21 + f**2 * 22) / 64))


def test_split_events_is_seeded_and_disjoint():
    events = np.arange(1000) % 3 != 0
    a, b = split_events(events, 5)
    assert not (a & b).any() and np.array_equal(a | b, events) and 0.4 < a.sum() / events.sum() < 0.6
    assert np.array_equal(split_events(events, 5)[0], a) and not np.array_equal(split_events(events, 6)[0], a)


def _toy_events(n_events, rng, signal: bool):
    """Toy events: 1..6 jets, falling pT (harder for signal), scores higher for signal jets."""
    counts = rng.integers(1, 7, n_events)
    jet_event = np.repeat(np.arange(n_events), counts)
    pt = 20 + rng.exponential(60.0 if signal else 18.0, len(jet_event))
    order = np.lexsort((-pt, jet_event))
    pt = pt[order]
    score = np.clip(np.rint(rng.normal(20 if signal else -20, 25, len(jet_event))), -128, 127).astype(np.int64)
    return pt, score, jet_event


def _toy_sample(seed, n_background=40_000, n_signal=4_000):
    rng = np.random.default_rng(seed)
    bkg = _toy_events(n_background, rng, False)
    sig = _toy_events(n_signal, rng, True)
    pt = np.r_[bkg[0], sig[0]]
    score = np.r_[bkg[1], sig[1]]
    jet_event = np.r_[bkg[2], sig[2] + n_background]
    n = n_background + n_signal
    jets = seed_jets(pt, score, jet_event, n, n_slots=6, n_scored=4, words=WORDS)
    background = np.arange(n) < n_background
    return jets, background, ~background


def _tuned(seed_value):
    jets, background, signal = _toy_sample(seed_value)
    calibration, held_out = split_events(background, 11)
    signal_a, signal_b = split_events(signal, 12)
    cal = _unit_rate(calibration)
    grid = GridSpec(pt_min_gev=20, pt_step_gev=10, jet_pt_max_gev=80, ht_jet_pt_max_gev=50, score_steps=16)
    scores = score_grid(jets.score[calibration].ravel(), grid.score_steps)
    rows = []
    for family in ("jets_tagged", "ht_tagged", "jets", "ht"):
        rows += search_family(family, outer_grid(family, grid, WORDS, 4, 6, scores), jets, cal, jets, signal_a,
                              [20e3])
    return jets, rows, _unit_rate(held_out), SignalEvents(jets, signal_b, np.ones(len(signal), bool), "toy", "all")


def test_search_tunes_every_grid_point_and_the_network_wins_on_a_separable_toy():
    jets, rows, held_out, signal = _tuned(1)
    assert all(r.calibration_rate_hz <= 20e3 for r in rows)
    assert len({r.seed.family for r in rows}) == 4
    net = best_rows(rows, ("jets_tagged", "ht_tagged"))[20e3]
    kin = best_rows(rows, ("jets", "ht"))[20e3]
    q_net, q_kin = quote(net, "network", jets, held_out, signal), quote(kin, "kinematic", jets, held_out, signal)
    gain = paired_gain(q_net.seed.fires(jets)[signal.events], q_kin.seed.fires(jets)[signal.events])
    assert gain.value > 5 * gain.err > 0  # scores separate signal much better than pT here
    assert abs(q_net.rate.rate_hz - 20e3) < 3 * q_net.rate.rate_err_hz  # held-out agrees with calibration
    low, high = q_net.band
    assert low <= q_net.efficiency.value <= high and q_net.band_codes[0] <= q_net.band_codes[1]


def test_run_thresholds_hold_on_an_independent_sample():
    """Calibrate on one toy sample, apply the same seeds to another made with other seeds: rates agree."""
    _, rows, held_out, _ = _tuned(1)
    other_jets, other_background, _ = _toy_sample(99)
    other = _unit_rate(other_background)
    for families in (("jets_tagged", "ht_tagged"), ("jets", "ht")):
        seed = best_rows(rows, families)[20e3].seed
        jets_a = _toy_sample(1)[0]
        a, b = held_out.of(seed.fires(jets_a)), other.of(seed.fires(other_jets))
        assert abs(a.rate_hz - b.rate_hz) < 2.5 * math.hypot(a.rate_err_hz, b.rate_err_hz), (seed, a, b)
        assert b.n_eff_fired > 100


# --------------------------------------------------------------------------- intervals and gains


def test_clopper_pearson_values_and_zero_of_n():
    from scipy.stats import beta

    e = clopper_pearson(3, 10)
    assert e.low == pytest.approx(beta.ppf(0.158655, 3, 8), rel=1e-6)
    assert e.high == pytest.approx(beta.ppf(0.841345, 4, 7), rel=1e-6)
    zero = clopper_pearson(0, 4)
    assert zero.upper_limit == pytest.approx(1 - 0.05**0.25) and zero.value == 0.0
    assert zero.text() == "< 52.7 % (95 % CL, 0 of 4 events)"
    assert "0.0 %" not in zero.text()
    assert clopper_pearson(0, 0).text() == "n/a (no events)"


def test_weighted_efficiency_reduces_to_clopper_pearson_for_unit_weights():
    passed = np.r_[np.ones(30, bool), np.zeros(70, bool)]
    w, u = weighted_efficiency(passed, np.ones(100)), clopper_pearson(30, 100)
    assert (w.value, w.low, w.high) == pytest.approx((u.value, u.low, u.high), rel=1e-9)
    heavy = weighted_efficiency(passed, np.r_[np.full(30, 10.0), np.ones(70)])
    assert heavy.method == "clopper_pearson_neff" and heavy.total < 100 and heavy.value == pytest.approx(300 / 370)


def test_paired_gain_by_hand_and_coverage():
    a = np.array([1, 1, 1, 0, 0, 1], bool)
    b = np.array([1, 0, 0, 1, 0, 1], bool)
    g = paired_gain(a, b)
    assert (g.gained, g.lost, g.n) == (2, 1, 6) and g.value == pytest.approx(1 / 6)
    assert g.err == pytest.approx(math.sqrt(3 - 1 / 6) / 6)
    rng = np.random.default_rng(0)
    pulls = []
    for _ in range(400):  # correlated seeds: the paired error is the spread of the gain
        u = rng.random(500)
        pg = paired_gain(u < 0.8, u < 0.75 + 0.1 * (rng.random(500) < 0.2))
        pulls.append((pg.value - 0.03) / pg.err)
    assert 0.85 < np.std(pulls) < 1.15


def test_verdicts():
    from qtrigger.trigger.rates import RatePoint

    assert rate_verdict(RatePoint(104e3, 5e3, 100, 400), 100e3) == "met"
    assert rate_verdict(RatePoint(108e3, 5e3, 100, 400), 100e3) == "undetermined"
    assert rate_verdict(RatePoint(111e3, 5e3, 100, 400), 100e3) == "not met"
    assert efficiency_verdict(clopper_pearson(990, 1000), 0.95) == "met"
    assert efficiency_verdict(clopper_pearson(900, 1000), 0.95) == "not met"
    assert efficiency_verdict(clopper_pearson(19, 20), 0.95) == "undetermined"


# --------------------------------------------------------------------------- bias guard


def _runs_file(path, bins):
    """A file with one Runs entry per call of bins = [(pthat_min, pthat_max, xsec_mb, n_events)]."""
    import uproot

    paths = []
    for k, (low, high, xsec, n) in enumerate(bins):
        name = f"{path}_{k}.root"
        fields = {"genEventCount": np.int64, "genEventSumw": np.float64, "genEventSumw2": np.float64,
                  "genXsec_mb": np.float64, "genXsecErr_mb": np.float64, "isMinBias": np.int32,
                  "pthatMin": np.float64, "pthatMax": np.float64}
        values = {"genEventCount": n, "genEventSumw": float(n), "genEventSumw2": float(n), "genXsec_mb": xsec,
                  "genXsecErr_mb": 0.0, "isMinBias": 0, "pthatMin": low, "pthatMax": high}
        with uproot.recreate(name) as f:
            f.mktree("Runs", fields).extend({key: np.array([values[key]], dtype=t) for key, t in fields.items()})
        paths.append(name)
    return paths


def _guard(files, leading, fires):
    info = read_sample_info(files)
    region = bias_region(info, leading, 1.5)
    rate = WeightedRate(np.ones(len(leading)), 1e6, "zero_bias", np.ones(len(leading), bool))
    return bias_fraction(fires, rate, region), region


def test_bias_guard_fires_on_a_cut_sample_and_on_a_stitched_sample_missing_its_lowest_bin(tmp_path):
    rng = np.random.default_rng(4)
    leading = 20 + rng.exponential(25.0, 5000)  # leading-jet pT of the events
    fires = leading > 35  # a seed reaching into 35-45 GeV
    cut30, region = _guard(_runs_file(tmp_path / "cut30", [(30.0, math.inf, 0.16, 5000)]), leading, fires)
    assert region.below_gev == 45.0 and cut30 > 0.2
    missing_lowest = _runs_file(tmp_path / "bins", [(15.0, 30.0, 1.0, 2500), (30.0, math.inf, 0.16, 2500)])
    missing, region = _guard(missing_lowest, leading, leading > 20)
    assert region.below_gev == 22.5 and missing > 0.01
    complete = _runs_file(tmp_path / "all", [(0.0, 15.0, 50.0, 1000), (15.0, 30.0, 1.0, 2000),
                                             (30.0, math.inf, 0.16, 2000)])
    quiet, region = _guard(complete, leading, leading > 20)
    assert quiet is None and region.below_gev is None


# --------------------------------------------------------------------------- CLI lines


def test_summary_lines_state_samples_errors_and_limits():
    q = {"seed": {"description": ">= 1 jet with pT >= 20 GeV and score >= 0.5"}, "rate_hz": 98e3, "rate_hz_err": 4e3,
         "n_eff_fired": 612.0, "signal_efficiency": 0.0, "signal_efficiency_interval": [0.0, 0.3],
         "signal_efficiency_upper_limit": 0.527, "signal_events": 4, "offline_efficiency": 0.0,
         "signal_efficiency_band": [0.0, 0.0]}
    t = {"enabled": True, "method": "cross_section", "lumi_cm2s": 2e34,
         "rate_sample": {"held_out": "cross-section normalisation, 5,000 events of qcd.root"},
         "signal_sample": {"quoted_on": "signal test events (4)", "offline_selection": ">= 4 jets"},
         "at_rate": {"100": {"network": q, "kinematic": None, "gain_over_best_kinematic": None}},
         "bias_warning": "68 % of the fired rate ... underestimated"}
    lines = trigger_summary_lines(t)
    text = "\n".join(lines)
    assert "98.0 ± 4.0 kHz (n_eff_fired 612)" in text and "< 52.7 % (95 % CL, 0 of 4)" in text
    assert "5,000 events of qcd.root" in text and lines[-1].startswith("WARNING: 68 %")
    assert "0.0 % ± 0.0" not in text
    assert trigger_summary_lines({"enabled": False, "note": "skipped"}) == ["skipped"]


def test_seed_jets_rejects_more_scored_than_slots():
    with pytest.raises(ValueError, match="n_scored"):
        seed_jets(np.array([30.0]), np.array([1]), np.array([0]), 1, n_slots=1, n_scored=2, words=WORDS)
    assert isinstance(random_seed_jets(Seed("jets", 1, jet_pt_code=80), WORDS, FixedType(8, 3), 3, 2, 10), SeedJets)


def test_trigger_config_refuses_bad_rate_settings_in_one_line(tmp_path):
    from qtrigger.config import validate_config
    from qtrigger.errors import QTriggerError
    from qtrigger.trigger.menu import check_rate_files

    base = {"data": {"samples": [{"name": "s", "files": ["x.root"], "role": "signal"}]}}
    for trigger, message in [({"rate_files": []}, "rate_files is empty"),
                             ({"rate_files": ["a.root"], "score": "float"}, "rate_files needs score csim or qat"),
                             ({"families": ["jets", "ht"]}, "at least one network family"),
                             ({"extra_rates_hz": [30e3, 0]}, "every extra rate must be > 0 Hz")]:
        with pytest.raises(QTriggerError, match=message) as err:
            validate_config(base | {"trigger": trigger})
        assert "\n" not in str(err.value) and "key trigger" in str(err.value)
    config = validate_config(base | {"trigger": {"rate_files": [str(tmp_path / "missing_*.root")]}})
    with pytest.raises(QTriggerError, match=r"key trigger.rate_files: no file matches '.*missing_\*.root'"):
        check_rate_files(config)


def test_quote_records_the_calibration_half_n_eff_at_the_tuned_threshold():
    """Issue 32 (label-free model selection): scores 1..6 weighing 1, 1, 1, 1, 2, 4 (1 Hz per unit weight); at 6 Hz
    the tuned code is 5 (6 Hz; code 4 gives 7 Hz), fired by the weights 2 and 4: n_eff = 6^2 / 20 = 1.8."""
    n = 8  # two signal events after the six background ones
    score = np.array([1, 2, 3, 4, 5, 6, 50, 60])
    jets = seed_jets(np.full(n, 100.0), score, np.arange(n), n, n_slots=1, n_scored=1, words=WORDS)
    jets = jets.with_event_score(score)
    background = np.arange(n) < 6
    calibration = WeightedRate(np.array([1.0, 1.0, 1.0, 1.0, 2.0, 4.0]), 10.0, "cross_section", background)
    signal = SignalEvents(jets, ~background, np.ones(n, bool), "toy", "all")
    row, = search_family("event_network", [Seed("event_network", 0, ht_code=0)], jets, calibration, jets,
                         ~background, [6.0])
    q = quote(row, "network", jets, calibration, signal, calibration=calibration)
    assert (q.seed.tuned_code(), q.calibration_rate_hz) == (5, 6.0)
    assert (q.calibration_n_fired, q.calibration_n_eff_fired) == (2, pytest.approx(1.8))
    d = q.as_dict(WORDS, 1.0)["calibration"]
    assert (d["rate_below_hz"], d["n_fired"], d["n_eff_fired"]) == (7.0, 2, pytest.approx(1.8))
    assert quote(row, "network", jets, calibration, signal).calibration_n_eff_fired is None  # no half, no number
