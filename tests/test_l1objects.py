"""L1-like objects of the generator (--l1-objects): CMSSW's L1 NanoAOD schema, GT words, definitions on hand-made
inputs, and every other branch bit-identical to a file made without them."""

import argparse
import math

import numpy as np
import pytest

from qtrigger.errors import QTriggerError
from qtrigger.generate import l1objects as l1
from qtrigger.generate.events import K_CHEM, K_CHH, K_MU, K_NEEM, K_NEH
from qtrigger.generate.output import L1_FIELDS

# CMSSW's full L1 nano types (PhysicsTools/NanoAOD/python/l1trig_cff.py; BXVectorSimpleFlatTableProducer's bx)
CMSSW_TYPES = {"pt": "float32", "eta": "float32", "phi": "float32", "hwPt": "int16", "hwEta": "int16",
               "hwPhi": "int16", "hwQual": "int16", "hwIso": "int16", "bx": "int32"}
ETSUM_TYPES = {"pt": "float32", "phi": "float32", "hwPt": "int32", "hwPhi": "int32", "etSumType": "int32",
               "bx": "int32"}
EXACT = l1.L1Settings(jet_stochastic=0.0, jet_constant=0.0, eg_stochastic=0.0, eg_constant=0.0,
                      mu_resolution=(0.0, 0.0, 0.0))


def _particles(rows):
    """Merged clustering inputs from (kind, pt, eta, phi, pdg, event) rows."""
    kind, pt, eta, phi, pdg, evt = (np.array(c) for c in zip(*rows))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    order = np.argsort(evt, kind="stable")
    out = {"px": px, "py": py, "pz": pz, "E": np.sqrt(px**2 + py**2 + pz**2), "pt_true": pt.astype(float),
           "kind": kind.astype(np.int8), "pdg": pdg.astype(np.int32), "evt": evt.astype(np.int64),
           "charge": np.zeros(len(pt), np.int8)}
    return {k: v[order] for k, v in out.items()}


def _sums(inputs, n_events=1, jets=None, settings=EXACT):
    jets = jets or {"pt": np.zeros(0), "eta": np.zeros(0), "phi": np.zeros(0), "hwPt": np.zeros(0, int),
                    "evt": np.zeros(0, int)}
    rows = l1.l1_sums(l1.towers(inputs), jets, n_events, settings)
    return {r["etSumType"][0]: (r["hwPt"], r["hwPhi"]) for r in rows}


# --------------------------------------------------------------------------- definitions on hand-made inputs


def test_words_use_the_gt_lsbs():
    assert l1.pt_word(np.array([0.49, 0.5, 20.2, 5000.0]), 2047).tolist() == [0, 1, 40, 2047]
    assert l1.phi_word(np.array([0.0, math.pi, -math.pi / 2, 2 * math.pi / 144]), 144).tolist() == [0, 72, 108, 1]
    assert l1.phi_value(np.array([72, 108, 1]), 144).tolist() == pytest.approx([-math.pi, -math.pi / 2, math.pi / 72])
    assert l1.phi_word(np.array([2 * math.pi / 576 * 5]), 576).tolist() == [5]


def test_sums_from_towers_of_calorimeter_particles():
    one = _particles([(K_NEEM, 40.0, 0.1, 0.5, 22, 0)])
    sums = _sums(one)
    assert sums[0][0].tolist() == [80]  # ETT: 40 GeV in 0.5 GeV words
    assert sums[2][0].tolist() == [80] and sums[8][0].tolist() == [80]  # MET = the one tower's ET
    tower_phi = (math.floor(0.5 / (2 * math.pi / 72)) + 0.5) * 2 * math.pi / 72
    assert sums[2][1].tolist() == l1.phi_word(np.array([tower_phi - math.pi]), 144).tolist()  # opposite to it
    pair = _particles([(K_NEH, 40.0, 0.1, 0.5, 2112, 0), (K_CHH, 40.0, -0.1, 0.5 - math.pi, 211, 0)])
    sums = _sums(pair)
    assert sums[0][0].tolist() == [160] and (sums[2][0].tolist(), sums[2][1].tolist()) == ([0], [0])
    muon_and_forward = _particles([(K_MU, 50.0, 0.0, 0.0, 13, 0), (K_NEH, 30.0, 4.0, 1.0, 2112, 0)])
    sums = _sums(muon_and_forward)  # muons leave no tower; |eta| = 4 only enters METHF
    assert (sums[0][0].tolist(), sums[2][0].tolist(), sums[8][0].tolist()) == ([0], [0], [60])


def test_ht_from_l1_jets_above_the_threshold():
    jets = {"pt": np.array([100.0, 30.0, 50.0, 60.0]), "eta": np.array([0.0, 0.0, 2.6, 1.0]),
            "phi": np.array([0.0, 0.0, 0.0, math.pi / 2]), "hwPt": np.array([200, 60, 100, 120]),
            "evt": np.array([0, 0, 0, 1])}
    sums = _sums(_particles([(K_NEH, 1.0, 0.0, 0.0, 2112, 0)]), 2, jets)
    assert sums[1][0].tolist() == [200, 120]  # 30 GeV is not above 30; |eta| 2.6 is outside 2.4
    assert sums[3][0].tolist() == [200, 120]  # MHT of one jet = its pT
    assert sums[3][1].tolist() == [72, 108]  # opposite to the jet


def test_eg_cluster_position_and_isolation_word():
    settings = EXACT
    iso = _particles([(K_NEEM, 10.0, 0.04, 0.03, 22, 0), (K_CHEM, 3.0, 0.13, 0.03, 11, 0),  # adjacent in eta
                      (K_CHH, 1.0, 0.04, 0.03 + 2 * 2 * math.pi / 72, 211, 0)])  # 2 towers away in phi
    eg = l1.l1_eg(l1.towers(iso), settings, l1.L1Random(1))
    assert eg["hwPt"].tolist() == [26]  # 13 GeV: one cluster, one seed
    assert (eg["hwEta"].tolist(), eg["hwPhi"].tolist()) == ([1], [1])  # the seed tower's centre: 0.0435, 2.5 deg
    assert eg["hwIso"].tolist() == [3]  # 1 GeV around 13: loose and tight
    busy = _particles([(K_NEEM, 10.0, 0.04, 0.03, 22, 0), (K_CHH, 2.5, 0.04, 0.03 + 2 * 2 * math.pi / 72, 211, 0)])
    assert l1.l1_eg(l1.towers(busy), settings, l1.L1Random(1))["hwIso"].tolist() == [1]  # 2.5 < 0.3 * 10 only
    soft = _particles([(K_NEEM, 1.5, 0.0, 0.0, 22, 0), (K_NEH, 20.0, 0.0, 0.0, 2112, 0)])
    assert len(l1.l1_eg(l1.towers(soft), settings, l1.L1Random(1))["hwPt"]) == 0  # below the 2 GeV EM seed


def test_tau_cluster_of_all_calorimeter_et_and_isolation_bit():
    narrow = _particles([(K_CHH, 20.0, 0.04, 0.03, 211, 0), (K_NEEM, 4.0, 0.13, 0.03, 22, 0),  # adjacent in eta
                         (K_NEH, 1.0, 0.04, 0.03 + 2 * 2 * math.pi / 72, 2112, 0)])  # 2 towers away in phi
    tau = l1.l1_taus(l1.towers(narrow), EXACT, l1.L1Random(1))
    assert tau["hwPt"].tolist() == [48]  # 24 GeV of hadrons and photons in the 3 x 3: one seed
    assert (tau["hwEta"].tolist(), tau["hwPhi"].tolist(), tau["hwIso"].tolist()) == ([1], [1], [1])  # 1 < 0.2 * 24
    wide = _particles([(K_CHH, 20.0, 0.04, 0.03, 211, 0), (K_NEH, 4.5, 0.04, 0.03 + 2 * 2 * math.pi / 72, 2112, 0)])
    assert l1.l1_taus(l1.towers(wide), EXACT, l1.L1Random(1))["hwIso"].tolist() == [0]  # 4.5 > 0.2 * 20 (and no seed)
    soft = _particles([(K_CHH, 4.0, 0.0, 0.0, 211, 0), (K_MU, 40.0, 0.0, 0.0, 13, 0)])
    assert len(l1.l1_taus(l1.towers(soft), EXACT, l1.L1Random(1))["hwPt"]) == 0  # below the 5 GeV seed; no muons


def test_muon_words_quality_and_charge():
    mu = _particles([(K_MU, 20.0, 0.5, 1.0, 13, 0), (K_MU, 10.0, -2.2, -1.0, -13, 0), (K_MU, 2.0, 0.0, 0.0, 13, 0),
                     (K_MU, 30.0, 2.5, 0.0, 13, 0)])
    out = l1.l1_muons(mu, EXACT, l1.L1Random(1))
    assert out["hwPt"].tolist() == [41, 21]  # pT = 0.5 (hwPt - 1); < 3 GeV and |eta| > 2.4 are not L1 muons
    assert out["pt"].tolist() == [20.0, 10.0]
    assert out["hwEta"].tolist() == [round(0.5 / 0.010875), round(-2.2 / 0.010875)]
    assert out["hwPhi"].tolist() == [round(1.0 / (2 * math.pi / 576)), 576 - round(1.0 / (2 * math.pi / 576))]
    assert (out["hwQual"].tolist(), out["hwCharge"].tolist()) == ([12, 8], [1, 0])


def test_jet_response_and_per_event_order_and_cap():
    cols = {"pt": np.array([40.0, 100.0, 25.0], np.float32), "eta": np.array([0.5, -1.0, 0.0], np.float32),
            "phi": np.array([0.1, 0.2, 0.3], np.float32)}
    settings = l1.L1Settings(jet_response=1.1, jet_stochastic=0.0, jet_constant=0.0, max_jets=1)
    jets = l1.l1_jets(cols, np.array([2, 1]), settings, l1.L1Random(1))
    assert jets["hwPt"].tolist() == [88, 220, 55]
    table, per_event = l1._per_event(jets, jets["evt"], 2, 1, L1_FIELDS["L1Jet"])
    assert per_event.tolist() == [1, 1] and table["hwPt"].tolist() == [220, 55]


def test_events_without_particles():
    empty = {k: np.zeros(0, dtype=v.dtype) for k, v in _particles([(K_NEH, 1.0, 0.0, 0.0, 2112, 0)]).items()}
    cols = {"pt": np.zeros(0, np.float32), "eta": np.zeros(0, np.float32), "phi": np.zeros(0, np.float32)}
    out = l1.l1_objects(empty, cols, np.zeros(2, np.int64), 2, l1.L1Settings(), l1.L1Random(3), L1_FIELDS)
    assert [out[c][1].tolist() for c in ("L1Jet", "L1EG", "L1Tau", "L1Mu")] == [[0, 0]] * 4
    table, per_event = out["L1EtSum"]
    assert per_event.tolist() == [5, 5] and table["etSumType"].tolist() == [0, 1, 2, 3, 8] * 2
    assert (table["hwPt"] == 0).all() and (table["hwPhi"] == 0).all()


# --------------------------------------------------------------------------- generated files

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")
uproot = pytest.importorskip("uproot")
ak = pytest.importorskip("awkward")


def _arrays(path):
    with uproot.open(path) as f:
        return ({k: f["Events"][k].array(library="np") for k in f["Events"].keys()},
                {k: f["Events"][k].interpretation for k in f["Events"].keys()},
                f["Runs"].arrays(library="np"))


def _same(a, b) -> bool:
    if a.dtype == object:
        return len(a) == len(b) and all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(a, b))
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """ttbar with and without L1 objects (same seed), and with L1 objects in other batches; two chunks each (the
    parts' collections are merged)."""
    from qtrigger.generate import generate_sample

    folder = tmp_path_factory.mktemp("l1")
    kw = dict(workers=0, progress=False, candidates=False, chunk_size=12)
    generate_sample("ttbar", 24, 9, folder / "off.root", batch_size=10, **kw)
    generate_sample("ttbar", 24, 9, folder / "on.root", batch_size=10, l1_objects=True, **kw)
    generate_sample("ttbar", 24, 9, folder / "on_batch7.root", batch_size=7, l1_objects=True, **kw)
    return folder


@pytest.fixture(scope="module")
def pileup_files(tmp_path_factory):
    """ttbar at mu = 10 (from a 40-interaction library: one minimum-bias Pythia for both; Run-3-like mitigation)
    with and without L1 objects, and the particles the objects were built from (``seen``)."""
    from qtrigger.generate import chunk, generate_library, generate_sample

    folder = tmp_path_factory.mktemp("l1pu")
    generate_library(40, 9, folder / "lib", chunk_size=40, workers=0, progress=False)
    kw = dict(workers=0, progress=False, candidates=False, pileup=10, pileup_library=folder / "lib")
    generate_sample("ttbar", 6, 9, folder / "pu_off.root", **kw)
    seen, real = [], chunk.l1_objects

    def spy(inputs, *args):
        seen.append(inputs)
        return real(inputs, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunk, "l1_objects", spy)
        generate_sample("ttbar", 6, 9, folder / "pu_on.root", l1_objects=True, **kw)
    return folder, seen


def test_every_other_branch_is_bit_identical(files):
    _check_identical(files / "off.root", files / "on.root")


@pytest.mark.slow
def test_every_other_branch_is_bit_identical_at_pileup(pileup_files):
    _check_identical(pileup_files[0] / "pu_off.root", pileup_files[0] / "pu_on.root")


def _check_identical(off_path, on_path):
    off, on = _arrays(off_path), _arrays(on_path)
    new = sorted(set(on[0]) - set(off[0]))
    assert new == sorted([f"n{c}" for c in L1_FIELDS] + [f"{c}_{f}" for c, fs in L1_FIELDS.items() for f in fs])
    assert set(off[0]) <= set(on[0])
    assert [k for k in off[0] if not _same(off[0][k], on[0][k])] == []
    assert {k: str(v) for k, v in off[1].items()} == {k: str(on[1][k]) for k in off[1]}
    assert [k for k in off[2] if not _same(off[2][k], on[2][k])] == []
    assert on[2]["l1JetResponse"].tolist() == [1.0] and "l1JetResponse" not in off[2]


def test_branch_types_follow_cmssw(files):
    _, types, _ = _arrays(files / "on.root")
    for collection, fields in L1_FIELDS.items():
        expected = ETSUM_TYPES if collection == "L1EtSum" else {**CMSSW_TYPES, **(
            {"hwCharge": "int16"} if collection == "L1Mu" else {})}
        got = {f: str(types[f"{collection}_{f}"].content.to_dtype.newbyteorder("=")) for f in fields}
        assert got == expected, collection
        assert str(types[f"n{collection}"].to_dtype.newbyteorder("=")) == "int32"


def test_words_and_values_agree(files):
    ev, _, _ = _arrays(files / "on.root")
    cat = {k: np.concatenate(v) if v.dtype == object else v for k, v in ev.items()}
    for c, eta_lsb, steps, offset in (("L1Jet", 0.0435, 144, 0), ("L1EG", 0.0435, 144, 0), ("L1Tau", 0.0435, 144, 0),
                                      ("L1Mu", 0.010875, 576, 1)):
        assert np.array_equal(cat[f"{c}_pt"], ((cat[f"{c}_hwPt"] - offset) * 0.5).astype(np.float32)), c
        assert np.array_equal(cat[f"{c}_eta"], (cat[f"{c}_hwEta"] * eta_lsb).astype(np.float32)), c
        assert np.array_equal(cat[f"{c}_phi"], l1.phi_value(cat[f"{c}_hwPhi"], steps).astype(np.float32)), c
        assert (cat[f"{c}_bx"] == 0).all() and (cat[f"{c}_hwPt"] > offset).all()
        assert all((np.diff(x) <= 0).all() for x in ev[f"{c}_hwPt"]), f"{c} is pT-ordered"
    assert ev["nL1Jet"].max() <= 12 and ev["nL1EG"].max() <= 12 and ev["nL1Tau"].max() <= 12 and ev["nL1Mu"].max() <= 8
    assert ev["nL1Jet"].sum() > 100 and ev["nL1EG"].sum() > 50 and ev["nL1Tau"].sum() > 50 and ev["nL1Mu"].sum() > 3
    assert set(cat["L1Tau_hwIso"].tolist()) == {0, 1}
    assert set(cat["L1EG_hwIso"].tolist()) <= {0, 1, 3} and set(cat["L1Mu_hwQual"].tolist()) <= {8, 12}
    assert all(t.tolist() == [0, 1, 2, 3, 8] for t in ev["L1EtSum_etSumType"])
    assert np.array_equal(cat["L1EtSum_pt"], (cat["L1EtSum_hwPt"] * 0.5).astype(np.float32))
    few = ev["nL1Jet"] < 12  # every L1 jet is in the file: HTT is the sum of those above 30 GeV in |eta| < 2.4
    ht = [h[(p > 30) & (np.abs(e) < 2.4)].sum() for h, p, e in zip(ev["L1Jet_hwPt"], ev["L1Jet_pt"], ev["L1Jet_eta"])]
    htt = np.array([s[t == 1][0] for s, t in zip(ev["L1EtSum_hwPt"], ev["L1EtSum_etSumType"])])
    assert np.array_equal(htt[few], np.array(ht)[few])
    l1_pt = np.array([p.sum() for p in ev["L1Jet_pt"]])[few]
    jet_pt = np.array([p.sum() for p in ev["Jet_pt"]])[few]
    assert 0.85 < l1_pt.sum() / jet_pt.sum() < 1.15  # response 1, smeared by ~15 %


def test_objects_do_not_depend_on_the_batch_size(files):
    a, _, _ = _arrays(files / "on.root")
    b, _, _ = _arrays(files / "on_batch7.root")
    assert [k for k in a if k.startswith(("L1", "nL1")) and not _same(a[k], b[k])] == []


@pytest.mark.slow
def test_objects_at_pileup_come_from_the_mitigated_inputs(pileup_files):
    from qtrigger.generate.mitigation import CURL_PT_GEV, NEUTRAL_ET_MIN_GEV

    inputs = pileup_files[1][0]
    visible = inputs["kind"] <= K_MU
    pt = np.hypot(inputs["px"], inputs["py"])[visible]
    charged = inputs["charge"][visible] != 0
    assert len(pt) > 100  # pileup particles are there, with the Run-3-like thresholds applied
    assert (pt[charged] >= CURL_PT_GEV).all() and (pt[~charged] >= NEUTRAL_ET_MIN_GEV).all()


def test_bad_l1_settings_and_cli(tmp_path):
    from qtrigger.cli.data import _l1_settings, add_generate_arguments
    from qtrigger.generate import generate_sample

    with pytest.raises(QTriggerError, match="jet response > 0"):
        generate_sample("ttbar", 2, 1, tmp_path / "x.root", l1_objects=l1.L1Settings(jet_response=0.0),
                        workers=0, progress=False)
    parser = argparse.ArgumentParser()
    add_generate_arguments(parser)
    args = parser.parse_args(["--process", "ttbar", "--events", "2", "-o", "x.root", "--l1-jet-response", "1.1"])
    with pytest.raises(QTriggerError, match="need --l1-objects"):
        _l1_settings(args)
    args = parser.parse_args(["--process", "ttbar", "--events", "2", "-o", "x.root", "--l1-objects",
                              "--l1-jet-response", "0.9", "--l1-jet-resolution", "0.8,0.03"])
    assert _l1_settings(args).runs_values() == {"l1JetResponse": 0.9, "l1JetResStochastic": 0.8,
                                                "l1JetResConstant": 0.03}


def test_generated_l1_jets_read_as_the_jet_input(files):
    from qtrigger.data.reader import read_jets

    ev, _, _ = _arrays(files / "on.root")
    table = read_jets({"tt": [str(files / "on.root")]}, ["Jet_pt", "Jet_hwPt", "Jet_hwEta"], truth_branch=None,
                      pt_min=30.0, abs_eta_max=2.4, collection="L1Jet")
    pt, eta, hw = (np.concatenate(ev[f"L1Jet_{f}"]) for f in ("pt", "eta", "hwPt"))
    kept = (pt > 30) & (np.abs(eta) < 2.4)
    assert table.n_jets == int(kept.sum()) > 50
    assert np.array_equal(table.column("Jet_hwPt"), hw[kept].astype(np.float32))
    assert np.array_equal(table.column("Jet_pt"), pt[kept])


def test_a_run_config_on_generated_l1_jets_passes_preflight_and_reads_them(files, tmp_path):
    from qtrigger.config import RunConfig
    from qtrigger.levels.jet import load_jets
    from qtrigger.runs.preflight import check_run_inputs

    config = RunConfig(name="l1jets", output_dir=str(tmp_path / "runs"), hls={"output_dir": str(tmp_path / "hls")},
                       data={"samples": [{"name": "tt", "files": [str(files / "on.root")], "role": "signal"},
                                         {"name": "bg", "files": [str(files / "on_batch7.root")], "role": "background"}],
                             "selection": {"pt_min": 30.0}},
                       features={"collection": "L1Jet", "names": ["Jet_pt", "Jet_eta", "Jet_phi", "Jet_hwPt"]},
                       labels={"source": "sample"}, trigger={"enabled": False})
    assert config.truth_branch is None
    assert set(check_run_inputs(config)) == {"tt", "bg"}
    table = load_jets(config)
    ev, _, _ = _arrays(files / "on.root")
    pt, eta = np.concatenate(ev["L1Jet_pt"]), np.concatenate(ev["L1Jet_eta"])
    assert (table.jet_sample == 0).sum() == int(((pt > 30) & (np.abs(eta) < 2.5)).sum())
    assert np.array_equal(table.column("Jet_hwPt"), table.column("Jet_pt") * 2)
    with pytest.raises(QTriggerError, match=r"no L1Jet collection .*collections in the file: Jet$"):
        check_run_inputs(config.model_copy(update={"data": config.data.model_copy(update={"samples": [
            config.data.samples[0].model_copy(update={"files": [str(files / "off.root")]}),
            config.data.samples[1]]})}))
