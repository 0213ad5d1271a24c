"""Issue 29, part 4: pileup mitigation as the L1 trigger does it (qtrigger.generate.mitigation), judged on
synthetic inputs and on paired events (the same hard events at mu = 0 and mu > 0)."""

import numpy as np
import pytest

from qtrigger.errors import QTriggerError
from qtrigger.generate.events import K_BHAD, K_CHH, K_NEEM
from qtrigger.generate.mitigation import (
    CURL_PT_GEV,
    JET_AREA,
    NEUTRAL_ET_MIN_GEV,
    RHO_CELLS,
    RHO_ETA_MAX,
    grid_rho,
    l1_vertex,
    mitigate,
    resolve_mitigation,
)
from qtrigger.generate.tracks import Resolution


def _inputs(pt, eta, phi, charge, z0, evt, kind=None):
    pt, eta, phi = (np.asarray(v, dtype=np.float64) for v in (pt, eta, phi))
    charge = np.asarray(charge, dtype=np.int8)
    kind = np.where(charge != 0, K_CHH, K_NEEM).astype(np.int8) if kind is None else np.asarray(kind, np.int8)
    evt = np.asarray(evt, dtype=np.int64)
    out = {"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "charge": charge,
           "z0": np.asarray(z0, dtype=np.float64), "evt": evt, "kind": kind, "pt_true": pt}
    out["E"] = out["E_true"] = pt * np.cosh(eta)
    counts = np.bincount(evt)
    out["offsets"] = np.concatenate([[0], np.cumsum(counts)])
    return out


def test_auto_scheme_follows_mu():
    assert [resolve_mitigation("auto", mu) for mu in (0, 60, 200)] == ["none", "run3", "phase2"]
    assert resolve_mitigation("phase2", 60) == "phase2"


def test_l1_vertex_finds_the_hard_vertex_among_pileup_tracks():
    rng = np.random.default_rng(1)
    n_pu = 400  # soft pileup tracks spread over the beam spot, in two events
    z_hard = np.array([1.23, -4.5])
    pt = np.r_[rng.uniform(2, 4, n_pu), np.full(8, 30.0)]
    evt = np.r_[rng.integers(0, 2, n_pu), [0] * 4 + [1] * 4]
    z0 = np.r_[rng.normal(0, 3.5, n_pu), z_hard[evt[n_pu:]] + rng.normal(0, 0.02, 8)]
    order = np.argsort(evt, kind="stable")
    inputs = _inputs(pt[order], np.zeros(len(pt)), rng.uniform(-3, 3, len(pt)), np.ones(len(pt)), z0[order],
                     evt[order])
    found = l1_vertex(inputs, 2)
    assert np.all(np.abs(found - z_hard) < 0.05), found
    no_tracks = _inputs([5.0], [0.0], [0.0], [0], [0.0], [0])
    assert np.isnan(l1_vertex(no_tracks, 1)[0])


def test_grid_rho_is_the_median_density():
    n_eta, n_phi = RHO_CELLS
    eta = (np.arange(n_eta) + 0.5) / n_eta * 2 * RHO_ETA_MAX - RHO_ETA_MAX
    phi = (np.arange(n_phi) + 0.5) / n_phi * 2 * np.pi - np.pi
    e, p = (a.ravel() for a in np.meshgrid(eta, phi))
    pt = np.full(len(e), 2.0)
    pt[:5] = 500.0  # a hard jet in five cells does not move the median
    inputs = _inputs(pt, e, p, np.zeros(len(e)), np.zeros(len(e)), np.zeros(len(e)))
    cell_area = (2 * RHO_ETA_MAX / n_eta) * (2 * np.pi / n_phi)
    rho = grid_rho(inputs, pt, np.ones(len(e), bool), 1)
    assert rho[0] == pytest.approx(2.0 / cell_area)


def test_run3_thresholds_and_phase2_vertex_association():
    # one event: a hard charged track at z = 0 (the vertex), a charged pileup track at z = 5 cm, a curling
    # charged particle, a soft and a hard neutral, a ghost
    pt = [40.0, 10.0, 0.5 * CURL_PT_GEV, 0.5 * NEUTRAL_ET_MIN_GEV, 8.0, 1e-15]
    charge = [1, -1, 1, 0, 0, 0]
    kind = [K_CHH, K_CHH, K_CHH, K_NEEM, K_NEEM, K_BHAD]
    inputs = _inputs(pt, [0.1] * 6, [0.0, 1.0, 2.0, 3.0, -1.0, 0.0], charge, [0.0, 5.0, 0.0, 0, 0, 0], [0] * 6, kind)
    run3 = mitigate(inputs, 1, "run3", Resolution())
    assert np.allclose(np.sort(run3.inputs["pt_true"]), np.sort([40.0, 10.0, 8.0, 1e-15]))
    phase2 = mitigate(inputs, 1, "phase2", Resolution())
    assert np.allclose(np.sort(phase2.inputs["pt_true"]), np.sort([40.0, 8.0, 1e-15]))
    assert abs(phase2.l1_vertex_z[0]) < 0.1
    assert np.array_equal(phase2.inputs["offsets"], [0, 3])
    assert run3.pt_offset[0] == pytest.approx(run3.rho[0] * JET_AREA)


def test_mitigation_refused_at_zero_pileup_and_unknown(tmp_path):
    from qtrigger.generate import generate_sample

    with pytest.raises(QTriggerError, match="--mitigation run3 needs pileup"):
        generate_sample("ttbar", 5, 1, tmp_path / "a.root", mitigation="run3", workers=0, progress=False)
    with pytest.raises(QTriggerError, match="--mitigation 'puppi' is unknown"):
        generate_sample("ttbar", 5, 1, tmp_path / "a.root", pileup=5, mitigation="puppi", workers=0, progress=False)
    assert not (tmp_path / "a.root").exists()


# --------------------------------------------------------------------------- paired events


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    """The same 40 ttbar events at mu = 0 (jets down to 5 GeV) and at mu = 20 with each scheme (from a library
    of 300 interactions: one minimum-bias Pythia for all three)."""
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    from qtrigger.generate import generate_library, generate_sample

    folder = tmp_path_factory.mktemp("paired")
    generate_library(300, 7, folder / "lib", chunk_size=300, workers=0, progress=False)
    kw = dict(workers=0, progress=False, candidates=False)
    generate_sample("ttbar", 40, 17, folder / "pu0.root", jet_pt_min=5, **kw)
    for scheme in ("run3", "phase2"):
        generate_sample("ttbar", 40, 17, folder / f"pu20_{scheme}.root", pileup=20, mitigation=scheme,
                        pileup_library=folder / "lib", **kw)
    return folder


@pytest.mark.slow
def test_mitigated_jets_match_the_zero_pileup_jets(paired):
    from qtrigger.generate.validation import paired_mitigation_summary

    run3 = paired_mitigation_summary(paired / "pu0.root", paired / "pu20_run3.root")
    phase2 = paired_mitigation_summary(paired / "pu0.root", paired / "pu20_phase2.root")
    for summary in (run3, phase2):
        assert abs(summary["ht_ratio"]["median"] - 1) < 0.15, summary
        assert summary["unmatched_jets"]["fraction"] < 0.15, summary
    assert phase2["l1_vertex_within_1mm"]["fraction"] >= 0.9


@pytest.mark.slow
def test_pileup_files_record_the_scheme_and_the_raw_jets(paired):
    import awkward as ak
    import uproot

    codes, seeds = {}, {}
    for scheme in ("run3", "phase2"):
        with uproot.open(paired / f"pu20_{scheme}.root") as handle:
            codes[scheme] = int(handle["Runs"]["pileupMitigation"].array(library="np")[0])
            seeds[scheme] = float(handle["Runs"]["jetSeedGeV"].array(library="np")[0])
            events = handle["Events"].arrays(["Jet_pt", "RawJet_ht", "RawJet_n", "Pileup_rho"], library="ak")
        assert (ak.to_numpy(events["Pileup_rho"]) > 0).mean() > 0.5
        # the raw jets (no subtraction, no seed) are never fewer than the mitigated ones
        assert (ak.to_numpy(events["RawJet_n"]) >= ak.to_numpy(ak.num(events["Jet_pt"]))).all()
    assert codes == {"run3": 1, "phase2": 2}
    assert seeds == {"run3": 5.0, "phase2": 4.0}
