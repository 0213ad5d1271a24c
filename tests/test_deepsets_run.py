"""A DeepSets b tagger trained end to end on the shipped constituents (issue 21, item 5 first part).

Fast: the constituent-level config rules and the DeepSets hardware estimate. Slow: one small
constituent run on the shipped ttbar (3-D inputs from ``JetCand_*``, QAT, hls4ml C-simulation
against the exact integer reference on every test jet and on stress jets).
"""

from pathlib import Path

import numpy as np
import pytest

from qtrigger.config import ModelConfig, QuantizationConfig, load_config
from qtrigger.errors import QTriggerError

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "l1_bjet_deepsets.yaml"


@pytest.mark.parametrize("override, message", [
    ("model.form=mlp", "model.form deepsets and features.level constituent go together"),
    ("features.names=[pt,d0,dz,Jet_eta]", r"\[.Jet_eta.\] are not constituent fields"),
    ("quantization.layers=[{},{}]", r"2 entries, expected 4 \(one per Dense layer: model.phi \+ model.rho"),
])
def test_constituent_level_config_rules(override, message):
    load_config(CONFIG)  # the shipped config is valid
    with pytest.raises(QTriggerError, match=message):
        load_config(CONFIG, [override])


def test_constituent_trigger_needs_constituents_in_the_rate_sample(tmp_path):
    """The shipped rate sample is made with --no-candidates: refused before any work, naming the file."""
    from qtrigger.runs.preflight import check_run_inputs

    config = load_config(CONFIG, ["trigger.enabled=true", "trigger.rate_files=[data/rate/qcd_bins/qcd_pthat30to40.root]",
                                  f"output_dir={tmp_path / 'runs'}", f"hls.output_dir={tmp_path / 'hls'}"])
    with pytest.raises(QTriggerError, match=r"qcd_pthat30to40.root: no jet constituents \(JetCand_pt, .*\); a "
                                            r"constituent network needs them: generate the sample without --no-candidates"):
        check_run_inputs(config)


def test_deepsets_estimate_counts_phi_once_per_slot():
    """hls4ml's io_parallel pointwise convolution unrolls phi over the slots: the estimate's phi layers are
    cap copies of the same dense layer; the pooling is cap - 1 adders per channel; rho counts once."""
    from qtrigger.emulate.sets import extract_set_network
    from qtrigger.estimate.latency import estimate_latency_strategy
    from qtrigger.fixedpoint import FixedType
    from qtrigger.models.build import build_model

    cap, width = 16, 8
    cfg = ModelConfig(form="deepsets", phi=[width], rho=[4], constituents=cap)
    net = extract_set_network(build_model(3, 1, cfg, QuantizationConfig(), FixedType(8, 4, True), seed=1))
    est = estimate_latency_strategy(net, 5.0)
    phi, pool, rho, out = est.per_layer
    assert phi["instances"] == cap and pool["pooling"] == "mean" and "instances" not in rho
    single = est.per_layer[0]["lut"]
    assert phi["lut_total"] == cap * sum(single.values())
    assert pool["lut_total"] == width * (cap - 1) * net.pooling.accum_type.width
    model = phi["lut_total"] + pool["lut_total"] + rho["lut_total"] + out["lut_total"]
    assert est.calibration["lut_model"] == model and est.lut == round(model * est.calibration["lut_factor"]) < model
    assert est.latency_cycles == phi["cycles"] + pool["cycles"] + rho["cycles"] + out["cycles"]


@pytest.mark.slow
def test_constituent_run_is_exact_and_order_free(tmp_path):
    """A small constituent run with the trigger study on a pTHat-binned QCD rate sample that has
    constituents (generated here): exact C-simulation, accept bit equal to Python, order-free network."""
    from qtrigger import generate
    from qtrigger.emulate.sets import extract_set_network
    from qtrigger.models.build import load_model
    from qtrigger.runs.pipeline import run

    (tmp_path / "rate").mkdir()
    generate.generate_sample("qcd", [300, 200], 31, tmp_path / "rate" / "qcd", pthat_bins="30,60", workers=0,
                             progress=False, d0_resolution_um=20)
    overrides = ["data.max_events=1500", "training.epochs=5", "model.phi=[16]", "model.rho=[8]",
                 f"output_dir={tmp_path / 'runs'}", f"hls.output_dir={tmp_path / 'hls'}", "name=ds",
                 "trigger.enabled=true", f"trigger.rate_files=[{tmp_path / 'rate'}/*.root]",
                 "trigger.target_rate_hz=100000", "trigger.extra_rates_hz=[]"]
    result = run(load_config(CONFIG, overrides), progress=False)
    metrics = result.to_json()
    test = np.load(tmp_path / "runs" / "ds" / "test_jets.npz")
    x = test["inputs"]
    assert x.shape[1:] == (16, 7) and metrics["data"]["n_jets"]["test"] == len(x)
    filled = np.any(x != 0, axis=2)
    assert filled[:, 0].all() and not filled.all()  # every jet has a leading constituent, some jets padding
    csim = metrics["csim"]
    assert csim["mismatched_jets"] == 0 and csim["jets"] == len(x)
    assert csim["stress"]["mismatched_jets"] == 0 and csim["stress"]["jets"] == min(20000, 4 * len(x))
    assert metrics["qat"]["auc"] > 0.75 and "b_vs_light" in str(metrics["qat"]["auc_by_flavour"])
    assert metrics["hls"]["estimate"]["per_layer"][0]["instances"] == 16
    from qtrigger.inputs.codes import Preprocessor

    pre = Preprocessor.load(tmp_path / "runs" / "ds" / "preprocessing.json")  # φ's products at each field's word
    assert metrics["hls"]["estimate"]["per_layer"][0]["input_bits"] == sum(w.width for w in pre.word_types()) \
        < 7 * pre.input_type.width
    trigger = metrics["trigger"]
    assert trigger["decision_hls"]["disagreements"] == 0 and trigger["decision_hls"]["events"] > 1000
    assert set(trigger["at_rate"]["100"]["families"]) >= {"ht_ntag", "ht_tagged"}
    assert 0.5 < trigger["bdt"]["auc"] <= 1  # the GBDT reference reads the constituents flattened
    report = (tmp_path / "runs" / "ds" / "report.md").read_text()
    assert "| b vs light AUC |" in report and "(calibrated on yosys)" in report and (tmp_path / "runs" / "ds" / "plots" / "roc_flavour.png").is_file()
    # evaluate reads other files through their constituents, and names a file without them
    from qtrigger.runs.commands import evaluate_files

    run_dir = tmp_path / "runs" / "ds"
    other = evaluate_files(run_dir, data=[str(REPO / "data" / "default" / "ttbar.root")], csim=False, max_events=300)
    assert other["data"]["n_jets"] > 1000 and 0.75 < other["data"]["qat"]["auc"] <= 1
    with pytest.raises(QTriggerError, match=r"qcd.root: no jet constituents"):
        evaluate_files(run_dir, data=[str(REPO / "data" / "default" / "qcd.root")], csim=False)
    # the trained network does not see the constituents' order or where the padding sits
    network = extract_set_network(load_model(tmp_path / "runs" / "ds" / "model_qat.h5"))
    rng = np.random.default_rng(0)
    shuffled = np.take_along_axis(x, rng.permuted(np.tile(np.arange(16), (len(x), 1)), axis=1)[:, :, None], axis=1)
    assert np.array_equal(network.forward_codes(shuffled), network.forward_codes(x))
