"""The constituent reader: JetCand_* → fixed-size, pT-ordered, zero-padded codes per selected jet."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qtrigger.data.reader import read_jets
from qtrigger.errors import QTriggerError
from qtrigger.inputs.constituent import CONSTITUENT_FORMATS, read_constituents, wrap_angle


def write_events(path, jets: list[list[tuple]], cands: list[list[tuple]], pv_z: list[float], with_cands=True):
    """jets: per event (pt, eta, phi, flavour); cands: per event (pt, eta, phi, charge, class, d0, z0, jetIdx)."""
    import awkward as ak
    import uproot

    def columns(prefix, rows, names, dtypes):
        return {f"{prefix}_{n}": ak.values_astype(ak.Array([[r[i] for r in ev] for ev in rows]), d)
                for i, (n, d) in enumerate(zip(names, dtypes))}

    branches = columns("Jet", jets, ["pt", "eta", "phi", "hadronFlavour"], ["float32"] * 3 + ["int32"])
    branches["PV_z"] = np.array(pv_z, np.float32)
    if with_cands:
        branches.update(columns("JetCand", cands, ["pt", "eta", "phi", "charge", "class", "d0", "z0", "jetIdx"],
                                ["float32"] * 3 + ["int8", "uint8", "float32", "float32", "int16"]))
    with uproot.recreate(path) as f:
        f.mktree("Events", {k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in branches.items()})
        f["Events"].extend(branches)


@pytest.fixture()
def sample(tmp_path):
    lead = [(40.0 - k * 2.0, 0.05, -3.10, 1, 0, 0.01 * k, 0.5, 0) for k in range(17)]  # 17 charged: one beyond the cap
    lead.insert(3, (34.0, 0.02, 3.12, 0, 2, 0.0, 0.0, 0))  # a photon tying the 4th charged pT (34): file order decides
    jets = [[(120.0, 0.0, 3.10, 5), (30.0, 1.0, 0.0, 0)], [(10.0, 0.0, 0.0, 0), (60.0, -1.0, 1.0, 4)]]
    cands = [lead + [(5.0, 1.1, 0.1, -1, 3, -0.02, 1.0, 1)],
             [(3.0, 0.0, 0.0, 1, 0, 0.0, 0.0, 0),  # jet 0 of event 1 fails pT > 20: not in the table
              (7.0, -1.1, 1.2, 0, 1, 0.0, 0.0, 1), (7.0, -0.9, 0.9, 1, 4, 0.002, -2.0, 1)]]
    path = str(tmp_path / "cands.root")
    write_events(path, jets, cands, [0.25, -1.5])
    return path


def test_codes_order_padding_wrap_and_neutral_words(sample):
    table = read_jets({"s": [sample]}, ["Jet_pt", "Jet_eta"])
    assert table.n_jets == 3
    c = read_constituents(table, cap=16)
    assert c.codes.shape == (3, 16, len(CONSTITUENT_FORMATS)) and c.names[0] == "pt"
    assert c.mask.sum(axis=1).tolist() == [16, 1, 2] and c.dropped == 2  # 18 on the leading jet: 2 beyond the cap
    f = {n: k for k, n in enumerate(c.names)}
    pt = c.codes[0, :, f["pt"]]
    assert np.all(np.diff(pt) <= 0) and pt[0] == 160  # 40 GeV / 0.25
    # the photon ties the charged candidate at 34 GeV; it came first in the file, so it takes slot 3
    assert c.codes[0, 3, f["class"]] == 2 and c.codes[0, 4, f["class"]] == 0 and pt[3] == pt[4] == 136
    assert c.codes[0, 3, f["d0"]] == 0 and c.codes[0, 3, f["dz"]] == 0  # neutral: no impact parameters
    # dphi wraps: -3.10 - 3.10 = -6.2 -> +0.0832 rad
    assert c.codes[0, 0, f["dphi"]] == round(wrap_angle(-6.2) / CONSTITUENT_FORMATS["dphi"].lsb)
    assert c.codes[0, 0, f["dz"]] == round((0.5 - 0.25) / 0.01)  # z0 - PV_z of its event
    assert c.codes[0, 1, f["d0"]] == round(0.01 / 5e-4)
    # the second event's selected jet is its jet 1; the neutral hadron has no d0/dz even though z0 was stored
    second = 2  # rows follow the file: event 0's two jets, then event 1's jet 1
    assert table.jet_index[second] == 1
    assert c.codes[second, 0, f["pt"]] == c.codes[second, 1, f["pt"]] == 28
    assert c.codes[second, 0, f["class"]] == 1 and c.codes[second, 0, f["dz"]] == 0
    assert c.codes[second, 1, f["dz"]] == round((-2.0 + 1.5) / 0.01)
    assert not c.codes[~c.mask].any()  # zero padding


def test_values_round_trip_and_cap(sample):
    table = read_jets({"s": [sample]}, ["Jet_pt", "Jet_eta"])
    c = read_constituents(table, cap=2)
    assert c.mask.sum() == 2 + 1 + 2 and c.dropped == 16 + 0 + 0
    v = c.values()
    assert v[0, 0, 0] == pytest.approx(40.0) and v[0, 1, 0] == pytest.approx(38.0)
    with pytest.raises(QTriggerError, match="cap 0"):
        read_constituents(table, cap=0)


def test_file_without_candidates_is_one_line(tmp_path):
    path = str(tmp_path / "old.root")
    write_events(path, [[(50.0, 0.0, 0.0, 0)]], [], [0.0], with_cands=False)
    table = read_jets({"s": [path]}, ["Jet_pt"])
    with pytest.raises(QTriggerError) as err:
        read_constituents(table)
    assert str(err.value).startswith(f"{path}: no jet constituents (JetCand_pt") and "\n" not in str(err.value)
    assert math.isclose(wrap_angle(math.pi), -math.pi)
