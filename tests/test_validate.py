"""A small generated W+jets sample against the real CMS NanoAOD file (which holds W+jets)."""

import numpy as np
import pytest

from qtrigger.runs.validate import validate_sample

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
    from qtrigger.data.reader import read_jets

    table = read_jets({"ttbar": [default_sample["ttbar"]]}, SEED_FEATURES)
    assert 0.20 < np.mean(table.truth == 5) < 0.45


@pytest.mark.slow
def test_impact_parameters_of_the_shipped_ttbar(default_sample, real_nanoaod, tmp_path):
    """The data report of the shipped ttbar sample (sigma(d0) = 20 um): b-jet tracks are displaced, light ones
    are not; the real NanoAOD file (no JetCand_*) has no such section."""
    result = validate_sample([default_sample["ttbar"]], [str(real_nanoaod)], tmp_path / "val")
    ip = result["generated"]["impact_parameters"]
    assert ip["b"]["tracks"] > 10_000 and ip["light"]["tracks"] > 10_000
    assert ip["b"]["median_abs_d0_um"] > 2 * ip["light"]["median_abs_d0_um"]
    assert ip["b"]["fraction_abs_d0_above_100um"] > ip["c"]["fraction_abs_d0_above_100um"] > \
        ip["light"]["fraction_abs_d0_above_100um"]
    assert (tmp_path / "val" / "impact_parameters.png").is_file()
    assert "## Track impact parameters" in (tmp_path / "val" / "validation.md").read_text()
    assert "impact_parameters" not in validate_sample([str(real_nanoaod)], [str(real_nanoaod)])["generated"]
