"""Trigger physics on hand-made samples whose answers are known exactly."""

import dataclasses
import math

import numpy as np
import pytest

from qtrigger import trigger
from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType
from qtrigger.trigger import (
    SampleInfo,
    SampleRate,
    calibrate_threshold,
    check_decision_csim,
    efficiencies,
    event_fires,
    event_keys,
    pt_cut_for_rate,
    rate_cross_section,
    rate_zero_bias,
    read_sample_info,
    weighted_fraction,
)

ZB_FULL = 11245.6 * 2748  # 30.9 MHz: every bunch crossing


def info(n=1000, sumw=None, sumw2=None, xsec=0.163, minbias=False, files=("toy.root",)):
    return SampleInfo(n, float(n if sumw is None else sumw), float(n if sumw2 is None else sumw2),
                      xsec, 0.001 if xsec else None, minbias, 30.0, files)


# --------------------------------------------------------------------------- event decisions


def test_event_fires_any_jet_and_min_jets():
    # event 0: pass+fail, 1: fail, 2: no jets, 3: pass+pass, 4: no jets
    jet_event = np.array([0, 0, 1, 3, 3])
    jet_pass = np.array([True, False, False, True, True])
    assert event_fires(jet_pass, jet_event, 5).tolist() == [True, False, False, True, False]
    assert event_fires(jet_pass, jet_event, 5, min_jets=2).tolist() == [False, False, False, True, False]
    assert not event_fires(np.zeros(5, bool), jet_event, 5).any()
    with pytest.raises(ValueError, match="jet_event"):
        event_fires(jet_pass, jet_event, 3)
    with pytest.raises(ValueError, match="min_jets"):
        event_fires(jet_pass, jet_event, 5, min_jets=0)


@pytest.mark.parametrize("min_jets", [1, 2, 3])
def test_event_keys_match_brute_force(min_jets):
    rng = np.random.default_rng(min_jets)
    n_events = 200
    jet_event = np.sort(rng.integers(0, n_events, 700))
    codes = rng.integers(-50, 50, 700)
    mask = rng.random(700) < 0.8
    keys = event_keys(codes, jet_event, n_events, min_jets, mask)
    for t in (-51, -10, 0, 7, 49, 50):
        assert np.array_equal(keys >= t, event_fires(mask & (codes >= t), jet_event, n_events, min_jets))
    for e in range(n_events):
        eligible = np.sort(codes[(jet_event == e) & mask])[::-1]
        expected = eligible[min_jets - 1] if len(eligible) >= min_jets else np.iinfo(np.int64).min
        assert keys[e] == expected


# --------------------------------------------------------------------------- rates and errors


def test_cross_section_rate_unit_weights():
    fires = np.zeros(1000, bool)
    fires[:30] = True
    rate, err = rate_cross_section(fires, np.ones(1000), info())
    assert rate == pytest.approx(2e34 * 0.163e-27 * 0.03, rel=1e-12)  # 97.8 kHz
    assert rate == pytest.approx(97_800.0, rel=1e-12)
    assert err == pytest.approx(2e34 * 0.163e-27 * math.sqrt(0.03 * 0.97 / 1000), rel=1e-12)
    everything, _ = rate_cross_section(np.ones(1000, bool), np.ones(1000), info())
    assert everything == pytest.approx(3.26e6)  # L sigma of HardQCD pTHat > 30 GeV


def test_cross_section_rate_weighted_by_hand():
    weight = np.where(np.arange(1000) % 2 == 0, 1.0, 3.0)  # W = 2000, W2 = 5000
    fires = np.zeros(1000, bool)
    fires[np.flatnonzero(weight == 1.0)[:20]] = True
    fires[np.flatnonzero(weight == 3.0)[:10]] = True  # S = 50, sum_fired w^2 = 110
    rate, err = rate_cross_section(fires, weight, info(sumw=2000, sumw2=5000))
    f = 50 / 2000
    var = ((1 - 2 * f) * 110 + f**2 * 5000) / 2000**2
    assert rate == pytest.approx(3.26e6 * 0.025, rel=1e-12)
    assert err == pytest.approx(3.26e6 * math.sqrt(var), rel=1e-12)
    assert err == pytest.approx(3.26e6 * math.sqrt(107.625 / 4e6), rel=1e-12)
    # the cross-section error in quadrature only on request
    _, with_xsec = rate_cross_section(fires, weight, info(sumw=2000, sumw2=5000), include_xsec_err=True)
    assert with_xsec == pytest.approx(math.hypot(err, rate * 0.001 / 0.163), rel=1e-12)


def test_weighted_binomial_error_matches_toy_experiments():
    rng = np.random.default_rng(1)
    n, p = 1000, 0.05
    weights = rng.exponential(1.0, (3000, n))
    fired = rng.random((3000, n)) < p
    fractions = (weights * fired).sum(1) / weights.sum(1)
    one_w, one_f = weights[0], fired[0]
    _, err = weighted_fraction(one_w[one_f].sum(), (one_w[one_f] ** 2).sum(), one_w.sum(), (one_w**2).sum())
    assert float(err) == pytest.approx(fractions.std(), rel=0.15)
    # unit weights: plain binomial
    f, e = weighted_fraction(30.0, 30.0, 1000.0, 1000.0)
    assert (f, e) == pytest.approx((0.03, math.sqrt(0.03 * 0.97 / 1000)))


def test_cross_section_rate_subset_and_weight_checks():
    fires = np.zeros(500, bool)
    fires[:15] = True
    rate, _ = rate_cross_section(fires, np.ones(500), info())  # half the sample: own normalisation
    assert rate == pytest.approx(97_800.0)
    with pytest.raises(QTriggerError, match="genEventSumw = 2000"):
        rate_cross_section(np.ones(1000, bool), np.ones(1000), info(sumw=2000))
    with pytest.raises(QTriggerError, match="1001 events given"):
        rate_cross_section(np.ones(1001, bool), np.ones(1001), info())
    with pytest.raises(QTriggerError, match="no genXsec_mb"):
        rate_cross_section(fires, np.ones(500), info(xsec=None))


def test_zero_bias_rate_and_refusal():
    fires = np.zeros(1000, bool)
    fires[:30] = True
    rate, err = rate_zero_bias(fires, info(minbias=True))
    assert rate == pytest.approx(0.03 * ZB_FULL, rel=1e-12)
    assert err == pytest.approx(ZB_FULL * math.sqrt(0.03 * 0.97 / 1000), rel=1e-12)
    assert rate_zero_bias(np.ones(1000, bool), info(minbias=True))[0] == pytest.approx(30_902_908.8)
    with pytest.raises(QTriggerError) as excinfo:
        rate_zero_bias(fires, info(minbias=False, files=("qcd.root",)))
    assert str(excinfo.value) == "zero-bias rate needs a minimum-bias sample, but qcd.root has isMinBias = 0"
    with pytest.raises(QTriggerError, match="unequal genWeight"):
        SampleRate(info(minbias=True), "zero_bias")(fires, np.linspace(1, 2, 1000))


# --------------------------------------------------------------------------- Runs tree


def _write_runs(path, n, xsec, xsec_err, minbias=0, pthat=30.0, drop=()):
    import uproot

    fields = {"genEventCount": np.int64, "genEventSumw": np.float64, "genEventSumw2": np.float64,
              "genXsec_mb": np.float64, "genXsecErr_mb": np.float64, "isMinBias": np.int32, "pthatMin": np.float64}
    values = {"genEventCount": n, "genEventSumw": 2.0 * n, "genEventSumw2": 5.0 * n, "genXsec_mb": xsec,
              "genXsecErr_mb": xsec_err, "isMinBias": minbias, "pthatMin": pthat}
    fields = {k: v for k, v in fields.items() if k not in drop}
    with uproot.recreate(path) as f:
        f.mktree("Runs", fields).extend({k: np.array([values[k]], dtype=t) for k, t in fields.items()})
        f.mktree("Events", {"x": np.float32}).extend({"x": np.zeros(3, np.float32)})
    return str(path)


def test_read_sample_info_combines_files(tmp_path):
    a = _write_runs(tmp_path / "a.root", 1000, 0.16, 0.002)
    b = _write_runs(tmp_path / "b.root", 3000, 0.17, 0.001)
    got = read_sample_info([a, b])
    assert (got.n_events, got.sumw, got.sumw2) == (4000, 8000.0, 20000.0)
    assert got.xsec_mb == pytest.approx((1000 * 0.16 + 3000 * 0.17) / 4000)
    assert got.xsec_err_mb == pytest.approx(math.sqrt(2.0**2 + 3.0**2) / 4000)
    assert (got.is_minbias, got.pthat_min, got.files, got.missing) == (False, 30.0, (a, b), ())
    single = read_sample_info(a)
    assert (single.n_events, single.xsec_mb) == (1000, 0.16)


def test_read_sample_info_errors(tmp_path):
    import uproot

    no_runs = tmp_path / "no_runs.root"
    with uproot.recreate(no_runs) as f:
        f.mktree("Events", {"x": np.float32}).extend({"x": np.zeros(2, np.float32)})
    with pytest.raises(QTriggerError) as excinfo:
        read_sample_info([str(no_runs)])
    assert str(excinfo.value) == f"{no_runs}: no TTree 'Runs' (found: Events)"
    lacking = _write_runs(tmp_path / "lacking.root", 10, 0.1, 0.0, drop=("genEventSumw2",))
    with pytest.raises(QTriggerError) as excinfo:
        read_sample_info(lacking)
    assert str(excinfo.value) == f"{lacking}: Runs tree lacks genEventSumw2 (needed to normalise the sample)"
    other = _write_runs(tmp_path / "other.root", 10, 0.1, 0.0, pthat=50.0)
    with pytest.raises(QTriggerError, match="not one process"):
        read_sample_info([_write_runs(tmp_path / "a.root", 10, 0.1, 0.0), other])


def test_cms_like_runs_without_cross_section(tmp_path):
    path = _write_runs(tmp_path / "cms.root", 100, 0.0, 0.0,
                       drop=("genXsec_mb", "genXsecErr_mb", "isMinBias", "pthatMin"))
    got = read_sample_info(path)
    assert got.xsec_mb is None and got.n_events == 100 and f"{path}: genXsec_mb" in got.missing
    with pytest.raises(QTriggerError) as excinfo:
        rate_cross_section(np.ones(100, bool), np.full(100, 2.0), got)
    assert "\n" not in str(excinfo.value) and "no genXsec_mb" in str(excinfo.value)
    with pytest.raises(QTriggerError, match="no isMinBias in its Runs tree"):
        rate_zero_bias(np.ones(100, bool), got)


# --------------------------------------------------------------------------- threshold search


def _one_jet_events(codes):
    codes = np.asarray(codes, dtype=np.int64)
    return codes, np.arange(len(codes)), len(codes)


def test_threshold_lowest_code_and_neighbours():
    codes, jet_event, n = _one_jet_events(np.arange(100))  # event i has one jet with code i
    rate_fn = SampleRate(info(n=100, minbias=True), "zero_bias")
    target = 0.105 * ZB_FULL  # 10.5 of 100 events
    got = calibrate_threshold(codes, jet_event, n, np.ones(n), rate_fn, target)
    assert got.threshold_code == 90 and got.equivalent == (90, 90)
    assert got.rate_hz == pytest.approx(0.10 * ZB_FULL)
    assert got.rate_err_hz == pytest.approx(ZB_FULL * math.sqrt(0.1 * 0.9 / 100))  # 0.03 x 30.9 MHz
    assert (got.below_code, got.rate_below_hz) == (89, pytest.approx(0.11 * ZB_FULL))
    assert (got.above_code, got.rate_above_hz) == (91, pytest.approx(0.09 * ZB_FULL))
    # band: thresholds for target +- 1 sigma: 13.5 and 7.5 events -> 13 fire from 87, 7 from 93
    assert got.band == (87, 93)
    rates = np.array([rate_fn(codes >= t, np.ones(n))[0] for t in range(101)])
    assert got.band == (np.argmax(rates <= target + got.rate_err_hz), np.argmax(rates <= target - got.rate_err_hz))
    # a generic callable (one call per code) gives the same answer
    generic = calibrate_threshold(codes, jet_event, n, np.ones(n), lambda f, w: rate_zero_bias(f, rate_fn.info), target)
    assert generic == got


def test_threshold_between_sparse_codes():
    codes, jet_event, n = _one_jet_events(10 * np.arange(100))  # codes 0, 10, ..., 990
    rate_fn = SampleRate(info(n=100, minbias=True), "zero_bias")
    got = calibrate_threshold(codes, jet_event, n, np.ones(n), rate_fn, 0.105 * ZB_FULL)
    # 891..900 all select events 900..990; 890 adds one more
    assert got.threshold_code == 891 and got.equivalent == (891, 900)
    assert got.rate_below_hz == pytest.approx(0.11 * ZB_FULL)
    assert got.rate_hz == got.rate_above_hz == pytest.approx(0.10 * ZB_FULL)
    assert got.value(FixedType(12, 4)) == 891 / 256
    # sigma = 0.03 of the full rate: 13 events (870..990) fire from 861, 7 (930..990) from 921
    assert got.band == (861, 921)


def test_threshold_band_collapses_when_steps_exceed_sigma():
    codes, jet_event, n = _one_jet_events(np.arange(100_000) // 1000)  # 1000 events per code 0..99
    rate_fn = SampleRate(info(n=n, minbias=True), "zero_bias")
    got = calibrate_threshold(codes, jet_event, n, np.ones(n), rate_fn, 0.105 * ZB_FULL)
    assert got.threshold_code == 90 and got.band == (90, 90)  # 1% steps vs 0.1% error


def test_threshold_min_jets_mask_and_background_events():
    # events 0..49: background, two jets (i, i + 100); events 50..59: signal (ignored by the rate)
    bkg = np.arange(50)
    codes = np.r_[bkg, bkg + 100, np.full(10, 1000)]
    jet_event = np.r_[bkg, bkg, np.arange(50, 60)]
    weight = np.ones(60)
    background = np.arange(60) < 50
    rate_fn = SampleRate(info(n=50, sumw=50, sumw2=50), "cross_section", events=background)
    per_event = 3.26e6 / 50
    got = calibrate_threshold(codes, jet_event, 60, weight, rate_fn, 5 * per_event, min_jets=2)
    assert got.threshold_code == 45 and got.rate_hz == pytest.approx(5 * per_event)  # 2nd largest = i
    got1 = calibrate_threshold(codes, jet_event, 60, weight, rate_fn, 5 * per_event, min_jets=1)
    assert got1.threshold_code == 145 and got1.equivalent == (145, 145)
    eligible = codes < 100  # only the low-code jets are eligible
    masked = calibrate_threshold(codes, jet_event, 60, weight, rate_fn, 5 * per_event, jet_mask=eligible)
    assert masked.threshold_code == 45
    with pytest.raises(QTriggerError, match="nothing can fire"):
        calibrate_threshold(codes, jet_event, 60, weight, rate_fn, 1e5, min_jets=3)
    with pytest.raises(ValueError, match="integer codes"):
        calibrate_threshold(codes.astype(float), jet_event, 60, weight, rate_fn, 1e5)


def test_efficiencies_by_hand():
    # 4 signal events (0-3) and 1 background event (4); signal jets marked s
    codes = np.array([5, 1, 2, 7, 3, 9])
    jet_event = np.array([0, 0, 1, 3, 3, 4])
    signal_jet = np.array([True, False, True, True, False, False])
    signal_events = np.array([True, True, True, True, False])
    got = efficiencies(codes, jet_event, 5, 5, signal_events, signal_jet)
    assert (got.event_efficiency, got.event_efficiency_err) == pytest.approx((0.5, 0.25))  # events 0 and 3 of 4
    assert got.jet_efficiency == pytest.approx(2 / 3)  # codes 5, 2, 7
    assert got.jet_efficiency_err == pytest.approx(math.sqrt(2 / 9 / 3))
    assert got.background_jet_efficiency == pytest.approx(1 / 3)  # codes 1, 3, 9
    assert got.background_rejection == pytest.approx(2 / 3)
    assert (got.n_signal_events, got.n_signal_jets, got.n_background_jets) == (4, 3, 3)
    mask = codes != 7  # the 7 is not eligible: event 3 no longer fires
    assert efficiencies(codes, jet_event, 5, 5, signal_events, signal_jet, jet_mask=mask).event_efficiency == 0.25


def test_pt_cut_for_rate():
    pt = np.arange(10.0, 110.0)  # background event i: one jet of pT 10 + i
    n_bkg = len(pt)
    signal_pt = np.array([120.0, 95.0, 105.0, 30.0])
    jet_pt = np.r_[pt, signal_pt]
    jet_event = np.r_[np.arange(n_bkg), n_bkg + np.arange(4)]
    n = n_bkg + 4
    background = np.arange(n) < n_bkg
    rate_fn = SampleRate(info(n=n_bkg, minbias=True), "zero_bias", events=background)
    got = pt_cut_for_rate(jet_pt, jet_event, n, np.ones(n), rate_fn, 0.10 * ZB_FULL,
                          signal_events=~background, jet_is_signal=~background[jet_event])
    assert (got.pt_cut, got.previous_pt) == (100.0, 99.0)
    assert got.rate_hz == pytest.approx(0.10 * ZB_FULL)
    assert got.efficiency.event_efficiency == pytest.approx(0.5)  # 120 and 105 pass
    assert got.efficiency.jet_efficiency == pytest.approx(0.5)


def test_rate_efficiency_curve_is_consistent():
    rng = np.random.default_rng(3)
    n = 400
    jet_event = rng.integers(0, n, 1500)
    codes = rng.integers(0, 300, 1500)
    signal = np.arange(n) >= 300
    rate_fn = SampleRate(info(n=300, sumw=300, sumw2=300), events=~signal)
    curve = trigger.rate_efficiency_curve(codes, jet_event, n, np.ones(n), rate_fn, signal, max_points=50)
    assert len(curve["threshold"]) <= 50
    assert np.all(np.diff(curve["rate_hz"]) <= 0) and np.all(np.diff(curve["efficiency"]) <= 0)
    t = curve["threshold"][7]
    fires = event_fires(codes >= t, jet_event, n)
    assert curve["rate_hz"][7] == pytest.approx(rate_fn(fires, np.ones(n))[0])
    assert curve["efficiency"][7] == pytest.approx(fires[signal].mean())


# --------------------------------------------------------------------------- HLS decision


@pytest.mark.parametrize(
    "output_type, threshold",
    [(FixedType(10, 4, True, "RND_CONV", "SAT"), 37), (FixedType(8, 3, False, "RND_CONV", "SAT"), 200)],
)
def test_hls_decision_agrees_with_python(tmp_path, output_type, threshold):
    codes, jet_event = trigger.random_decision_events(output_type, threshold, 6, 12_000, seed=5)
    assert (codes == threshold).sum() > 2000 and len(np.unique(jet_event)) > 10_000
    assert check_decision_csim(tmp_path, "toy", output_type, threshold, 6, n_events=12_000, seed=5) == 0
    header = (tmp_path / "toy_decision.h").read_text()
    assert "#pragma HLS UNROLL" in header and "bool accept_jet(score_t score)" in header
    assert "bool accept_event(score_t scores[N_JETS])" in header
    assert f"THRESHOLD_CODE = {threshold}LL" in header


def test_hls_decision_edge_thresholds_and_given_codes(tmp_path):
    t = FixedType(6, 2, True, "RND_CONV", "SAT")  # codes -32..31
    codes = np.array([-32, 31, 0, 5, 5, 5, 4, -1, 31, 30])
    jet_event = np.array([0, 1, 2, 2, 3, 3, 3, 3, 3, 5])  # event 4 empty, event 3 has 5 > 4 jets
    for threshold in (5, -32, 32, 100):  # at min (padding fires), above max (never fires)
        assert check_decision_csim(tmp_path, "edge", t, threshold, 4, n_events=6,
                                   jet_codes=codes, jet_event=jet_event) == 0
    # the driver really sees the decisions: event 3 keeps its first 4 jets (5, 5, 4, -1)
    out = np.loadtxt(tmp_path / "decision_output.txt", dtype=int)
    assert out.shape == (6, 3) and not out[:, 0].any()  # threshold 100 -> nothing fires


def test_hls_decision_needs_gxx(tmp_path, monkeypatch):
    monkeypatch.setattr(trigger.decision.shutil, "which", lambda name: None)
    with pytest.raises(QTriggerError, match="g\\+\\+ not found"):
        check_decision_csim(tmp_path, "toy", FixedType(8, 3), 10, 4)


# --------------------------------------------------------------------------- references and plots


def test_bdt_reference_is_seeded():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    x = rng.normal(size=(3000, 3)) + y[:, None] * np.array([1.5, 0.5, 0.0])
    first = trigger.bdt_reference(x[:2000], y[:2000], x[2000:], y[2000:], seed=7, max_iter=50)
    second = trigger.bdt_reference(x[:2000], y[:2000], x[2000:], y[2000:], seed=7, max_iter=50)
    assert first.auc > 0.8 and np.array_equal(first.scores, second.scores)


def test_plots_write_pngs(tmp_path):
    rng = np.random.default_rng(2)
    n = 300
    jet_event = rng.integers(0, n, 900)
    codes, pt = rng.integers(0, 100, 900), rng.uniform(20, 200, 900)
    signal = np.arange(n) >= 200
    rate_fn = SampleRate(info(n=200, sumw=200, sumw2=200), events=~signal)
    curves = {"network": trigger.rate_efficiency_curve(codes, jet_event, n, np.ones(n), rate_fn, signal),
              "pT cut": trigger.rate_efficiency_curve(pt, jet_event, n, np.ones(n), rate_fn, signal)}
    paths = [trigger.plot_rate_vs_efficiency(tmp_path / "roc.png", curves, target_rate_hz=1e6)]
    passes = {"network": codes >= 50, "pT cut": pt >= 100}
    paths.append(trigger.plot_jet_efficiency(tmp_path / "eff_pt.png", pt, passes, np.linspace(20, 200, 10)))
    lead = trigger.leading_jet_pt(pt, jet_event, n)
    fires = {k: event_fires(v, jet_event, n) for k, v in passes.items()}
    paths.append(trigger.plot_event_efficiency(tmp_path / "eff_event.png", lead, fires, np.linspace(20, 200, 10)))
    assert all(p.stat().st_size > 1000 for p in paths)
    b = trigger.binned_efficiency(pt, pt >= 100, [20, 100, 200])
    assert b["efficiency"].tolist() == [0.0, 1.0] and b["err_low"][0] == 0 and b["err_high"][1] == 0
    assert dataclasses.is_dataclass(SampleInfo)
