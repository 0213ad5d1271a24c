"""Runs-tree normalisation: same-bin combination, pTHat-bin stitching, per-event absolute weights."""

import math

import numpy as np
import pytest

uproot = pytest.importorskip("uproot")

from qtrigger.data.samples import (  # noqa: E402
    event_bin_index,
    event_xsec_weights_mb,
    generator_cut_gev,
    read_sample_info,
)
from qtrigger.errors import QTriggerError  # noqa: E402

FIELDS = {"genEventCount": np.int64, "genEventSumw": np.float64, "genEventSumw2": np.float64,
          "genXsec_mb": np.float64, "genXsecErr_mb": np.float64, "isMinBias": np.int32,
          "pthatMin": np.float64, "pthatMax": np.float64, "genFilterEff": np.float64}


def write_runs(path, n, xsec, xsec_err=0.0, sumw=None, sumw2=None, pthat=30.0, pthat_max=None,
               filter_eff=None, minbias=0, drop=(), entries=1):
    """A file with an Events tree (n events, genWeight) and a Runs tree split into ``entries`` rows."""
    values = {"genEventCount": n, "genEventSumw": float(n if sumw is None else sumw),
              "genEventSumw2": float(n if sumw2 is None else sumw2), "genXsec_mb": xsec,
              "genXsecErr_mb": xsec_err, "isMinBias": minbias, "pthatMin": pthat,
              "pthatMax": pthat_max, "genFilterEff": filter_eff}
    fields = {k: t for k, t in FIELDS.items() if k not in drop and values[k] is not None}
    rows = {}
    for k, t in fields.items():
        v = values[k]
        if k in ("genEventCount", "genEventSumw", "genEventSumw2"):  # split the sums over entries
            share = np.full(entries, v / entries)
            rows[k] = share.astype(t)
        else:
            rows[k] = np.full(entries, v, dtype=t)
    with uproot.recreate(path) as f:
        f.mktree("Runs", fields).extend(rows)
    return str(path)


# --------------------------------------------------------------------------- same bin: today's rule


def test_files_of_one_bin_combine_as_before(tmp_path):
    a = write_runs(tmp_path / "a.root", 1000, 0.16, 0.002, sumw=2000, sumw2=5000)
    b = write_runs(tmp_path / "b.root", 3000, 0.17, 0.001, sumw=6000, sumw2=15000, entries=3)
    got = read_sample_info([a, b])
    assert (got.n_events, got.sumw, got.sumw2) == (4000, 8000.0, 20000.0)
    assert got.xsec_mb == pytest.approx((1000 * 0.16 + 3000 * 0.17) / 4000)
    # b's three entries are three independent runs: its error is 0.001 / sqrt(3)
    assert got.xsec_err_mb == pytest.approx(math.sqrt(2.0**2 + 3.0**2 / 3) / 4000)
    assert (got.is_minbias, got.pthat_min, got.files, got.missing) == (False, 30.0, (a, b), ())
    assert len(got.bins) == 1 and not got.is_stitched
    (only,) = got.bins
    assert (only.pthat_min, only.pthat_max, only.filter_efficiency, only.files) == (30.0, math.inf, 1.0, (a, b))
    assert generator_cut_gev(got) == 30.0


def test_real_nanoaod_runs_without_optional_branches(tmp_path):
    path = write_runs(tmp_path / "cms.root", 100, 0.0, drop=("genXsec_mb", "genXsecErr_mb", "isMinBias",
                                                             "pthatMin", "pthatMax", "genFilterEff"))
    got = read_sample_info(path)
    assert got.xsec_mb is None and got.pthat_min is None and got.n_events == 100
    assert f"{path}: genXsec_mb" in got.missing and f"{path}: pthatMin" in got.missing
    assert generator_cut_gev(got) is None
    with pytest.raises(QTriggerError, match="no genXsec_mb") as excinfo:
        event_xsec_weights_mb(got, np.zeros(100, int), np.ones(100))
    assert "\n" not in str(excinfo.value)


# --------------------------------------------------------------------------- stitching


@pytest.fixture
def three_bins(tmp_path):
    """[15, 30) unweighted, [30, 50) with a 50 % filter and two files, [50, inf) weighted."""
    return {
        "low": write_runs(tmp_path / "b0.root", 400, 1.8, 0.02, pthat=15, pthat_max=30),
        "mid1": write_runs(tmp_path / "b1a.root", 100, 0.15, 0.004, pthat=30, pthat_max=50, filter_eff=0.5),
        "mid2": write_runs(tmp_path / "b1b.root", 300, 0.13, 0.002, pthat=30, pthat_max=50, filter_eff=0.5),
        "high": write_runs(tmp_path / "b2.root", 200, 0.02, 0.0005, sumw=50.0, sumw2=20.0, pthat=50,
                           pthat_max=math.inf),
    }


def test_bins_stitch_to_the_sum_of_filtered_cross_sections(three_bins):
    files = list(three_bins.values())
    got = read_sample_info(files[::-1])  # order of the files does not matter
    mid_xsec = (100 * 0.15 + 300 * 0.13) / 400  # same bin: event-weighted average = 0.135
    mid_err = math.sqrt((100 * 0.004) ** 2 + (300 * 0.002) ** 2) / 400
    assert got.xsec_mb == pytest.approx(1.8 + 0.5 * mid_xsec + 0.02)
    assert got.xsec_err_mb == pytest.approx(math.sqrt(0.02**2 + (0.5 * mid_err) ** 2 + 0.0005**2))
    assert got.is_stitched and got.n_events == 1000 and got.pthat_min == 15.0
    assert [(b.pthat_min, b.pthat_max) for b in got.bins] == [(15, 30), (30, 50), (50, math.inf)]
    assert [b.n_events for b in got.bins] == [400, 400, 200]
    assert got.bins[1].files == (three_bins["mid2"], three_bins["mid1"])
    assert got.bins[1].xsec_filtered_mb == pytest.approx(0.5 * mid_xsec)
    assert generator_cut_gev(got) == 15.0


def test_event_weights_sum_to_the_stitched_cross_section(three_bins):
    info = read_sample_info(list(three_bins.values()))
    n = {"low": 400, "mid1": 100, "mid2": 300, "high": 200}
    event_file = np.concatenate([np.full(k, three_bins[name]) for name, k in n.items()])
    gen_weight = np.concatenate([np.ones(400), np.ones(400), np.full(200, 0.25)])  # high: sum 50
    w = event_xsec_weights_mb(info, event_file, gen_weight)
    assert w.sum() == pytest.approx(info.xsec_mb)
    assert w[0] == pytest.approx(1.8 / 400)  # sigma_b w / W_b
    assert w[400] == pytest.approx(0.5 * 0.135 / 400)
    assert w[-1] == pytest.approx(0.02 * 0.25 / 50.0)
    # integer file indices into a longer file list (as JetTable.event_file / JetTable.files)
    table_files = ["ttbar.root", *three_bins.values()]
    index = np.concatenate([np.full(k, 1 + i) for i, k in enumerate(n.values())])
    np.testing.assert_allclose(event_xsec_weights_mb(info, index, gen_weight, files=table_files), w)
    np.testing.assert_array_equal(event_bin_index(info, index, files=table_files),
                                  np.repeat([0, 1, 1, 2], list(n.values())))


def test_a_random_half_is_normalised_per_bin(three_bins):
    info = read_sample_info(list(three_bins.values()))
    event_file = np.concatenate([np.full(400, three_bins["low"]), np.full(100, three_bins["mid1"]),
                                 np.full(300, three_bins["mid2"]), np.full(200, three_bins["high"])])
    gen_weight = np.concatenate([np.ones(800), np.full(200, 0.25)])
    half = np.random.default_rng(3).random(1000) < 0.5
    w = event_xsec_weights_mb(info, event_file[half], gen_weight[half])
    bins = event_bin_index(info, event_file[half])
    for k, b in enumerate(info.bins):  # each bin's share of the half carries that bin's sigma exactly
        assert w[bins == k].sum() == pytest.approx(b.xsec_filtered_mb)
    with pytest.raises(QTriggerError, match="genEventSumw"):  # the whole sample, wrong weights
        event_xsec_weights_mb(info, event_file, np.ones(1000))


def test_old_open_file_stitches_as_the_last_bin(tmp_path):
    low = write_runs(tmp_path / "low.root", 10, 6.0, pthat=10, pthat_max=15)
    old = write_runs(tmp_path / "old.root", 10, 2.0, drop=("pthatMax", "genFilterEff"), pthat=15)
    got = read_sample_info([low, old])
    assert got.xsec_mb == pytest.approx(8.0) and got.bins[-1].pthat_max == math.inf


@pytest.mark.parametrize("case", ["overlap", "open_overlap", "unbinned", "minbias", "no_xsec"])
def test_refused_combinations_name_the_files(tmp_path, case):
    a = write_runs(tmp_path / "a.root", 10, 1.0, pthat=15, pthat_max=30)
    b = {
        "overlap": lambda: write_runs(tmp_path / "b.root", 10, 0.2, pthat=25, pthat_max=50),
        "open_overlap": lambda: write_runs(tmp_path / "b.root", 10, 0.2, pthat=10, drop=("pthatMax",)),
        "unbinned": lambda: write_runs(tmp_path / "b.root", 10, 0.2, drop=("pthatMin", "pthatMax")),
        "minbias": lambda: write_runs(tmp_path / "b.root", 10, 50.0, pthat=30, pthat_max=50, minbias=1),
        "no_xsec": lambda: write_runs(tmp_path / "b.root", 10, 0.2, pthat=30, pthat_max=50,
                                      drop=("genXsec_mb", "genXsecErr_mb")),
    }[case]()
    expected = {"overlap": "overlaps", "open_overlap": "overlaps", "unbinned": "no pthatMin",
                "minbias": "minimum-bias", "no_xsec": "without a cross-section"}[case]
    with pytest.raises(QTriggerError, match=expected) as excinfo:
        read_sample_info([a, b])
    message = str(excinfo.value)
    assert "\n" not in message and b in message
    if case != "no_xsec":
        assert a in message


def test_disagreeing_entries_of_one_file_are_refused(tmp_path):
    path = tmp_path / "two.root"
    with uproot.recreate(path) as f:
        f.mktree("Runs", {k: FIELDS[k] for k in ("genEventCount", "genEventSumw", "genEventSumw2", "pthatMin")}).extend(
            {"genEventCount": np.array([5, 5]), "genEventSumw": np.array([5.0, 5.0]),
             "genEventSumw2": np.array([5.0, 5.0]), "pthatMin": np.array([15.0, 30.0])})
    with pytest.raises(QTriggerError, match=f"{path}: Runs entries disagree on pthatMin"):
        read_sample_info(str(path))


def test_a_missing_bin_is_refused(three_bins):
    info = read_sample_info(list(three_bins.values()))
    event_file = np.concatenate([np.full(400, three_bins["low"]), np.full(100, three_bins["mid1"])])
    with pytest.raises(QTriggerError, match=r"no events given from pTHat bin \[50, inf\) \(.*b2.root\)"):
        event_xsec_weights_mb(info, event_file, np.ones(500))


def test_events_from_a_foreign_file_are_refused(three_bins, tmp_path):
    info = read_sample_info(list(three_bins.values()))
    with pytest.raises(QTriggerError, match="other.root"):
        event_xsec_weights_mb(info, np.array([three_bins["low"], str(tmp_path / "other.root")]), np.ones(2))


# --------------------------------------------------------------------------- the shipped rate sample

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent
# every file, as the configs read it: the seed-3 files (one per bin) and the seed-4 extensions of some bins
RATE_FILES = sorted(str(p) for p in (REPO / "data" / "rate" / "qcd_bins").glob("*.root"))
DEFAULT_QCD = REPO / "data" / "default" / "qcd.root"
LUMI_MB = 2e34 * 1e-27  # L in mb^-1 s^-1
# Issue 10: thresholds at 100 / 30 / 10 kHz measured on an independent 140k-event biased QCD sample.
LEADING_JET_GEV = {100: 75.8, 30: 101.7, 10: 131.7}
HT_GEV = {100: 131.5, 30: 190.3, 10: 259.0}


def _events(files):
    """Per event: file path, genWeight, leading-jet pT (jets > 20 GeV, |eta| < 2.5; 0 if none), HT (jets > 30 GeV)."""
    import awkward as ak

    out = {"file": [], "w": [], "lead": [], "ht": [], "jet3": [], "jet4": []}
    for path in files:
        with uproot.open(path) as f:
            ev = f["Events"].arrays(["genWeight", "Jet_pt", "Jet_eta"])
        pt = ak.sort(ev["Jet_pt"][(ev["Jet_pt"] > 20) & (abs(ev["Jet_eta"]) < 2.5)], ascending=False)
        out["file"].append(np.full(len(ev), str(path)))
        out["w"].append(ev["genWeight"].to_numpy().astype(np.float64))
        out["lead"].append(ak.to_numpy(ak.fill_none(ak.max(pt, axis=1), 0.0)).astype(np.float64))
        out["ht"].append(ak.to_numpy(ak.sum(pt[pt > 30], axis=1)).astype(np.float64))
        for n in (3, 4):  # pT of the n-th leading jet, 0 without n jets
            out[f"jet{n}"].append(ak.to_numpy(ak.fill_none(ak.pad_none(pt, n)[:, n - 1], 0.0)).astype(np.float64))
    return {k: np.concatenate(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def rate_sample():
    if not RATE_FILES:
        pytest.fail("the shipped rate sample data/rate/qcd_bins/ is missing")
    info = read_sample_info(RATE_FILES)
    ev = _events(RATE_FILES)
    ev["w_abs"] = event_xsec_weights_mb(info, ev["file"], ev["w"])
    return info, ev


def test_rate_sample_is_a_complete_stitched_qcd_sample(rate_sample):
    info, ev = rate_sample
    assert info.is_stitched and generator_cut_gev(info) == 10.0 and info.bins[-1].pthat_max == math.inf
    edges = [b.pthat_min for b in info.bins]
    assert all(b.pthat_max == nxt for b, nxt in zip(info.bins, edges[1:]))  # contiguous, no gaps
    assert ev["w_abs"].sum() == pytest.approx(info.xsec_mb, rel=1e-6)
    # sigma(pTHat > 10 GeV) agrees with the biased default sample's 7.915 +- 0.021 mb within a few %
    assert info.xsec_mb == pytest.approx(7.915, rel=0.05)


def test_rate_sample_files_of_one_bin_combine(rate_sample):
    """Bins extended by further files (other seeds) are one bin: its event count is the sum of its
    files' events, every event of the bin weighs sigma_b * genWeight / W_b whichever file it is in,
    the files' cross-sections agree within their errors, and no event is in two files (distinct seeds)."""
    from qtrigger.data.samples import read_runs

    info, ev = rate_sample
    assert len(info.files) == len(RATE_FILES) > len(info.bins)  # some bins are made of several files
    for b in info.bins:
        in_bin = np.isin(ev["file"], b.files)
        assert b.n_events == in_bin.sum() == sum(read_runs(f)["n"] for f in b.files), b.label()
        scale = ev["w_abs"][in_bin] / ev["w"][in_bin]  # one sigma_b / W_b for all files of the bin
        assert scale.max() == pytest.approx(scale.min(), rel=1e-6), b.label()
        assert ev["w_abs"][in_bin].sum() == pytest.approx(b.xsec_mb, rel=1e-9), b.label()
        runs = [read_runs(f) for f in b.files]
        for r in runs[1:]:
            pull = (r["xsec"] - runs[0]["xsec"]) / math.hypot(r["xsec_err"], runs[0]["xsec_err"])
            assert abs(pull) < 4, (b.label(), r["path"], pull)
        if len(b.files) > 1:
            seeds = [uproot.open(f)["Runs"]["seed"].array(library="np")[0] for f in b.files]
            assert len(set(seeds)) == len(seeds), (b.label(), seeds)
            # an event is its (pTHat, leading-jet pT) pair; a seed collision would repeat every event
            keys = [set(zip(uproot.open(f)["Events"]["Generator_binvar"].array(library="np").tolist(),
                            ev["lead"][ev["file"] == f].tolist())) for f in b.files]
            shared = set.intersection(*keys)
            assert len(shared) <= 1, (b.label(), sorted(shared)[:3])


def _leading_jet_spectrum(ev, weight, edges):
    counts, _ = np.histogram(ev["lead"], edges, weights=weight)
    sumw2, _ = np.histogram(ev["lead"], edges, weights=weight**2)
    width = np.diff(edges)
    return counts / width, np.sqrt(sumw2) / width


def test_stitched_leading_jet_spectrum_agrees_with_the_biased_sample(rate_sample):
    """Criterion: per leading-jet-pT bin from 25 GeV (both samples start at pTHat 10 GeV, complete
    above the 20 GeV jet threshold), pull = difference / (stat errors and each sample's total
    cross-section error in quadrature); every |pull| < 3.5 and the chi2 p-value > 0.001."""
    from scipy.stats import chi2

    info, ev = rate_sample
    ref_info = read_sample_info(str(DEFAULT_QCD))
    ref = _events([str(DEFAULT_QCD)])
    ref_w = event_xsec_weights_mb(ref_info, ref["file"], ref["w"])
    edges = np.array([25, 30, 40, 50, 60, 70, 80, 100, 120, 150, 200, 300, 500, 800], dtype=float)
    a, ea = _leading_jet_spectrum(ev, ev["w_abs"], edges)
    b, eb = _leading_jet_spectrum(ref, ref_w, edges)
    assert (a > 0).all() and (b > 0).all()
    ra, rb = info.xsec_err_mb / info.xsec_mb, ref_info.xsec_err_mb / ref_info.xsec_mb
    pulls = (a - b) / np.sqrt(ea**2 + eb**2 + (ra * a) ** 2 + (rb * b) ** 2)
    assert np.abs(pulls).max() < 3.5, pulls.round(2).tolist()
    assert chi2.sf((pulls**2).sum(), len(pulls)) > 1e-3, pulls.round(2).tolist()
    # and the test can fail: without the bins below pTHat 30 GeV the low-pT leading jets are missing
    low = np.isin(ev["file"], [f for bin_ in info.bins if bin_.pthat_max <= 30 for f in bin_.files])
    a_cut, ea_cut = _leading_jet_spectrum({"lead": ev["lead"][~low]}, ev["w_abs"][~low], edges)
    pulls_cut = (a_cut - b) / np.sqrt(ea_cut**2 + eb**2 + (ra * a_cut) ** 2 + (rb * b) ** 2)
    assert pulls_cut.min() < -3.5 and chi2.sf((pulls_cut**2).sum(), len(pulls_cut)) < 1e-3


@pytest.mark.parametrize("split_seed", [1, 2])
def test_rate_sample_held_out_half_has_n_eff_400_at_the_issue_thresholds(rate_sample, split_seed):
    """On a seeded by-event half, rate = L * sum_fired w_abs / (fraction of each bin in the half)
    and n_eff_fired = (sum w)^2 / sum w^2 >= 400 for leading-jet and HT seeds at 100, 30, 10 kHz;
    the rates agree with the issue's thresholds within 25 % (Pythia statistics, other sample)."""
    info, ev = rate_sample
    half = np.random.default_rng(split_seed).random(len(ev["w"])) < 0.5
    w = event_xsec_weights_mb(info, ev["file"][half], ev["w"][half])  # each bin renormalised on the half
    for observable, thresholds in (("lead", LEADING_JET_GEV), ("ht", HT_GEV)):
        for khz, cut in thresholds.items():
            fired = ev[observable][half] >= cut
            rate_khz = LUMI_MB * w[fired].sum() / 1e3
            n_eff = w[fired].sum() ** 2 / (w[fired] ** 2).sum()
            assert n_eff >= 400, (observable, khz, n_eff)
            assert rate_khz == pytest.approx(khz, rel=0.25), (observable, khz, rate_khz)


# Issue 10's multi-jet and HT seeds (the kinematic baselines of configs/l1_ttbar_seed.yaml):
# (target kHz, tuned observable, fixed requirement (observable, GeV) or None, minimum held-out n_eff).
# The pure >= 4-jet seeds reach 283-583 (data/rate/README.md): their rate has a tail from pTHat 30-50 GeV
# events with ISR/MPI jets; 400 for them needs more 30-50 GeV events (issue 10 stays open for them).
MULTIJET_SEEDS = [(100, "jet3", None, 400), (30, "jet4", None, 250), (10, "jet4", None, 250),
                  (100, "ht", ("jet3", 20.0), 400), (30, "ht", ("jet4", 20.0), 400), (10, "ht", ("jet4", 25.0), 400)]


def _cut_at_rate(key, w_abs, khz):
    """Lowest cut on ``key`` whose rate ``L * sum(w_abs[key >= cut])`` stays at or below ``khz``."""
    order = np.argsort(-key)
    rate = LUMI_MB * np.cumsum(w_abs[order]) / 1e3
    return key[order[max(np.searchsorted(rate, khz, side="right") - 1, 0)]]


@pytest.mark.parametrize("split_seed", [1, 2, 3])
def test_rate_sample_held_out_half_has_n_eff_for_multijet_seeds(rate_sample, split_seed):
    """As the trigger study does: the cut is tuned to the target rate on one half (calibration), then
    the other half (held-out) gives the rate and n_eff_fired = (sum w)^2 / sum w^2. Multi-jet seeds
    fire on low-pTHat events (ISR/MPI jets), which is what the seed-4 extension of the 30-120 GeV bins is for."""
    info, ev = rate_sample
    held = np.random.default_rng(split_seed).random(len(ev["w"])) < 0.5
    w = {half: event_xsec_weights_mb(info, ev["file"][mask], ev["w"][mask])
         for half, mask in (("cal", ~held), ("held", held))}
    for khz, observable, requirement, min_n_eff in MULTIJET_SEEDS:
        ok = np.ones(len(held), bool) if requirement is None else ev[requirement[0]] >= requirement[1]
        key = np.where(ok, ev[observable], -1.0)
        cut = _cut_at_rate(key[~held], w["cal"], khz)
        fired = key[held] >= cut
        rate_khz = LUMI_MB * w["held"][fired].sum() / 1e3
        n_eff = w["held"][fired].sum() ** 2 / (w["held"][fired] ** 2).sum()
        assert n_eff >= min_n_eff, (observable, requirement, khz, cut, n_eff)
        assert rate_khz == pytest.approx(khz, rel=0.3), (observable, requirement, khz, cut, rate_khz)
