"""Pythia 8 + FastJet sample generator: schema, physics sanity, determinism, bad inputs."""

import argparse
import sys

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")
ak = pytest.importorskip("awkward")
uproot = pytest.importorskip("uproot")

from qtrigger import generate  # noqa: E402
from qtrigger.errors import QTriggerError  # noqa: E402

N_TTBAR = 400
JET_DTYPES = {f"Jet_{k}": np.dtype(v) for k, v in generate.JET_FIELDS.items()}
FRACTIONS = ["Jet_chHEF", "Jet_neHEF", "Jet_chEmEF", "Jet_neEmEF", "Jet_muEF"]


def _read(path):
    with uproot.open(path) as f:
        events = f["Events"].arrays()
        runs = f["Runs"].arrays(library="np")
        types = {name: f["Events"][name].interpretation for name in f["Events"].keys()}
    return events, runs, types


@pytest.fixture(scope="module")
def ttbar(tmp_path_factory):
    """One small ttbar file shared by the schema and physics tests."""
    path = tmp_path_factory.mktemp("gen") / "ttbar.root"
    summary = generate.generate_sample("ttbar", N_TTBAR, 5, path, batch_size=150, progress=False)
    events, runs, types = _read(path)
    return {"path": path, "summary": summary, "events": events, "runs": runs, "types": types}


def test_schema_branches_and_dtypes(ttbar):
    events, types = ttbar["events"], ttbar["types"]
    expected = {"nJet", "event", "genWeight", "Generator_binvar", "PV_z", *JET_DTYPES, "nJetCand",
                *(f"JetCand_{k}" for k in generate.CAND_FIELDS)}
    assert set(types) == expected
    assert events["nJet"].to_numpy().dtype == np.int32
    assert events["event"].to_numpy().dtype == np.uint64
    assert events["genWeight"].to_numpy().dtype == np.float32
    assert events["Generator_binvar"].to_numpy().dtype == np.float32
    assert events["PV_z"].to_numpy().dtype == np.float32
    for name, dtype in generate.CAND_FIELDS.items():
        assert ak.flatten(events[f"JetCand_{name}"]).to_numpy().dtype == np.dtype(dtype), name
    for name, dtype in JET_DTYPES.items():
        assert ak.flatten(events[name]).to_numpy().dtype == dtype, name
    assert len(events) == N_TTBAR
    assert events["event"].to_numpy().tolist() == list(range(1, N_TTBAR + 1))


def test_jet_counts_and_cuts(ttbar):
    events = ttbar["events"]
    counts = ak.num(events["Jet_pt"]).to_numpy()
    assert np.array_equal(events["nJet"].to_numpy(), counts)
    for name in JET_DTYPES:
        assert np.array_equal(ak.num(events[name]).to_numpy(), counts), name
    pt = events["Jet_pt"]
    assert ak.all(pt[:, 1:] <= pt[:, :-1])
    assert ak.all(pt > 20.0)
    assert ak.all(abs(events["Jet_eta"]) < 2.5)
    assert ak.all(abs(events["Jet_phi"]) <= np.pi)
    assert ak.all(events["Jet_mass"] >= 0)
    assert ak.all(events["Jet_nConstituents"] >= 1)
    assert counts.sum() == ttbar["summary"]["jets"]
    assert counts.mean() > 3  # ttbar: several jets per event


def test_energy_fractions(ttbar):
    events = ttbar["events"]
    fractions = np.stack([ak.flatten(events[name]).to_numpy() for name in FRACTIONS])
    assert fractions.min() >= 0.0
    assert fractions.max() <= 1.0
    np.testing.assert_allclose(fractions.astype(np.float64).sum(axis=0), 1.0, atol=1e-5)
    # charged hadrons carry the largest share on average (~60-65 % at particle level)
    assert 0.5 < fractions[0].mean() < 0.75


def test_flavour_values_and_b_fraction(ttbar):
    flavour = ak.flatten(ttbar["events"]["Jet_hadronFlavour"]).to_numpy()
    assert set(np.unique(flavour).tolist()) <= {0, 4, 5}
    b_fraction = (flavour == 5).mean()
    assert 0.20 < b_fraction < 0.45
    per_class = ttbar["summary"]["jets_per_flavour"]
    assert per_class[5] == (flavour == 5).sum() and per_class[4] == (flavour == 4).sum()
    parton = ak.flatten(ttbar["events"]["Jet_partonFlavour"]).to_numpy()
    assert set(np.unique(np.abs(parton)).tolist()) <= {0, 1, 2, 3, 4, 5, 21}
    # b hadron ghost and b parton ghost mostly agree
    assert (np.abs(parton[flavour == 5]) == 5).mean() > 0.8


def test_runs_tree(ttbar):
    runs, summary = ttbar["runs"], ttbar["summary"]
    assert set(runs) == set(generate.RUNS_FIELDS)
    for name, dtype in generate.RUNS_FIELDS.items():
        assert runs[name].dtype == np.dtype(dtype) and len(runs[name]) == 1, name
    assert runs["genEventCount"][0] == N_TTBAR == summary["events"]
    weights = ttbar["events"]["genWeight"].to_numpy().astype(np.float64)
    assert runs["genEventSumw"][0] > 0
    assert runs["genEventSumw"][0] == pytest.approx(weights.sum(), rel=1e-6)
    assert runs["genEventSumw2"][0] == pytest.approx((weights**2).sum(), rel=1e-6)
    # LO ttbar at 13 TeV: a few hundred pb = few 1e-7 mb
    assert 1e-7 < runs["genXsec_mb"][0] < 2e-6
    assert 0 < runs["genXsecErr_mb"][0] < runs["genXsec_mb"][0]
    assert runs["isMinBias"][0] == 0 and runs["seed"][0] == 5 and runs["pthatMin"][0] == 0.0
    assert runs["pthatMax"][0] == np.inf and runs["genFilterEff"][0] == 1.0


def test_same_seed_identical_different_seed_differs(tmp_path):
    paths = {}
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        paths[name] = tmp_path / f"{name}.root"
        generate.generate_sample("ttbar", 60, seed, paths[name], batch_size=25, progress=False)
    a, b, c = (_read(paths[k])[0] for k in "abc")
    for name in ["nJet", "genWeight", *JET_DTYPES]:
        assert ak.array_equal(a[name], b[name]), name
    assert not ak.array_equal(a["Jet_pt"], c["Jet_pt"])


def test_biased_qcd_weights(tmp_path):
    path = tmp_path / "qcd.root"
    summary = generate.generate_sample("qcd", 100, 3, path, pthat_min=15, bias_pow=4, progress=False)
    events, runs, _ = _read(path)
    weights = events["genWeight"].to_numpy()
    assert (weights > 0).all() and weights.max() / weights.min() > 100  # pTHat-biased: weights vary
    assert runs["pthatMin"][0] == 15.0
    assert 0.1 < runs["genXsec_mb"][0] < 20  # sigma(pTHat > 15 GeV) ~ 2 mb
    assert summary["sumw"] == pytest.approx(runs["genEventSumw"][0])


def test_parallel_jobs_merge(tmp_path):
    path = tmp_path / "par.root"
    summary = generate.generate_sample("ttbar", 41, 2, path, jobs=2, batch_size=20, progress=False)
    events, runs, _ = _read(path)
    assert len(events) == 41 == summary["events"] == runs["genEventCount"][0]
    assert events["event"].to_numpy().tolist() == list(range(1, 42))
    assert runs["seed"][0] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["par.root"]  # parts and temp removed
    assert ak.sum(events["nJet"]) == summary["jets"]


def test_existing_output_needs_overwrite(ttbar):
    with pytest.raises(QTriggerError, match="already exists"):
        generate.generate_sample("ttbar", 10, 1, ttbar["path"], progress=False)


@pytest.mark.parametrize("n_events", [0, -5])
def test_non_positive_events(tmp_path, n_events):
    with pytest.raises(QTriggerError, match="number of events must be > 0"):
        generate.generate_sample("ttbar", n_events, 1, tmp_path / "x.root", progress=False)
    assert not (tmp_path / "x.root").exists()


def test_bad_seed_and_bias(tmp_path):
    with pytest.raises(QTriggerError, match="seed"):
        generate.generate_sample("ttbar", 10, 0, tmp_path / "x.root", progress=False)
    with pytest.raises(QTriggerError, match="bias"):
        generate.generate_sample("minbias", 10, 1, tmp_path / "x.root", bias_pow=2, progress=False)


def test_cli_glue(tmp_path, capsys, ttbar):
    parser = argparse.ArgumentParser()
    from qtrigger.cli.data import add_generate_arguments, handle_generate

    add_generate_arguments(parser)
    args = parser.parse_args(["--process", "ttbar", "--events", "5", "-o", str(ttbar["path"])])
    assert (args.seed, args.jobs, args.pthat_min, args.bias_pow, args.pileup) == (1, None, 30.0, None, 0.0)
    assert (args.events, args.pthat_bins, args.chunk_size, args.workers, args.scheduler) == (
        [5], None, generate.DEFAULT_CHUNK_SIZE, None, None)
    assert (args.jet_pt_min, args.jet_eta_max, args.overwrite) == (20.0, 2.5, False)
    with pytest.raises(QTriggerError, match="already exists"):
        handle_generate(args)
    out = tmp_path / "cli.root"
    args = parser.parse_args(["--process", "minbias", "--events", "20", "-o", str(out), "--seed", "4"])
    assert handle_generate(args) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(out)) and "20 events" in line and "\n" not in line
    _, runs, _ = _read(out)
    assert runs["isMinBias"][0] == 1 and 10 < runs["genXsec_mb"][0] < 100  # sigma_ND ~ 55 mb


def test_missing_generator_packages(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pythia8mc", None)  # import -> ImportError
    with pytest.raises(QTriggerError, match=r"pip install '\.\[generate\]'"):
        generate.generate_sample("ttbar", 10, 1, tmp_path / "x.root", progress=False)


# --------------------------------------------------------------------------- pTHat bins, chunks, Dask


def test_bin_and_chunk_planning():
    assert generate.parse_pthat_bins("15,30,50") == [(15.0, 30.0), (30.0, 50.0), (50.0, np.inf)]
    for bad in ("30,15", "15,15", "a,b", "", "-5,10", "10,inf"):
        with pytest.raises(QTriggerError, match="--pthat-bins"):
            generate.parse_pthat_bins(bad)
    chunks = generate.plan_chunks([1200, 300], seed=3, chunk_size=500)
    assert [(c.bin_index, c.index, c.n_events, c.first_event) for c in chunks] == [
        (0, 0, 500, 1), (0, 1, 500, 501), (0, 2, 200, 1001), (1, 0, 300, 1)]
    assert [c.pythia_seed for c in chunks] == [3_000_000, 3_000_001, 3_000_002, 3_010_000]
    legacy = generate.plan_chunks([41], seed=2, chunk_size=500, jobs=2)
    assert [(c.n_events, c.pythia_seed, c.first_event) for c in legacy] == [(21, 2000, 1), (20, 2001, 22)]
    assert [(c.n_events, c.pythia_seed) for c in generate.plan_chunks([7], 5, 500, jobs=1)] == [(7, 5)]


def test_bin_output_names(tmp_path):
    bins = [(15.0, 30.0), (30.0, np.inf)]
    assert [p.name for p in generate.bin_outputs(tmp_path, "qcd", bins)] == ["qcd_pthat15to30.root",
                                                                            "qcd_pthat30toInf.root"]
    assert generate.bin_outputs(tmp_path / "rate.root", "qcd", bins)[0] == tmp_path / "rate_pthat15to30.root"
    assert generate.bin_outputs(tmp_path / "x.root", "qcd", None) == [tmp_path / "x.root"]


@pytest.mark.parametrize("kwargs, message", [
    ({"process": "ttbar", "pthat_bins": "15,30"}, "--pthat-bins applies to pTHat-generated"),
    ({"pthat_bins": "15,30,50", "n_events": [10, 10]}, "2 counts for 3 pTHat bins"),
    ({"pthat_bins": "15,30", "jobs": 2}, "--jobs is the legacy split"),
    ({"seed": 450}, "seed must be in 1..449 for chunked seeds"),
    ({"workers": -1}, "--workers must be >= 0"),
    ({"pthat_bins": "15,x"}, "comma-separated numbers"),
    ({"n_events": [10, 10]}, "2 counts but no --pthat-bins"),
])
def test_bad_binned_requests_are_refused_before_generation(tmp_path, kwargs, message):
    args = {"process": "qcd", "n_events": 10, "seed": 1, "output": tmp_path, "progress": False, **kwargs}
    with pytest.raises(QTriggerError, match=message):
        generate.generate_sample(**args)
    assert list(tmp_path.iterdir()) == []


def test_existing_bin_file_needs_overwrite(tmp_path):
    (tmp_path / "qcd_pthat30toInf.root").write_bytes(b"keep me")
    with pytest.raises(QTriggerError, match=r"qcd_pthat30toInf.root already exists \(use --overwrite"):
        generate.generate_sample("qcd", 10, 1, tmp_path, pthat_bins="15,30", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qcd_pthat30toInf.root"]
    assert (tmp_path / "qcd_pthat30toInf.root").read_bytes() == b"keep me"


@pytest.fixture(scope="module")
def binned(tmp_path_factory):
    """Two small unbiased pTHat bins, three chunks each way (in this process)."""
    out = tmp_path_factory.mktemp("binned")
    summary = generate.generate_sample("qcd", [30, 20], 4, out, pthat_bins="30,60", chunk_size=12,
                                       batch_size=10, workers=0, progress=False)
    return out, summary


def test_binned_files_runs_and_pthat(binned):
    from qtrigger.data.samples import event_xsec_weights_mb, read_sample_info

    out, summary = binned
    files = [out / "qcd_pthat30to60.root", out / "qcd_pthat60toInf.root"]
    assert summary["outputs"] == [str(f) for f in files] and summary["chunks"] == 3 + 2
    assert sorted(p.name for p in out.iterdir()) == [f.name for f in files]  # no parts, no temp files
    for f, n, (lo, hi) in zip(files, (30, 20), ((30, 60), (60, np.inf))):
        events, runs, _ = _read(f)
        assert len(events) == n == runs["genEventCount"][0]
        assert events["event"].to_numpy().tolist() == list(range(1, n + 1))
        pthat = events["Generator_binvar"].to_numpy()
        assert (pthat >= lo).all() and (pthat < hi).all()  # PhaseSpace:pTHatMin/Max applied
        assert (events["genWeight"].to_numpy() == 1).all() and runs["genEventSumw"][0] == n
        assert (runs["pthatMin"][0], runs["pthatMax"][0], runs["genFilterEff"][0]) == (lo, hi, 1.0)
    info = read_sample_info([str(f) for f in files])
    assert info.is_stitched and info.xsec_mb == pytest.approx(summary["xsec_mb"])
    # sigma(pTHat > 30) ~ 0.16 mb, most of it below 60 GeV
    assert 0.05 < info.bins[0].xsec_mb < 0.5 and info.bins[1].xsec_mb < 0.25 * info.bins[0].xsec_mb
    event_file = np.repeat([str(f) for f in files], [30, 20])
    assert event_xsec_weights_mb(info, event_file, np.ones(50)).sum() == pytest.approx(info.xsec_mb)


def test_failed_chunk_leaves_no_output(tmp_path, monkeypatch):
    real = generate._generate_part
    calls = []

    def failing(spec):
        calls.append(spec["pythia_seed"])
        if len(calls) == 2:
            raise QTriggerError("injected failure in the second chunk")
        return real(spec)

    monkeypatch.setattr(generate, "_generate_part", failing)
    with pytest.raises(QTriggerError, match="injected failure"):
        generate.generate_sample("qcd", 8, 1, tmp_path / "rate", pthat_bins="30", chunk_size=5, workers=0,
                                 progress=False)
    assert calls == [1_000_000, 1_000_001] and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_same_events_on_any_number_of_dask_workers(tmp_path, binned):
    """Chunk seeds fix the sample: 2 LocalCluster workers and an existing 1-worker cluster (--scheduler)
    reproduce the in-process files, array by array and Runs value by value."""
    from distributed import LocalCluster

    reference, _ = binned
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        runs = {2: {"workers": 2}, "scheduler": {"scheduler": cluster.scheduler_address}}
        for label, how in runs.items():
            out = tmp_path / f"w{label}"
            out.mkdir()
            summary = generate.generate_sample("qcd", [30, 20], 4, out, pthat_bins="30,60", chunk_size=12,
                                               batch_size=10, progress=False, **how)
            assert summary["workers"] == how.get("workers")
            _assert_same_files(out, reference, label)


def _assert_same_files(out, reference, label):
    for name in ("qcd_pthat30to60.root", "qcd_pthat60toInf.root"):
        got, runs, _ = _read(out / name)
        want, want_runs, _ = _read(reference / name)
        for branch in want.fields:
            assert ak.array_equal(got[branch], want[branch]), (label, name, branch)
        for key in want_runs:
            assert runs[key][0] == want_runs[key][0], (label, name, key)
    assert sorted(p.name for p in out.iterdir()) == ["qcd_pthat30to60.root", "qcd_pthat60toInf.root"]
