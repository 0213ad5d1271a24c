"""Issue 29: the premixed pileup library, zero-bias crossings of Poisson(mu) inelastic interactions, the pileup
record in Runs, the luminosity check against mu, and rates per bunch crossing (crossing weights)."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from qtrigger.data.crossing import crossing_weights_hz
from qtrigger.data.samples import PtHatBin, SampleInfo, event_xsec_weights_mb, read_sample_info
from qtrigger.errors import QTriggerError

F_REV_HZ, N_BUNCHES = 11245.6, 2748


# --------------------------------------------------------------------------- generation (tiny library)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    from qtrigger.generate import generate_library

    directory = tmp_path_factory.mktemp("pileup") / "lib"
    summary = generate_library(40, 3, directory, chunk_size=40, workers=0, progress=False)  # one Pythia
    return directory, summary


def _events(path, branches):
    import uproot

    with uproot.open(path) as handle:
        return handle["Events"].arrays(branches, library="np"), handle["Runs"].arrays(library="np")


def test_library_resumes_from_its_chunk_files(library, tmp_path):
    """A production stopped before its manifest resumes: complete chunks are kept (none regenerated here), a cut
    or foreign chunk file is not taken as done, and a folder holding another library is refused."""
    from qtrigger.generate import generate_library
    from qtrigger.generate.library import MANIFEST, _chunk_done, chunk_file, library_specs

    directory, first = library
    assert first["interactions"] == 40 and first["chunks"] == 1 and first["generated"] == 1
    assert 70 < first["sigma_inel_mb"] < 90 and first["particles"] > 10
    manifest = json.loads((directory / MANIFEST).read_text())
    (directory / MANIFEST).unlink()
    again = generate_library(40, 3, directory, chunk_size=40, workers=0, progress=False)
    assert again["generated"] == 0 and again["hash"] == first["hash"]
    assert json.loads((directory / MANIFEST).read_text()) == manifest
    spec = library_specs(40, 3, directory, 40, 250, lambda s, b, k: s * 1_000_000 + k)[0]
    assert _chunk_done(chunk_file(directory, 0), spec)
    assert not _chunk_done(chunk_file(directory, 0), {**spec, "pythia_seed": spec["pythia_seed"] + 1})
    cut = tmp_path / "cut.npz"
    cut.write_bytes(chunk_file(directory, 0).read_bytes()[:1000])
    assert not _chunk_done(cut, spec)
    with pytest.raises(QTriggerError, match="another library"):
        generate_library(40, 4, directory, chunk_size=40, workers=0, progress=False)


@pytest.mark.slow
def test_library_regenerates_a_missing_chunk_identically(library):
    """The chunk seeds fix the library: a lost chunk is made again byte for byte (same manifest hash)."""
    from qtrigger.generate import generate_library
    from qtrigger.generate.library import MANIFEST, chunk_file

    directory, first = library
    chunk_file(directory, 0).unlink()
    (directory / MANIFEST).unlink()
    again = generate_library(40, 3, directory, chunk_size=40, workers=0, progress=False)
    assert again["generated"] == 1 and again["hash"] == first["hash"]


def test_zero_bias_crossings_from_the_library(library, tmp_path):
    """--process minbias --pileup mu: Poisson(mu) interactions per crossing (empty ones too), no Pythia run;
    Runs records mu, sigma_inel, the library's hash and the reuse."""
    from qtrigger.generate import generate_sample
    from qtrigger.generate.pileup import pileup_counts

    directory, lib = library
    out = tmp_path / "zb.root"
    summary = generate_sample("minbias", 30, 2, out, pileup=1.5, pileup_library=directory, workers=0,
                              chunk_size=15, progress=False)  # two chunks: merged, draws planned across them
    events, runs = _events(out, ["Pileup_nInt", "Pileup_maxPtHat", "Generator_binvar", "nJet"])
    expected = np.concatenate([pileup_counts(2 * 1_000_000 + k, 1.5, 15) for k in (0, 1)])
    assert np.array_equal(events["Pileup_nInt"], expected) and (expected == 0).any()
    assert np.array_equal(events["Generator_binvar"], events["Pileup_maxPtHat"])
    assert (events["Pileup_maxPtHat"][expected == 0] == 0).all() and (events["nJet"][expected == 0] == 0).all()
    assert runs["pileupMu"][0] == 1.5 and runs["sigmaInel_mb"][0] == pytest.approx(lib["sigma_inel_mb"])
    assert runs["genXsec_mb"][0] == pytest.approx(lib["sigma_inel_mb"]) and runs["isMinBias"][0] == 1
    assert runs["pileupLibraryHash"][0] == lib["hash"] and runs["pileupMitigation"][0] == 1  # auto: Run-3-like below mu 140
    assert runs["pileupReuse"][0] == pytest.approx(expected.sum() / 40) 
    assert runs["pileupMaxReuse"][0] == summary["pileup"]["reuse_max"] == math.ceil(expected.sum() / 40)
    info = read_sample_info([str(out)])
    assert (info.mu, info.sigma_inel_mb) == (1.5, pytest.approx(lib["sigma_inel_mb"]))


@pytest.mark.slow
def test_zero_bias_crossings_direct(library, tmp_path):
    """Without a library a zero-bias crossing is Poisson(mu) interactions from the pileup Pythia (was 1 +
    Poisson(mu)); mu and the same sigma_inel as the library's are recorded."""
    from qtrigger.generate import generate_sample
    from qtrigger.generate.pileup import pileup_counts

    out = tmp_path / "zb_direct.root"
    generate_sample("minbias", 12, 2, out, pileup=1.0, workers=0, progress=False)
    events, runs = _events(out, ["Pileup_nInt", "Pileup_maxPtHat", "Generator_binvar", "nJet"])
    expected = pileup_counts(2 * 1_000_000, 1.0, 12)
    assert np.array_equal(events["Pileup_nInt"], expected) and (expected == 0).any()
    assert np.array_equal(events["Generator_binvar"], events["Pileup_maxPtHat"])
    assert runs["pileupLibraryHash"][0] == 0 and runs["pileupReuse"][0] == 0
    assert runs["sigmaInel_mb"][0] == pytest.approx(library[1]["sigma_inel_mb"])


def test_library_draws_are_spread_evenly():
    """Consecutive positions of the permutation sequence: every interaction drawn floor or ceil(draws / size)
    times, the same indices however the positions are split between chunks."""
    from qtrigger.generate.library import draw_positions, plan_draws

    whole = draw_positions(40, 7, 1, 0, 100)
    assert np.array_equal(np.concatenate([draw_positions(40, 7, 1, 0, 33), draw_positions(40, 7, 1, 33, 67)]), whole)
    assert sorted(set(np.bincount(whole, minlength=40).tolist())) == [2, 3]
    offsets, reuse = plan_draws([33, 67], 40, 3, "lib")
    assert offsets == [0, 33] and reuse == {"draws": 100, "size": 40, "mean": 2.5, "max": 3}
    with pytest.raises(QTriggerError, match="cap 2"):
        plan_draws([33, 67], 40, 2, "lib")


def test_hard_events_overlay_the_library(library, tmp_path):
    from qtrigger.generate import generate_sample

    directory, _ = library
    out = tmp_path / "qcd.root"
    generate_sample("qcd", 6, 5, out, pthat_min=30, pileup=3, pileup_library=directory, workers=0, progress=False)
    events, runs = _events(out, ["Pileup_nInt", "Pileup_maxPtHat", "Generator_binvar"])
    assert events["Pileup_nInt"].sum() > 0 and (events["Generator_binvar"] >= 30).all()
    assert runs["pileupMu"][0] == 3 and runs["pileupLibraryHash"][0] > 0


def test_library_options_refused_before_pythia(library, tmp_path):
    from qtrigger.generate import generate_sample

    directory, _ = library
    cases = [({"pileup": 0.0}, "needs --pileup"),
             ({"pileup": 3.0, "jet_eta_max": 2.8}, "lower --jet-eta-max"),
             ({"pileup": 50.0}, r"above the cap 10 \(--pileup-max-reuse\)"),
             ({"pileup": 3.0, "pileup_max_reuse": 0}, "pileup-max-reuse must be")]
    for kwargs, message in cases:
        with pytest.raises(QTriggerError, match=message):
            generate_sample("ttbar", 20, 1, tmp_path / "x.root", pileup_library=directory, progress=False, **kwargs)
    with pytest.raises(QTriggerError, match="not a complete library"):
        generate_sample("ttbar", 5, 1, tmp_path / "x.root", pileup=1, pileup_library=tmp_path, progress=False)
    assert not (tmp_path / "x.root").exists()


def test_cli_library_needs_minbias(tmp_path):
    import argparse

    from qtrigger.cli.data import add_generate_arguments, handle_generate

    parser = argparse.ArgumentParser()
    add_generate_arguments(parser)
    with pytest.raises(QTriggerError, match="--process minbias"):
        handle_generate(parser.parse_args(["--process", "ttbar", "--library", "10", "-o", str(tmp_path / "l")]))
    with pytest.raises(QTriggerError, match="--events N is required"):
        handle_generate(parser.parse_args(["--process", "ttbar", "-o", str(tmp_path / "x.root")]))


def test_moved_track_parameters_equal_the_direct_ones():
    """Library tracks store d0/z0 relative to their own vertex; moved to a new vertex they equal the straight
    lines from the new position (the direct overlay's computation)."""
    from qtrigger.generate.pileup import _moved_ip
    from qtrigger.generate.tracks import Resolution, TrackRandom, straight_line_ip

    rng = np.random.default_rng(1)
    n = 50
    cols = {"px": rng.normal(size=n), "py": rng.normal(size=n), "pz": rng.normal(size=n) * 3}
    prod = rng.normal(scale=0.05, size=(n, 3))
    vertex = np.column_stack([rng.normal(scale=1e-3, size=n), rng.normal(scale=1e-3, size=n), rng.normal(size=n)])
    d0_rel, z0_rel = straight_line_ip(*prod.T, cols["px"], cols["py"], cols["pz"])
    d0, z0, _ = _moved_ip(d0_rel, z0_rel, cols, np.ones(n, bool), vertex, TrackRandom(1), Resolution(1e-9, 1e-9))
    want_d0, want_z0 = straight_line_ip(*(prod + vertex).T, cols["px"], cols["py"], cols["pz"])
    assert np.allclose(d0, want_d0, atol=1e-9) and np.allclose(z0, want_z0, atol=1e-9)


def test_lumi_must_agree_with_the_samples_mu(library, tmp_path):
    """L = mu f_rev n_bunches / sigma_inel: a config quoting another luminosity is refused in one line."""
    from qtrigger.config.trigger import TriggerConfig
    from qtrigger.generate import generate_sample
    from qtrigger.runs.preflight import check_pileup_lumi, pileup_lumi_cm2s

    directory, lib = library
    out = tmp_path / "zb.root"
    generate_sample("minbias", 5, 2, out, pileup=2, pileup_library=directory, workers=0, progress=False)
    lumi = pileup_lumi_cm2s(2, lib["sigma_inel_mb"], N_BUNCHES)
    assert lumi == pytest.approx(2 * F_REV_HZ * N_BUNCHES / (lib["sigma_inel_mb"] * 1e-27))
    check_pileup_lumi(TriggerConfig(lumi_cm2s=lumi), [str(out)])
    with pytest.raises(QTriggerError, match=r"disagrees with the pileup .* set trigger.lumi_cm2s: ") as err:
        check_pileup_lumi(TriggerConfig(lumi_cm2s=2e34), [str(out)])
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- rates per bunch crossing (toy)

P0, POWER, SIGMA_INEL, MU, EDGES = 3.0, 3.0, 80.0, 60.0, (5.0, 10.0, 20.0)


def _survival(p):
    return (1 + np.asarray(p, dtype=float) / P0) ** -POWER


def _inverse(s):
    return P0 * (np.asarray(s) ** (-1 / POWER) - 1)


def _hardest_of(k: np.ndarray, rng) -> np.ndarray:
    """The largest pTHat of k interactions each (0 for none): P(max <= x) = (1 - S(x))^k."""
    v = rng.uniform(size=len(k))
    with np.errstate(divide="ignore"):
        s = 1 - v ** (1 / np.maximum(k, 1))
    return np.where(k > 0, _inverse(np.clip(s, 1e-300, 1)), 0.0)


def _toy(n_per_bin=20000, n_zero_bias=20000, seed=4):
    """Binned hard events (each with Poisson(mu) more interactions) and zero-bias crossings of one toy world."""
    rng = np.random.default_rng(seed)
    highs = (*EDGES[1:], math.inf)
    bins = tuple(PtHatBin(lo, hi, SIGMA_INEL * float(_survival(lo) - _survival(hi)), 0.0, 1.0, n_per_bin,
                          float(n_per_bin), float(n_per_bin), (f"bin{k}.root",))
                 for k, (lo, hi) in enumerate(zip(EDGES, highs)))
    binned = SampleInfo(3 * n_per_bin, 3.0 * n_per_bin, 3.0 * n_per_bin, sum(b.xsec_mb for b in bins), 0.0, False,
                        EDGES[0], tuple(f for b in bins for f in b.files), bins=bins, mu=MU, sigma_inel_mb=SIGMA_INEL)
    own = np.concatenate([_inverse(rng.uniform(_survival(hi), _survival(lo), n_per_bin))
                          for lo, hi in zip(EDGES, highs)])
    files = np.repeat([b.files[0] for b in bins], n_per_bin)
    overlay = _hardest_of(rng.poisson(MU, len(own)), rng)
    zero_bias = SampleInfo(n_zero_bias, float(n_zero_bias), float(n_zero_bias), SIGMA_INEL, 0.0, True, 0.0,
                           ("zb.root",), mu=MU, sigma_inel_mb=SIGMA_INEL)
    hardest_zb = _hardest_of(rng.poisson(MU, n_zero_bias), rng)
    return binned, zero_bias, own, files, overlay, hardest_zb


def test_crossing_weights_fix_the_per_interaction_overcounting():
    """A crossing fires when its hardest interaction exceeds X. Truth: f n (1 - exp(-mu S(X))). The old stitching
    (L sigma_b / N_b per binned event) counts every hard interaction of a crossing: at mu = 60 it overcounts loose
    cuts several times; the crossing weights reproduce the truth within the toy's statistics."""
    binned, zero_bias, own, files, overlay, hardest_zb = _toy()
    crossing_rate = F_REV_HZ * N_BUNCHES
    lumi = MU * crossing_rate / (SIGMA_INEL * 1e-27)
    w_old = lumi * 1e-27 * event_xsec_weights_mb(binned, files, np.ones(len(own)))
    w_binned, w_zb = crossing_weights_hz(binned, zero_bias, files, np.ones(len(own)), own, overlay, hardest_zb,
                                         lumi, crossing_rate)
    assert w_binned.sum() + w_zb.sum() == pytest.approx(crossing_rate, rel=0.03)  # every crossing, once
    factors = {}
    for cut in (2.0, 6.0, 10.0, 20.0):
        truth = crossing_rate * (1 - math.exp(-MU * float(_survival(cut))))
        fired = np.maximum(own, overlay) > cut
        old = w_old[fired].sum()
        new = w_binned[fired].sum() + w_zb[hardest_zb > cut].sum()
        factors[cut] = old / truth
        assert new == pytest.approx(truth, rel=0.05), cut
    assert min(factors.values()) > 2.5  # toy at mu = 60: 3.2, 3.4, 3.8, 4.1 x the truth at X = 2, 6, 10, 20 GeV
    from qtrigger.trigger.table_rates import crossing_rate

    keys = np.concatenate([np.maximum(own, overlay), hardest_zb]).round().astype(np.int64)  # "hardest >= X"
    rate = crossing_rate(np.concatenate([w_binned, w_zb]), np.ones(len(keys), bool))
    got, err, _, _ = rate.at(keys, np.array([10]))
    truth = crossing_rate_truth(9.5)  # integer keys: hardest >= 9.5 GeV rounds to >= 10
    assert got[0] == pytest.approx(truth, abs=3 * err[0] + 0.02 * truth)


def crossing_rate_truth(cut: float) -> float:
    return F_REV_HZ * N_BUNCHES * (1 - math.exp(-MU * float(_survival(cut))))


def test_crossing_weights_refuse_mixed_pileup():
    binned, zero_bias, own, files, overlay, hardest_zb = _toy(50, 50)
    other = SampleInfo(50, 50.0, 50.0, SIGMA_INEL, 0.0, True, 0.0, ("zb.root",), mu=140.0)
    with pytest.raises(QTriggerError, match="mu = 60.*mu = 140"):
        crossing_weights_hz(binned, other, files, np.ones(len(own)), own, overlay, hardest_zb, 1e34, 3e7)
    with pytest.raises(QTriggerError, match="not a zero-bias sample"):
        crossing_weights_hz(binned, binned, files, np.ones(len(own)), own, overlay, hardest_zb, 1e34, 3e7)


# --------------------------------------------------------------------------- crossing normalisation of a rate table


@pytest.fixture(scope="module")
def crossing_files(library, tmp_path_factory):
    """pTHat-binned QCD (bins [10, 20) and [20, inf), 10 events each) and 30 zero-bias crossings at mu = 1.5."""
    from qtrigger.generate import generate_sample

    directory, _ = library
    folder = tmp_path_factory.mktemp("crossing")
    kw = dict(pileup=1.5, pileup_library=directory, workers=0, progress=False, candidates=False)
    binned = generate_sample("qcd", 10, 8, folder / "qcd", pthat_bins="10,20", **kw)["outputs"]
    zero_bias = generate_sample("minbias", 30, 9, folder / "zb.root", **kw)["outputs"]
    return binned, zero_bias


def _table_of(files):
    """The per-event arrays of a rate table (every event of every file, in order)."""
    import types

    import uproot

    sizes = []
    for path in files:
        with uproot.open(path) as handle:
            sizes.append(handle["Events"].num_entries)
    return types.SimpleNamespace(files=list(files), event_file=np.repeat(np.arange(len(files)), sizes),
                                 event_entry=np.concatenate([np.arange(n) for n in sizes]),
                                 event_weight=np.ones(sum(sizes)))


def test_crossing_normalisation_weights_each_crossing_once(crossing_files):
    from qtrigger.data.crossing import rate_sample_info, table_crossing_weights_hz
    from qtrigger.trigger.table_rates import sample_rate

    binned, zero_bias = crossing_files
    files = [*binned, *zero_bias]
    info = rate_sample_info(files, "crossing")
    assert info.crossing_parts is not None and info.pthat_min is None and info.mu == 1.5
    table = _table_of(files)
    every = np.ones(len(table.event_file), bool)
    lumi, rate_hz = 1e34, F_REV_HZ * N_BUNCHES
    weights = table_crossing_weights_hz(info, every, table.files, table.event_file, table.event_entry,
                                        table.event_weight, lumi, rate_hz)
    events, _ = _events(binned[0], ["Pileup_maxPtHat", "Generator_binvar"])
    vetoed = events["Pileup_maxPtHat"] > events["Generator_binvar"]
    assert np.all(weights[:len(vetoed)][vetoed] == 0) and np.all(weights[:len(vetoed)][~vetoed] > 0)
    zb, _ = _events(zero_bias[0], ["Generator_binvar"])
    zb_weights = weights[-len(zb["Generator_binvar"]):]
    below = zb["Generator_binvar"] < 10
    assert np.allclose(zb_weights[below], rate_hz / len(below)) and np.all(zb_weights[~below] == 0)
    half = every & (np.arange(len(every)) % 2 == 0)  # a half is normalised on itself: the same total rate
    total = sample_rate(info, "crossing", every, table, lumi_cm2s=lumi).scale_hz
    assert sample_rate(info, "crossing", half, table, lumi_cm2s=lumi).scale_hz == pytest.approx(total, rel=0.5)
    assert total == pytest.approx(float(weights.sum()))


def test_crossings_sharing_a_library_interaction_are_grouped(crossing_files):
    """The tiny library (40 interactions) is drawn many times: zero-bias crossings with the same hardest
    interaction share a label, binned events never do, and the grouped error is not below the naive one."""
    from qtrigger.data.crossing import rate_sample_info, shared_interaction_groups
    from qtrigger.trigger.table_rates import sample_rate

    binned, zero_bias = crossing_files
    files = [*binned, *zero_bias]
    table = _table_of(files)
    every = np.ones(len(table.event_file), bool)
    labels = shared_interaction_groups(files, table.event_file, table.event_entry, every)
    zb, _ = _events(zero_bias[0], ["Generator_binvar"])
    n_zb = len(zb["Generator_binvar"])
    hardest = zb["Generator_binvar"]
    assert labels is not None and len(np.unique(labels[:-n_zb])) == len(labels) - n_zb  # binned: own groups
    shared = np.array([(hardest == h).sum() > 1 for h in hardest]) & (hardest > 0)
    assert shared.any() and np.array_equal(labels[-n_zb:][shared], hardest[shared].astype(np.float64))
    assert shared_interaction_groups(files, table.event_file, table.event_entry, every & (table.event_file == 0)) is None
    info = rate_sample_info(files, "crossing")
    rate = sample_rate(info, "crossing", every, table, lumi_cm2s=1e34)
    keys = np.zeros(len(every), np.int64)
    keys[-n_zb:] = 1  # fire on every zero-bias crossing that counts
    grouped, naive = rate.point(keys, 1), replace(rate, group=None).point(keys, 1)
    assert grouped.rate_hz == naive.rate_hz and grouped.rate_err_hz >= naive.rate_err_hz
    assert grouped.n_eff_fired <= naive.n_eff_fired


def test_pileup_rate_samples_need_the_crossing_normalisation(crossing_files):
    from qtrigger.config import TriggerConfig
    from qtrigger.data.crossing import rate_sample_info
    from qtrigger.runs.preflight import check_rate_normalisation

    binned, zero_bias = crossing_files
    with pytest.raises(QTriggerError, match=r"pTHat-binned at pileup mu = 1\.5, where stitching counts a crossing "
                                            r"once per hard interaction .* set trigger.normalisation: crossing"):
        check_rate_normalisation(TriggerConfig(normalisation="cross_section"), read_sample_info(binned))
    with pytest.raises(QTriggerError, match=r"normalisation crossing needs pTHat-binned hard events and zero-bias "
                                            r"crossings .* got 2 binned and 0 zero-bias file"):
        rate_sample_info(binned, "crossing")


def test_evaluate_reports_the_pileup_and_warns_when_it_differs(crossing_files, tmp_path):
    import types

    from qtrigger.generate import generate_sample
    from qtrigger.runs.evaluation import pileup_report

    binned, zero_bias = crossing_files
    no_pileup = generate_sample("qcd", 4, 10, tmp_path / "pu0.root", pthat_min=30, workers=0, progress=False,
                                candidates=False)["output"]
    run = types.SimpleNamespace(data=types.SimpleNamespace(samples=[types.SimpleNamespace(files=list(binned))]))
    same = pileup_report(run, list(zero_bias))
    assert same["training_mu"] == [1.5] and same["files"] == {zero_bias[0]: 1.5} and same["warning"] is None
    other = pileup_report(run, [no_pileup, *zero_bias])
    assert other["files"][no_pileup] == 0.0
    assert other["warning"] == (f"pileup differs from training: the run was trained at mu = 1.5, evaluated on "
                                f"{no_pileup} (mu 0); its thresholds and rates do not transfer between pileup conditions")
