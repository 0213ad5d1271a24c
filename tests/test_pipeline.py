"""End to end on the shipped generated sample: train, convert, C-simulate, compare bit for bit."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from qtrigger.config import validate_config
from qtrigger.pipeline import evaluate, run

from conftest import REPO, small_config_dict

pytestmark = pytest.mark.slow

QUANTIZER_SETTINGS = {
    "default_6bit": {},
    "w4_a4": {"weight_bits": 4, "bias_bits": 4, "activation_bits": 4, "activation_integer": 1},
    "w8_a8": {"weight_bits": 8, "weight_integer": 1, "bias_bits": 8, "bias_integer": 2, "activation_bits": 8, "activation_integer": 3},
}


@pytest.fixture(scope="module")
def runs(default_sample, tmp_path_factory):
    """One short run per quantizer setting, shared by the tests below."""
    results = {}
    for name, quant in QUANTIZER_SETTINGS.items():
        tmp = tmp_path_factory.mktemp(name)
        raw = small_config_dict(default_sample, tmp, quantization=quant)
        raw["name"] = name
        config = validate_config(raw)
        results[name] = (config, run(config, progress=False), tmp)
    return results


@pytest.mark.parametrize("setting", list(QUANTIZER_SETTINGS))
def test_csim_bit_exact_on_every_test_jet(runs, setting):
    config, metrics, _ = runs[setting]
    csim = metrics["csim"]
    assert csim["jets"] == metrics["data"]["n_jets"]["test"] > 500
    assert csim["mismatched_jets"] == 0 and csim["max_abs_diff_lsb"] == 0
    # ties and out-of-range inputs are where truncation or a wrong overflow mode would show
    assert csim["stress"]["jets"] >= 1000 and csim["stress"]["mismatched_jets"] == 0
    assert csim["auc"] == metrics["qat"]["auc"]


def test_run_directory_contents(runs):
    config, metrics, tmp = runs["default_6bit"]
    run_dir = tmp / "runs" / config.name
    saved = json.loads((run_dir / "metrics.json").read_text())
    for key in ("run", "data.n_jets.train", "data.n_jets.val", "data.n_jets.test", "data.signal_fraction",
                "qat.auc", "qat.threshold", "qat.signal_efficiency", "qat.background_rejection", "csim.jets",
                "csim.mismatched_jets", "csim.max_abs_diff_lsb", "csim.auc", "hls.project_dir",
                "model.parameters", "model.nonzero_parameters"):
        node = saved
        for part in key.split("."):
            node = node[part]
        assert node is not None, key
    assert saved["model"]["parameters"] == 10 * 32 + 32 + 32 * 16 + 16 + 16 + 1
    assert 0.5 < saved["qat"]["auc"] <= 1.0
    for name in ("config.resolved.yaml", "provenance.json", "preprocessing.json", "model_qat.h5", "report.md",
                 "plots/roc.png", "plots/scores.png"):
        assert (run_dir / name).is_file(), name
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert provenance["versions"]["hls4ml"].startswith("1.3") and provenance["threads"]["tensorflow_intra_op"] == 2
    project = tmp / "hls" / config.name
    assert (project / "build_prj.tcl").is_file() and (project / "firmware" / f"{metrics['hls']['project_name']}.cpp").is_file()
    assert np.load(project / "tb_input_features.npy").shape == (config.hls.testbench_jets, 10)
    assert not list((tmp / "runs").glob(".*partial*"))


def test_real_nanoaod_through_csim(runs, real_nanoaod):
    config, _, tmp = runs["default_6bit"]
    result = evaluate(tmp / "runs" / config.name, [str(real_nanoaod)], csim=True)
    assert result["n_jets"] == 234 and result["n_signal_jets"] == 4
    assert result["csim"]["jets"] == 234 and result["csim"]["mismatched_jets"] == 0
    assert result["qat"]["auc"] is None and "too few jets for an AUC: 4 signal" in result["qat"]["auc_note"]


def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "qtrigger.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def write_config(tmp_path, raw):
    path = tmp_path / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_cli_refuses_existing_output_and_leaves_nothing(runs, tmp_path):
    config, _, tmp = runs["default_6bit"]
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    result = cli("run", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "already exists; pass --overwrite" in result.stderr


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda raw: raw["training"].update(epochz=1), "key training.epochz: unknown key"),
        (lambda raw: raw["data"]["selection"].update(pt_min=1e5), "keeps no jets"),
        (lambda raw: raw["features"].update(names=["Jet_pt", "Jet_notThere"], formats={"Jet_notThere": {"lsb": 1, "bits": 8}}),
         "lacks Jet_notThere"),
    ],
)
def test_cli_bad_input_one_line_no_partial_run(default_sample, tmp_path, mutate, message):
    raw = small_config_dict(default_sample, tmp_path)
    raw["data"]["selection"] = {}
    raw["features"] = {}
    mutate(raw)
    result = cli("run", str(write_config(tmp_path, raw)))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert not (tmp_path / "hls").exists() or not any((tmp_path / "hls").iterdir())


def test_cli_non_root_input(tmp_path):
    bogus = tmp_path / "fake.root"
    bogus.write_text("not root")
    raw = {"name": "bad", "output_dir": str(tmp_path / "runs"), "data": {"samples": [{"name": "x", "files": [str(bogus)]}]}}
    result = cli("run", str(write_config(tmp_path, raw)))
    assert result.returncode == 2 and "fake.root: not a readable ROOT file" in result.stderr
    assert not (tmp_path / "runs").exists()
