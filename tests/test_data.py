import numpy as np
import pytest
import uproot

from qtrigger.config import SEED_FEATURES
from qtrigger.data.reader import make_labels, read_jets, split_by_event
from qtrigger.errors import QTriggerError


def test_real_nanoaod_jets(real_nanoaod):
    table = read_jets({"real": [str(real_nanoaod)]}, SEED_FEATURES)
    assert table.n_events == 200
    assert table.n_jets == 234
    assert table.features.shape == (234, 10) and table.features.dtype == np.float32
    assert np.bincount(table.truth, minlength=6)[[0, 4, 5]].tolist() == [216, 14, 4]
    assert (table.column("Jet_pt") > 20).all() and (np.abs(table.column("Jet_eta")) < 2.5).all()
    # uint8 constituent counts and int32 flavour are read as any integer type
    assert table.column("Jet_nConstituents").min() >= 1
    labels = make_labels(table.truth, "binary", [5], None)
    assert labels.sum() == 4


def test_jets_keep_their_event(real_nanoaod):
    table = read_jets({"real": [str(real_nanoaod)]}, SEED_FEATURES, pt_min=0, abs_eta_max=99)
    events = uproot.open(real_nanoaod)["Events"]
    n_jet = events["nJet"].array(library="np")
    assert table.n_jets == n_jet.sum()
    assert np.array_equal(np.bincount(table.event, minlength=200), n_jet)
    first_pt = events["Jet_pt"].array()[n_jet > 0][:, 0].to_numpy()
    assert np.allclose(table.column("Jet_pt")[table.jet_index == 0], first_pt)


def test_split_is_by_event(real_nanoaod):
    table = read_jets({"real": [str(real_nanoaod)]}, SEED_FEATURES)
    split = split_by_event(table, 0.6, 0.2, seed=3)
    assert (split.train ^ split.val ^ split.test).all()
    for a, b in [(split.train, split.val), (split.train, split.test), (split.val, split.test)]:
        assert not set(table.event[a]) & set(table.event[b])
    again = split_by_event(table, 0.6, 0.2, seed=3)
    assert np.array_equal(split.event_part, again.event_part)


def test_multiclass_labels():
    truth = np.array([0, 4, 5, 5, 0])
    assert make_labels(truth, "multiclass", [], {"b": [5], "c": [4], "light": [0]}).tolist() == [2, 1, 0, 0, 2]
    with pytest.raises(QTriggerError, match=r"truth values \[4\] belong to no class"):
        make_labels(truth, "multiclass", [], {"b": [5], "light": [0]})


def test_missing_branch_names_branch_and_file(real_nanoaod):
    with pytest.raises(QTriggerError, match=r"missing branches: .*nanoAOD.*lacks Jet_fooBar, Jet_baz"):
        read_jets({"real": [str(real_nanoaod)]}, ["Jet_pt", "Jet_fooBar", "Jet_baz"])


def test_non_root_file(tmp_path):
    bogus = tmp_path / "notroot.root"
    bogus.write_text("this is not a ROOT file\n")
    with pytest.raises(QTriggerError, match=r"notroot.root: not a readable ROOT file"):
        read_jets({"x": [str(bogus)]}, SEED_FEATURES)


def test_root_file_without_events_tree(tmp_path):
    path = tmp_path / "other.root"
    with uproot.recreate(path) as f:
        f.mktree("Runs", {"x": "int32"}).extend({"x": np.arange(3, dtype=np.int32)})
    with pytest.raises(QTriggerError, match=r"other.root: no TTree 'Events' \(found: Runs\)"):
        read_jets({"x": [str(path)]}, SEED_FEATURES)


def test_selection_keeping_nothing(real_nanoaod):
    with pytest.raises(QTriggerError, match=r"selection pt > 5000 GeV .* keeps no jets"):
        read_jets({"real": [str(real_nanoaod)]}, SEED_FEATURES, pt_min=5000)


def test_nonfinite_dropped_or_rejected(tmp_path):
    import awkward as ak

    path = tmp_path / "nan.root"
    jets = {name: ak.Array([[30.0, 40.0], [50.0]]) for name in SEED_FEATURES}
    jets["Jet_eta"] = ak.Array([[0.1, 0.2], [0.3]])
    jets["Jet_mass"] = ak.Array([[np.nan, 4.0], [np.inf]])
    jets["Jet_hadronFlavour"] = ak.Array([[5, 0], [0]])
    with uproot.recreate(path) as f:
        f.mktree("Events", {k: v.type.content for k, v in jets.items()}).extend(jets)
    table = read_jets({"x": [str(path)]}, SEED_FEATURES)
    assert table.n_jets == 1 and table.dropped_nonfinite == 2 and table.n_events == 2
    with pytest.raises(QTriggerError, match=r"nan.root: 2 jets have NaN/inf features"):
        read_jets({"x": [str(path)]}, SEED_FEATURES, on_nonfinite="error")
