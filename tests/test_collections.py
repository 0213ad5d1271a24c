"""features.collection: the per-jet inputs from any NanoAOD collection, e.g. CMSSW's L1 NanoAOD L1Jet (full schema with
hardware words, reduced schema without), bunch crossing 0 only, and a missing collection refused in one line."""

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from qtrigger.config import FeaturesConfig, RunConfig
from qtrigger.data.reader import collection_branch, read_jets
from qtrigger.errors import QTriggerError

uproot = pytest.importorskip("uproot")
ak = pytest.importorskip("awkward")

# Three events of L1 jets over bx -2..2 as CMSSW's full L1 nano writes them (PhysicsTools/NanoAOD l1trig_cff:
# float kinematics, int16 words; the BXVector table's int32 bx), and an L1EtSum beside them. CMSSW's counters are
# uint32; uproot writes every counter as int32 (the reader reads uint32 ones in test_data's real NanoAOD file).
BX = [[0, 0, -1, 1, 0], [2], [0, -2, 0]]
HW_PT = [[300, 120, 500, 80, 40], [90], [70, 600, 66]]
HW_ETA = [[10, -20, 3, 4, 50], [1], [-60, 7, 12]]
HW_PHI = [[0, 72, 5, 6, 143], [2], [30, 31, 100]]


def _jagged(values, dtype):
    return ak.values_astype(ak.Array(values), dtype)


def _write_l1_nano(path, full: bool):
    pt = ak.Array(HW_PT) * 0.5
    jets = {"pt": ak.values_astype(pt, np.float32),
            "eta": ak.values_astype(ak.Array(HW_ETA) * 0.0435, np.float32),
            "phi": ak.values_astype(ak.Array(HW_PHI) * (2 * np.pi / 144), np.float32),
            "bx": _jagged(BX, np.int32)}
    if full:
        jets |= {"hwPt": _jagged(HW_PT, np.int16), "hwEta": _jagged(HW_ETA, np.int16),
                 "hwPhi": _jagged(HW_PHI, np.int16), "hwQual": _jagged([[0] * len(b) for b in BX], np.int16),
                 "hwIso": _jagged([[0] * len(b) for b in BX], np.int16),
                 "towerIEta": _jagged(HW_ETA, np.int16), "rawEt": _jagged(HW_PT, np.int16)}
    sums = {"pt": ak.values_astype(ak.Array([[50.0], [10.0], [20.0]]), np.float32),
            "phi": ak.values_astype(ak.Array([[0.1], [0.2], [0.3]]), np.float32),
            "etSumType": _jagged([[2], [2], [2]], np.int32), "bx": _jagged([[0], [0], [0]], np.int32)}
    branches = {"run": np.ones(3, np.uint32), "event": np.arange(1, 4, dtype=np.uint64), "L1Jet": ak.zip(jets),
                "L1EtSum": ak.zip(sums)}
    with uproot.recreate(path) as f:  # NanoAOD's flat layout: nL1Jet + L1Jet_<field>
        f.mktree("Events", {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in branches.items()})
        f["Events"].extend(branches)
    with uproot.open(path) as f:  # the file is written exactly as the L1 nano types it
        types = {k: f["Events"][k].typename for k in f["Events"].keys()}
    assert types["nL1Jet"] == "int32_t" and types["L1Jet_pt"] == "float[]" and types["L1Jet_bx"] == "int32_t[]"
    assert not full or types["L1Jet_hwPt"] == "int16_t[]"
    return str(path)


def _expected_in_crossing(values):
    return [v for ev_v, ev_bx in zip(values, BX) for v, b in zip(ev_v, ev_bx) if b == 0]


@pytest.mark.parametrize("full", [True, False])
def test_reads_cmssw_l1_nano_jets_of_bunch_crossing_zero(tmp_path, full):
    path = _write_l1_nano(tmp_path / "l1nano.root", full)
    names = ["Jet_pt", "Jet_eta", "Jet_phi"] + (["Jet_hwPt", "Jet_hwEta", "Jet_hwPhi"] if full else [])
    table = read_jets({"zb": [path]}, names, truth_branch=None, pt_min=25.0, abs_eta_max=2.5, collection="L1Jet")
    pt = np.array(_expected_in_crossing(HW_PT)) * 0.5
    eta = np.array(_expected_in_crossing(HW_ETA)) * 0.0435
    kept = (pt > 25) & (np.abs(eta) < 2.5)  # bx 0: 150, 60, 20 | - | 35 (eta -2.61), 33; the bx != 0 ones not
    assert table.n_events == 3 and table.n_jets == int(kept.sum()) == 3
    assert np.array_equal(table.column("Jet_pt"), pt[kept].astype(np.float32))
    assert table.event.tolist() == [0, 0, 2]
    assert table.jet_index.tolist() == [0, 1, 1]  # positions among the bx 0 jets (the bx -2 jet is not counted)
    assert (table.truth == 0).all() and table.event_weight.tolist() == [1.0, 1.0, 1.0]
    if full:
        assert table.column("Jet_hwPt").tolist() == [300, 120, 66]
        assert table.column("Jet_hwEta").tolist() == [10, -20, 12]
        assert table.column("Jet_hwPhi").tolist() == [0, 72, 100]


def test_missing_collection_is_one_line_naming_it_and_the_file(tmp_path):
    path = _write_l1_nano(tmp_path / "l1nano.root", full=False)
    with pytest.raises(QTriggerError) as err:
        read_jets({"zb": [path]}, ["Jet_pt"], truth_branch=None, collection="L1EG")
    assert str(err.value) == (f"{path}: no L1EG collection (features.collection: L1EG; no L1EG_pt branch); "
                              "collections in the file: L1EtSum, L1Jet")
    with pytest.raises(QTriggerError, match="missing branches: .* lacks L1Jet_hwPt"):
        read_jets({"zb": [path]}, ["Jet_pt", "Jet_hwPt"], truth_branch=None, collection="L1Jet")


def test_collection_config():
    assert collection_branch("Jet_pt", "L1Jet") == "L1Jet_pt" and collection_branch("genWeight", "L1Jet") == "genWeight"
    assert "collection" not in FeaturesConfig().model_dump()  # the default dumps as before (trial hashes)
    assert FeaturesConfig(collection="L1Jet", names=["Jet_pt", "Jet_hwPt"]).model_dump()["collection"] == "L1Jet"
    assert FeaturesConfig(collection="L1Jet", names=["Jet_hwPt"]).format_of("Jet_hwPt").bits == 12
    with pytest.raises(ValidationError, match="not a NanoAOD collection name"):
        FeaturesConfig(collection="L1 Jet")
    with pytest.raises(ValidationError, match=r"name the per-jet inputs Jet_<field> \(Jet_pt\)"):
        FeaturesConfig(collection="L1Jet", names=["L1Jet_pt"])
    with pytest.raises(ValidationError, match="constituent level reads JetCand_"):
        FeaturesConfig(collection="L1Jet", level="constituent", names=["pt"])


def test_truth_branch_of_a_collection_without_truth(default_sample):
    raw = {"data": {"samples": [{"name": "s", "files": [default_sample["ttbar"]], "role": "signal"}]},
           "features": {"collection": "L1Jet", "names": ["Jet_pt"]}}
    assert RunConfig(**raw).truth_branch == "Jet_hadronFlavour"
    assert RunConfig(**raw, labels={"source": "sample"}).truth_branch is None
    assert RunConfig(data=raw["data"], labels={"source": "sample"}).truth_branch == "Jet_hadronFlavour"


def test_cli_refuses_a_missing_collection_in_one_line(default_sample, tmp_path, capsys):
    from qtrigger.cli import main

    raw = {"name": "l1jets", "output_dir": str(tmp_path / "runs"), "hls": {"output_dir": str(tmp_path / "hls")},
           "data": {"samples": [{"name": "tt", "files": [default_sample["ttbar"]], "role": "signal"},
                                {"name": "qcd", "files": [default_sample["qcd"]], "role": "background"}]},
           "features": {"collection": "L1Jet", "names": ["Jet_pt", "Jet_eta"]}, "labels": {"source": "sample"}}
    path = tmp_path / "l1jets.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [f"qtrigger: error: {default_sample['ttbar']}: no L1Jet collection (features.collection: L1Jet; no "
                   "L1Jet_pt branch); collections in the file: Jet, JetCand"]
