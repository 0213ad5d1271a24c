"""End to end on the shipped generated sample: train, convert, C-simulate, compare bit for bit."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import REPO, small_config_dict
from qtrigger.runs.evaluation import evaluate

pytestmark = pytest.mark.slow


def test_csim_bit_exact_on_every_test_jet(runs):
    """The run's own C-simulation; the 4- and 8-bit settings: test_exactness.py::test_zero_differing_events."""
    config, metrics, _ = runs["default_6bit"]
    csim = metrics["csim"]
    assert csim["jets"] == metrics["data"]["n_jets"]["test"] > 500
    assert csim["mismatched_jets"] == 0 and csim["max_abs_diff_lsb"] == 0
    # ties and out-of-range inputs are where truncation or a wrong overflow mode would show
    assert csim["stress"]["jets"] >= 1000 and csim["stress"]["mismatched_jets"] == 0
    assert csim["auc"] == metrics["qat"]["auc"]


def test_flavour_aucs_of_a_b_tagger(runs):
    """labels.branch Jet_hadronFlavour: b vs light / b vs c AUCs on all test jets and on the ttbar ones."""
    _, metrics, _ = runs["default_6bit"]
    for section in ("qat", "float"):
        by = metrics[section]["auc_by_flavour"]
        assert set(by) == {"test_jets", "ttbar_test_jets"}
        assert 0.6 < by["ttbar_test_jets"]["b_vs_light"] < 1.0 and 0.5 < by["test_jets"]["b_vs_c"] < 1.0


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
    assert 0.5 < saved["qat"]["val_auc"] <= 1.0 and saved["qat"]["val_auc"] != saved["qat"]["auc"]  # validation rows
    for name in ("config.resolved.yaml", "provenance.json", "preprocessing.json", "model_qat.h5", "report.md",
                 "plots/roc.png", "plots/scores.png"):
        assert (run_dir / name).is_file(), name
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert provenance["versions"]["hls4ml"].startswith("1.3") and provenance["threads"]["tensorflow_intra_op"] == config.training.threads == 1
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


def one_error_line(stderr: str, message: str) -> bool:
    """Exactly one error line, containing ``message`` (progress bars may precede it)."""
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    return len(errors) == 1 and errors[0].startswith("qtrigger: error: ") and message in errors[0]


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
    assert one_error_line(result.stderr, "already exists; pass --overwrite")


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
    assert one_error_line(result.stderr, message)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert not (tmp_path / "hls").exists() or not any((tmp_path / "hls").iterdir())


def test_cli_non_root_input(tmp_path):
    bogus = tmp_path / "fake.root"
    bogus.write_text("not root")
    raw = {"name": "bad", "output_dir": str(tmp_path / "runs"), "data": {"samples": [{"name": "x", "files": [str(bogus)]}]}}
    result = cli("run", str(write_config(tmp_path, raw)))
    assert result.returncode == 2 and one_error_line(result.stderr, "fake.root: not a readable ROOT file")
    assert not (tmp_path / "runs").exists()


def test_hls_check_cli_exact_and_diagnosis(runs):
    config, metrics, tmp = runs["default_6bit"]
    run_dir = tmp / "runs" / config.name
    ok = cli("hls", "check", str(run_dir))
    assert ok.returncode == 0, ok.stderr
    assert "BIT-EXACT" in ok.stdout and "differing in any output bit: 0" in ok.stdout
    exact_accum = metrics["model"]["layers"][0]["accum_type"]  # e.g. ap_fixed<25,11>
    width, integer = (int(v) for v in exact_accum.split("<")[1].rstrip(">").split(",")[:2])
    bad = cli("hls", "check", str(run_dir), "--override", f"dense_0.accum=ap_fixed<{width - 4},{integer - 4}>",
              "--override", f"dense_0.result=ap_fixed<{width - 4},{integer - 4}>")
    assert bad.returncode == 1
    assert "first differing layer: dense_0" in bad.stdout and "overflow/saturation" in bad.stdout


def test_compare_float_qat_ptq_csim(runs):
    from qtrigger.runs.compare import compare_run

    config, metrics, tmp = runs["default_6bit"]
    run_dir = tmp / "runs" / config.name
    result = compare_run(run_dir, widths=[8, 14])
    names = [row["model"] for row in result["rows"]]
    assert names[:3] == ["float twin", "QAT (QKeras, exact)", "C-simulation of QAT"]
    assert any("ap_fixed<16,6>" in n for n in names) and any("best PTQ" in n for n in names)
    qat, csim = result["rows"][1], result["rows"][2]
    assert csim["mismatched_events"] == 0 and csim["auc"] == qat["auc"] == metrics["qat"]["auc"]
    assert [r["width"] for r in result["ptq_sweep"]] == [8, 14]
    assert all(0.0 <= r["auc"] <= 1.0 for r in result["ptq_sweep"])
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["compare"]["rows"][2]["mismatched_events"] == 0
    assert "Float vs QAT vs PTQ vs C-simulation" in (run_dir / "report.md").read_text()


def test_trigger_at_target_rate(runs):
    config, metrics, tmp = runs["default_6bit"]
    t = metrics["trigger"]
    assert t["enabled"] and t["method"] == "cross_section" and t["target_rate_hz"] == 100e3
    assert isinstance(t["threshold_code"], int)
    assert t["threshold"] == t["threshold_code"] * _lsb(metrics["model"]["output_type"])
    # lowest code meeting the target on the calibration half; quoted on the held-out half
    assert t["calibration"]["rate_hz"] <= 100e3 < t["calibration"]["rate_below_hz"] and t["n_eff_fired"] > 0
    assert 0.0 <= t["signal_efficiency"] <= 1.0 and t["signal_efficiency_err"] > 0
    assert t["baselines"]["single_jet"]["calibration"]["rate_hz"] <= 100e3 and t["cut_baseline"]["pt_threshold"] >= 20
    assert 0.5 < t["bdt"]["auc"] <= 1.0
    assert t["decision_hls"]["csim_checked"] and t["decision_hls"]["disagreements"] == 0
    run_dir = tmp / "runs" / config.name
    for plot in ("rate_vs_efficiency", "efficiency_vs_pt", "efficiency_vs_eta", "event_efficiency_vs_leading_pt"):
        assert (run_dir / "plots" / f"{plot}.png").is_file()
    report = (run_dir / "report.md").read_text()
    assert "whole Run-2 L1 output" in report and "| Output rate |" in report


def _lsb(type_text: str) -> float:
    from qtrigger.fixedpoint import parse_fixed

    return parse_fixed(type_text).lsb


def test_evaluate_trigger_on_other_files(runs, default_sample, tmp_path):
    from qtrigger.errors import QTriggerError
    from qtrigger.runs.evaluation import evaluate_trigger

    config, metrics, tmp = runs["default_6bit"]
    run_dir = tmp / "runs" / config.name
    result = evaluate_trigger(run_dir, [default_sample["ttbar"]], [default_sample["qcd"]], output_dir=tmp_path / "ev")
    assert result["enabled"] and result["calibration"]["rate_hz"] <= 100e3 < result["calibration"]["rate_below_hz"]
    assert result["signal_test_events"] == 15000  # every event of the file, no split
    assert (tmp_path / "ev" / "trigger.json").is_file() and (tmp_path / "ev" / "plots" / "rate_vs_efficiency.png").is_file()
    with pytest.raises(QTriggerError, match="zero-bias rate needs a minimum-bias sample"):
        evaluate_trigger(run_dir, [default_sample["ttbar"]], [default_sample["qcd"]], "zero_bias", tmp_path / "zb")
