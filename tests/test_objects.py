"""features.objects (issue 32, first step): config validation and the exact GT words of L1 object groups, read from
files with CMSSW's L1 NanoAOD names and types (full schema with hw words, reduced schema without)."""

import math

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from qtrigger.config import FeaturesConfig
from qtrigger.data.objects import read_object_groups
from qtrigger.errors import QTriggerError
from qtrigger.inputs.objects import delta_phi_words, object_words

uproot = pytest.importorskip("uproot")
ak = pytest.importorskip("awkward")

CALO_PHI, MU_PHI = 2 * math.pi / 144, 2 * math.pi / 576
GROUPS = [{"collection": "L1Jet", "n": 2}, {"collection": "L1Mu", "n": 2},
          {"collection": "L1EtSum", "types": {"MET": 2, "HTT": 1}}]


def _phi(word, step, steps):
    return (word - steps if word >= steps // 2 else word) * step


# Three events (bx -2..2 as the L1 nano stores them); words, and the floats CMSSW writes beside them.
JETS = {"bx": [[0, 0, -1, 0], [], [1]], "hwPt": [[41, 200, 600, 111], [], [90]],
        "hwEta": [[3, -10, 0, -100], [], [5]], "hwPhi": [[1, 143, 0, 72], [], [7]]}
MUONS = {"bx": [[0, 0], [0], [-1]], "hwPt": [[21, 8], [15], [40]], "hwEta": [[50, -200], [3], [0]],
         "hwPhi": [[575, 0], [288], [9]]}
SUMS = {"bx": [[-1, 0, 0, 0, 0], [0, 0], [0, 0]], "etSumType": [[2, 0, 1, 2, 8], [2, 1], [1, 2]],
        "hwPt": [[198, 400, 301, 60, 70], [10, 0], [33, 4]], "hwPhi": [[3, 0, 0, 10, 11], [100, 0], [0, 143]]}


def _floats(words, lsb, step, steps, offset=0, eta_shift=0.0):
    return {"pt": [[(w - offset) * 0.5 for w in ev] for ev in words["hwPt"]],
            "eta": [[(w + eta_shift) * lsb for w in ev] for ev in words.get("hwEta", [[] for _ in words["hwPt"]])],
            "phi": [[_phi(w, step, steps) for w in ev] for ev in words["hwPhi"]]}


def _typed(values, dtype):
    return ak.values_astype(ak.Array(values), dtype)


def _write(path, full: bool, eta_shift=0.0):
    """CMSSW's L1 nano: float kinematics, int16 object words, int32 bx; L1EtSum int32 hwPt/hwPhi/etSumType."""
    collections = {}
    for name, words, lsb, step, steps, offset in (("L1Jet", JETS, 0.0435, CALO_PHI, 144, 0),
                                                  ("L1Mu", MUONS, 0.010875, MU_PHI, 576, 1)):
        fields = {k: _typed(v, np.float32) for k, v in _floats(words, lsb, step, steps, offset, eta_shift).items()}
        if full:
            fields |= {k: _typed(words[k], np.int16) for k in ("hwPt", "hwEta", "hwPhi")}
            fields["hwQual"] = _typed([[12] * len(b) for b in words["bx"]], np.int16)
        fields["bx"] = _typed(words["bx"], np.int32)
        collections[name] = ak.zip(fields)
    sums = {"pt": _typed([[w * 0.5 for w in ev] for ev in SUMS["hwPt"]], np.float32),
            "phi": _typed([[_phi(w, CALO_PHI, 144) for w in ev] for ev in SUMS["hwPhi"]], np.float32),
            "etSumType": _typed(SUMS["etSumType"], np.int32), "bx": _typed(SUMS["bx"], np.int32)}
    if full:
        sums |= {"hwPt": _typed(SUMS["hwPt"], np.int32), "hwPhi": _typed(SUMS["hwPhi"], np.int32)}
    collections["L1EtSum"] = ak.zip(sums)
    with uproot.recreate(path) as f:
        f.mktree("Events", {"event": np.uint64, **{k: v.type for k, v in collections.items()}})
        f["Events"].extend({"event": np.arange(1, 4, dtype=np.uint64), **collections})
    return str(path)


def _words(path, groups=GROUPS, **features):
    config = FeaturesConfig(objects=groups, **features)
    return object_words(read_object_groups(path, config.objects), config)


EXPECTED = {
    "L1Jet0_pt": [200, 0, 0], "L1Jet0_eta": [-10, 0, 0], "L1Jet0_phi": [143, 0, 0],  # pT-ordered, bx 0 only
    "L1Jet1_pt": [111, 0, 0], "L1Jet1_eta": [-100, 0, 0], "L1Jet1_phi": [72, 0, 0],  # the 20.5 GeV jet: slot 3
    "L1Mu0_pt": [21, 15, 0], "L1Mu0_eta": [50, 3, 0], "L1Mu0_phi": [575, 288, 0],  # the uGMT's pT word
    "L1Mu1_pt": [8, 0, 0], "L1Mu1_eta": [-200, 0, 0], "L1Mu1_phi": [0, 0, 0],
    "MET_pt": [60, 10, 4], "MET_phi": [10, 100, 143], "HTT_pt": [301, 0, 33], "HTT_phi": [0, 0, 0],
}


@pytest.mark.parametrize("full", [True, False])
def test_words_of_both_schemas(tmp_path, full):
    words = _words(_write(tmp_path / "l1.root", full))
    assert words.names == list(EXPECTED)
    assert {n: words.column(n).tolist() for n in words.names} == EXPECTED
    assert words.words.dtype == np.int64 and words.words.shape == (3, 16)
    fmt = dict(zip(words.names, words.formats))
    assert (fmt["L1Jet0_eta"].lsb, fmt["L1Mu0_eta"].lsb, fmt["L1Mu0_phi"].lsb) == (0.0435, 0.010875, MU_PHI)


def test_hardware_words_are_used_as_they_are(tmp_path):
    """Floats off their words by 0.4 LSB in eta: the full schema's hwEta is taken, the reduced one rounds."""
    full = _words(_write(tmp_path / "full.root", True, eta_shift=0.4), GROUPS[:1])
    assert full.column("L1Jet1_eta").tolist() == [-100, 0, 0]
    shifted = _words(_write(tmp_path / "reduced.root", False, eta_shift=0.6), GROUPS[:1])
    assert shifted.column("L1Jet1_eta").tolist() == [-99, 0, 0]


def test_formats_from_config_and_saturation(tmp_path):
    path = _write(tmp_path / "l1.root", True)
    words = _words(path, GROUPS[:1] + GROUPS[2:], formats={"L1Jet_pt": {"lsb": 1.0, "bits": 7},
                                                          "MET_pt": {"lsb": 0.25, "bits": 12}})
    assert words.column("L1Jet0_pt").tolist() == [100, 0, 0]  # a configured word: from the float, 1 GeV
    assert words.column("L1Jet1_pt").tolist() == [55, 0, 0]
    assert words.column("MET_pt").tolist() == [120, 20, 8] and words.column("HTT_pt").tolist() == [301, 0, 33]
    narrow = _words(path, GROUPS[:1], formats={"L1Jet_pt": {"lsb": 0.5, "bits": 7}})
    assert narrow.column("L1Jet0_pt").tolist() == [127, 0, 0]  # 200 saturates at 127


def test_bad_inputs_one_line(tmp_path):
    path = _write(tmp_path / "l1.root", False)
    with pytest.raises(QTriggerError) as err:
        _words(path, [{"collection": "L1EtSum", "types": {"METHF": 8, "ETT": 0, "MHT": 3}}])
    assert str(err.value) == (f"{path}: L1EtSum has no etSumType 3 (MHT) in bunch crossing 0 (features.objects "
                              "types); types in the file: 0, 1, 2, 8")
    with pytest.raises(QTriggerError, match=r"no L1EG collection \(features.collection: L1EG"):
        _words(path, [{"collection": "L1EG", "n": 4}])
    with pytest.raises(QTriggerError, match="L1Jet has no L1Jet_etSumType branch"):
        _words(path, [{"collection": "L1Jet", "types": {"MET": 2}}])
    for groups, message in (([{"collection": "L1EG", "n": 0}], "L1EG: n: 0 is not a number of slots in 1..32"),
                            ([{"collection": "L1EG"}], "give n (the leading objects) or types"),
                            ([{"collection": "L1EtSum", "types": {}}], "types is empty"),
                            ([{"collection": "L1EG", "n": 2}, {"collection": "L1EG", "n": 3}], "more than once")):
        with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
            FeaturesConfig(objects=groups)


def test_cli_refuses_n_zero_in_one_line(default_sample, tmp_path, capsys):
    from qtrigger.cli import main

    raw = {"name": "objects", "output_dir": str(tmp_path / "runs"), "hls": {"output_dir": str(tmp_path / "hls")},
           "data": {"samples": [{"name": "tt", "files": [default_sample["ttbar"]], "role": "signal"}]},
           "features": {"objects": [{"collection": "L1Jet", "n": 10}, {"collection": "L1EG", "n": 0}]}}
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("qtrigger: error: ") and "L1EG: n: 0 is not a number of slots" in err[0]
    raw["features"]["objects"][1]["n"] = 4
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "features.objects: object groups are event-level inputs; set features.level: event" in err[0]


def test_delta_phi_between_muon_and_calorimeter_words_is_exact():
    mu = np.array([0, 575, 300, 4 * 71 + 1])
    calo = np.array([0, 0, 143, 71])
    dphi, steps = delta_phi_words(mu, 576, calo, 144)
    assert steps == 576 and dphi.tolist() == [0, -1, -272, 1]
    angle = (dphi * 2 * math.pi / 576)
    direct = np.angle(np.exp(1j * (mu * MU_PHI - calo * CALO_PHI)))  # the same angle, in floats
    assert np.allclose(angle, direct)
    assert delta_phi_words(np.array([72]), 144, np.array([0]), 144)[0].tolist() == [-72]  # pi wraps to -pi
    with pytest.raises(ValueError, match="no exact common grid"):
        delta_phi_words(np.array([1]), 576, np.array([1]), 100)


def test_extra_words_per_slot_follow_their_object(tmp_path):
    """``fields``: the file's extra word of each object (here hwQual) sits in that object's pT-ordered slot, after
    its pT, eta and phi; empty slots are 0; a configured narrower word saturates."""
    path = _write(tmp_path / "l1.root", True)
    words = _words(path, [{"collection": "L1Mu", "n": 2, "fields": ["hwQual"]}])
    assert words.names == [f"L1Mu{s}_{f}" for s in (0, 1) for f in ("pt", "eta", "phi", "hwQual")]
    assert words.column("L1Mu0_hwQual").tolist() == [12, 12, 0] and words.column("L1Mu1_hwQual").tolist() == [12, 0, 0]
    narrow = _words(path, [{"collection": "L1Mu", "n": 1, "fields": ["hwQual"]}],
                    formats={"L1Mu_hwQual": {"lsb": 1.0, "bits": 3}})
    assert narrow.column("L1Mu0_hwQual").tolist() == [7, 7, 0]
    assert "fields" not in FeaturesConfig(objects=GROUPS).model_dump()["objects"][0]  # resolved bytes as before


def test_objects_outside_the_group_acceptance_do_not_fill_slots(tmp_path):
    """``pt_min``/``abs_eta_max`` act on the words: of the event's crossing-0 jets (pT words 41, 200, 111 at eta
    words 3, -10, -100) only the 20.5 GeV one has |eta| <= 0.3; a 60 GeV minimum keeps only the 100 GeV one; muons
    count the uGMT word minus one (21 -> 10 GeV kept at 10 GeV, 8 -> 3.5 GeV and 15 -> 7 GeV dropped)."""
    path = _write(tmp_path / "l1.root", True)
    central = _words(path, [{"collection": "L1Jet", "n": 2, "abs_eta_max": 0.3}])
    assert central.column("L1Jet0_pt").tolist() == [41, 0, 0] and central.column("L1Jet1_pt").tolist() == [0, 0, 0]
    assert central.column("L1Jet0_eta").tolist() == [3, 0, 0]
    hard = _words(path, [{"collection": "L1Jet", "n": 2, "pt_min": 60.0},
                         {"collection": "L1Mu", "n": 2, "pt_min": 10.0}])
    assert hard.column("L1Jet0_pt").tolist() == [200, 0, 0] and hard.column("L1Jet1_pt").tolist() == [0, 0, 0]
    assert hard.column("L1Mu0_pt").tolist() == [21, 0, 0] and hard.column("L1Mu1_pt").tolist() == [0, 0, 0]


def test_bad_extra_words_one_line(tmp_path):
    path = _write(tmp_path / "reduced.root", False)  # no hw words
    with pytest.raises(QTriggerError) as err:
        _words(path, [{"collection": "L1Mu", "n": 2, "fields": ["hwQual"]}])
    assert str(err.value) == (f"{path}: no L1Mu_hwQual branch (features.objects L1Mu fields); L1Mu fields in the "
                              "file: bx, eta, phi, pt")
    for groups, message in (
            ([{"collection": "L1Mu", "n": 2, "fields": ["hwSign"]}],
             "features.objects L1Mu: field hwSign has no fixed-point word; add features.formats.L1Mu_hwSign: "),
            ([{"collection": "L1EtSum", "types": {"MET": 2}, "fields": ["hwQual"]}], "a sum group (types) has pT"),
            ([{"collection": "L1EtSum", "types": {"MET": 2}, "pt_min": 5.0}], "a sum group (types) has pT"),
            ([{"collection": "L1Mu", "n": 2, "fields": ["eta"]}], "must be distinct branch fields other than pt")):
        with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
            FeaturesConfig(objects=groups)
