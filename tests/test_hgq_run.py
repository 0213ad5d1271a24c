"""``qtrigger run`` with ``quantization.method: hgq`` (issue 30): the per-jet MLP through every stage of a run.

One short run (2 epochs, [4], a slice of the default sample, no trigger study) is read by every test: its
C-simulation equals the HGQ2 integer reference on every test and stress row, and the finished run opens like a
QKeras one. The RTL stage on HGQ2 networks: ``tests/test_hgq.py::test_rtl_of_hgq_model_equals_reference``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import small_config_dict
from test_hgq import _hgq_installed
from test_pipeline import one_error_line, write_config

pytestmark = pytest.mark.slow

HGQ_RUN = {"quantization": {"method": "hgq", "hgq": {"beta": 1e-5, "overflow_mode": "WRAP"}}, "model": {"hidden": [4]},
           "pruning": {"enabled": False}, "trigger": {"enabled": False}, "hls": {"rtl": "off"}}


@pytest.fixture(scope="module")
def hgq_run(default_sample, tmp_path_factory):
    """The short HGQ2 run: (config, metrics dict, run folder)."""
    if not _hgq_installed():
        pytest.skip("hgq2 not installed: `make install` puts it in <venv>/hgq2")
    pytest.importorskip("da4ml")
    from qtrigger.config import validate_config
    from qtrigger.runs.pipeline import run

    tmp = tmp_path_factory.mktemp("hgq_run")
    raw = small_config_dict(default_sample, tmp, **HGQ_RUN)
    raw["name"] = "tiny_hgq"
    config = validate_config(raw)
    result = run(config, progress=False)
    return config, json.loads((result.directory / "metrics.json").read_text()), result.directory


def test_hgq_run_is_exact_in_csim(hgq_run):
    """0 mismatching rows of the C-simulation (test and stress rows); QAT and C-sim AUC are one number."""
    _, metrics, _ = hgq_run
    csim = metrics["csim"]
    assert csim["jets"] == metrics["data"]["n_jets"]["test"] > 500
    assert (csim["mismatched_jets"], csim["max_abs_diff_lsb"]) == (0, 0)
    assert csim["stress"]["jets"] == 4 * csim["jets"] and csim["stress"]["mismatched_jets"] == 0
    assert csim["qkeras_float32"]["mismatched_jets"] == 0 and csim["auc"] == metrics["qat"]["auc"]
    assert 0.0 < metrics["qat"]["auc"] < 1.0 and "rtl" not in metrics


def test_hgq_run_keeps_wrap_only_where_unreachable(hgq_run):
    """``overflow_mode: WRAP``: the hidden activations trained wrapping; the run saturated every quantizer whose
    wrap the reference could not exclude before saving (the C-simulation above is exact on rows far beyond the
    input range), and says so in ``metrics.json``; the network inputs saturate."""
    from qtrigger.models.hgq import load_hgq

    _, metrics, run_dir = hgq_run
    assert list(metrics["hgq_overflow"]) == ["output_iq"]
    settled = metrics["hgq_overflow"]["output_iq"]
    assert settled["elements"] == 4 and settled["saturated"] == int(settled["wrap_reachable"] > 0)
    model = load_hgq(run_dir / "model_qat.keras")
    assert model.get_layer("dense_0").iq.quantizer.overflow_mode == "SAT"
    assert model.get_layer("output").iq.quantizer.overflow_mode == ("SAT" if settled["saturated"] else "WRAP")


def test_hgq_run_reports_learned_widths(hgq_run):
    """The model section counts the quantized parameters and records EBOPs and the learned widths per layer."""
    _, metrics, run_dir = hgq_run
    model = metrics["model"]
    assert model["parameters"] == 10 * 4 + 4 + 4 + 1 and 0 < model["nonzero_parameters"] <= model["parameters"]
    learned = model["learned_widths"]
    assert learned["ebops"] > 0 and set(learned["layers"]) == {"dense_0", "output"}
    assert 0 < learned["layers"]["dense_0"]["weight_bits_mean"] <= 8
    assert [layer["name"] for layer in model["layers"]] == ["dense_0", "output"]
    assert (run_dir / "model_qat.keras").is_file() and not (run_dir / "model_qat.h5").exists()
    assert (run_dir / "model_float.h5").is_file() is False  # training.float_twin: false in the short run
    for name in ("report.md", "plots/roc.png", "plots/training.png"):
        assert (run_dir / name).is_file(), name


def test_finished_hgq_run_reopens_exactly(hgq_run):
    """``FinishedRun`` reads the saved ``.keras`` model; its reference gives the run's test scores again."""
    from qtrigger.emulate.sets import extract_any_network
    from qtrigger.runs.finished import FinishedRun

    config, metrics, run_dir = hgq_run
    finished = FinishedRun.load(run_dir)
    network = extract_any_network(finished.load_model("qat"))
    x = finished.test_jets()["inputs"]
    codes = network.forward_codes(x)
    assert str(network.output_type) == metrics["model"]["output_type"]
    np.testing.assert_array_equal(codes.astype(np.float64) * network.output_type.lsb,
                                  finished.load_model("qat").predict(x, verbose=0).astype(np.float64))


def test_cli_refuses_hgq_with_pruning_in_one_line(default_sample, tmp_path, monkeypatch, capsys):
    """Before any data is read: exit 2 and one ``qtrigger: error:`` line."""
    from qtrigger.cli import main

    raw = small_config_dict(default_sample, tmp_path, quantization={"method": "hgq"})
    raw["name"] = "hgq_pruned"
    path = write_config(tmp_path, raw)
    monkeypatch.setenv("QTRIGGER_NATIVE_LOGS", "1")
    capsys.readouterr()
    assert main(["run", str(path)]) == 2
    assert one_error_line(capsys.readouterr().err, "hgq learns its own sparsity")
    assert not (tmp_path / "runs").exists()


def test_hls_check_of_hgq_run_is_exact(hgq_run):
    """``qtrigger hls check RUN`` on an HGQ2 run: its C-simulation of the test jets, written to hls_check.json."""
    import qtrigger

    _, metrics, run_dir = hgq_run
    result = qtrigger.hls_check(run_dir)
    assert result.events == metrics["csim"]["jets"] and result.exact and result.stress_events == 400
    assert json.loads((run_dir / "hls_check.json").read_text())["mismatched_events"] == 0


@pytest.fixture(scope="module")
def hgq_event_run(tmp_path_factory):
    """A small event-level HGQ2 run (1 epoch, 2,000 events per sample, no RTL): (metrics dict, run folder)."""
    if not _hgq_installed():
        pytest.skip("hgq2 not installed: `make install` puts it in <venv>/hgq2")
    from test_event_network import small_run_config

    import qtrigger
    from qtrigger.config import validate_config

    tmp = tmp_path_factory.mktemp("hgq_event_run")
    raw = small_run_config(tmp, quantization={"method": "hgq"}, pruning={"enabled": False})
    raw["data"]["max_events"] = 2000
    raw["model"] = {"hidden": [8]}
    raw["training"]["epochs"] = 1
    raw["hls"]["rtl"] = "off"
    result = qtrigger.run(validate_config(raw), progress=False)
    return json.loads((result.directory / "metrics.json").read_text()), result.directory


def test_hgq_event_run_csim_and_accept_bit_exact(hgq_event_run):
    """The event network with HGQ2: C-simulation = reference on every test event and stress row, and the seed's
    accept bit in g++ (jet words → HT, Δφ, preselection, the hls4ml HGQ2 network, threshold) = Python."""
    metrics, run_dir = hgq_event_run
    csim, decision = metrics["csim"], metrics["trigger"]["decision_hls"]
    assert csim["jets"] == metrics["data"]["events_by_part"]["test"] > 300
    assert (csim["mismatched_jets"], csim["stress"]["mismatched_jets"]) == (0, 0) and csim["stress"]["jets"] >= 1200
    assert decision["csim_checked"] and decision["events"] > 20_000
    assert (decision["disagreements"], decision["accept_disagreements"], decision["score_disagreements"]) == (0, 0, 0)
    assert 0 < decision["random_accepted"] < decision["random_events"]  # the check can fail
    assert (run_dir / "model_qat.keras").is_file()


def test_finished_hgq_event_run_reaches_the_seed_rtl_as_hgq(hgq_event_run, monkeypatch):
    """``qtrigger hls rtl RUN`` of an event-level HGQ2 run hands the seed's RTL an ``HGQNetwork`` (inside its score
    head) read from ``model_qat.keras`` (it once read it as a QKeras network and stopped); the chain itself is built
    elsewhere."""
    import qtrigger.trigger.event_rtl as event_rtl
    from qtrigger.emulate.hgq import HGQNetwork
    from qtrigger.emulate.score import ScoredNetwork
    from qtrigger.runs.finished import FinishedRun

    _, run_dir = hgq_event_run
    seen = []
    monkeypatch.setattr(event_rtl, "event_chain_rtl", lambda network, *args, **kwargs: seen.append(network))
    run = FinishedRun.load(run_dir)
    event_rtl.event_chain_rtl_for_run(run, event_rtl.event_chain_inputs(run, max_events=10), run_dir / "rtl")
    assert len(seen) == 1 and isinstance(seen[0], ScoredNetwork) and isinstance(seen[0].network, HGQNetwork)
    assert seen[0].stages[0].kernel.shape[0] == np.load(run_dir / "test_jets.npz")["inputs"].shape[1]
