"""The anomaly-detection signals of `qtrigger data generate` (issue 32): each process is what its name says."""

from __future__ import annotations

import pytest

from qtrigger.generate.events import PROCESSES, SIGNAL_SETTINGS, make_pythia, process_settings

pythia8mc = pytest.importorskip("pythia8mc")


def _decays(pythia, mother_id: int) -> list[list[int]]:
    """The daughters' ids of every decay of ``mother_id`` in the hard-process record (its last copy)."""
    event, out = pythia.process, []
    for i in range(event.size()):
        p = event[i]
        if p.id() == mother_id and all(event[d].id() != mother_id for d in p.daughterList()):
            out.append(sorted(event[d].id() for d in p.daughterList()))
    return out


@pytest.mark.parametrize("process, mother, daughters, count", [
    ("h_aa_4b", 35, [36, 36], 1), ("h_aa_4b", 36, [-5, 5], 2),
    ("zprime_ttbar", 32, [-6, 6], 1),
    ("vbf_h_zz_4nu", 25, [23, 23], 1),
])
def test_signal_processes_decay_as_named(process, mother, daughters, count):
    assert process in PROCESSES and process in SIGNAL_SETTINGS
    pythia = make_pythia(pythia8mc, process_settings(process) + ["PartonLevel:all = off", "HadronLevel:all = off"], 5)
    for _ in range(3):
        assert pythia.next()
        assert _decays(pythia, mother) == [daughters] * count


def test_invisible_higgs_decays_to_neutrinos_only():
    pythia = make_pythia(pythia8mc, process_settings("vbf_h_zz_4nu") + ["PartonLevel:all = off"], 6)
    for _ in range(3):
        assert pythia.next()
        for products in _decays(pythia, 23):
            assert {abs(i) for i in products} <= {12, 14, 16} and len(products) == 2
