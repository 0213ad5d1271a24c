"""A small generated W+jets sample against the real CMS NanoAOD file (which holds W+jets)."""

import numpy as np
import pytest

from qtrigger.validate import validate_sample

pytest.importorskip("pythia8mc", reason="generator extra not installed (pip install '.[generate]')")


@pytest.fixture(scope="module")
def wjets(tmp_path_factory):
    from qtrigger.generate import generate_sample

    path = tmp_path_factory.mktemp("wjets") / "wjets.root"
    generate_sample("wjets", 300, seed=5, output=str(path), pthat_min=20.0, progress=False)
    return str(path)


@pytest.mark.slow
def test_generated_vs_real_nanoaod(wjets, real_nanoaod, tmp_path):
    result = validate_sample([wjets], [str(real_nanoaod)], tmp_path / "val")
    gen, ref = result["generated"], result["reference"]
    assert ref["jets"] == 234 and gen["jets"] > 50  # the same reader read both schemas
    assert set(gen["features"]) == set(ref["features"])
    assert gen["fractions_in_unit_interval"] and gen["fraction_sum_max_deviation"] < 1e-5
    assert 0.99 < ref["fraction_sum_range"][0] and ref["fraction_sum_range"][1] < 1.01  # truncated floats in NanoAOD
    assert set(gen["hadron_flavours"]) <= {0, 4, 5} and set(ref["hadron_flavours"]) <= {0, 4, 5}
    for name in ("validation.png", "validation.md", "validation.json"):
        assert (tmp_path / "val" / name).is_file()
    assert "| Jet_pt |" in (tmp_path / "val" / "validation.md").read_text()


def test_ttbar_b_fraction_in_default_sample(default_sample):
    from qtrigger.config import SEED_FEATURES
    from qtrigger.data import read_jets

    table = read_jets({"ttbar": [default_sample["ttbar"]]}, SEED_FEATURES)
    assert 0.20 < np.mean(table.truth == 5) < 0.45
