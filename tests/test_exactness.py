"""Bit-exact C-simulation for many QKeras models, and diagnosis of a deliberately broken one."""

import numpy as np
import pytest

from conftest import small_config_dict
from qtrigger.config import HLSConfig, ModelConfig, PruningConfig, QuantizationConfig, TrainingConfig, validate_config
from qtrigger.emulate.network import extract_network
from qtrigger.errors import QTriggerError
from qtrigger.firmware.check import hls_check, precision_profile
from qtrigger.models.build import build_model
from qtrigger.models.train import train
from qtrigger.runs.pipeline import prepare_data

pytestmark = pytest.mark.slow

Q = QuantizationConfig
MODELS = {
    "w6_a6i2_pruned50": (Q(), [32, 16], 0.5),
    "w4_a4i1": (Q(weight_bits=4, bias_bits=4, activation_bits=4, activation_integer=1), [32, 16], 0.0),
    "w8i1_a8i3": (Q(weight_bits=8, weight_integer=1, bias_bits=8, bias_integer=2, activation_bits=8, activation_integer=3), [32, 16], 0.0),
    "w2_a3i1": (Q(weight_bits=2, bias_bits=4, activation_bits=3, activation_integer=1), [16, 8], 0.0),
    "w16i6_a16i6_wide_accumulators": (Q(weight_bits=16, weight_integer=6, bias_bits=16, bias_integer=6, activation_bits=16, activation_integer=6), [32, 16], 0.0),
    "relu_without_integer_bits": (Q(activation_bits=6, activation_integer=0), [32, 16], 0.0),
    "deep_64_32_32_pruned75": (Q(), [64, 32, 32], 0.75),
    "single_hidden_8": (Q(weight_bits=5, bias_bits=5, activation_bits=5, activation_integer=2), [8], 0.0),
}


@pytest.fixture(scope="module")
def prepared(default_sample, tmp_path_factory):
    raw = small_config_dict(default_sample, tmp_path_factory.mktemp("exact"))
    return prepare_data(validate_config(raw))


def train_briefly(prepared, quant, hidden, sparsity, n_out=1, labels=None, layer_sparsity=None):
    x, split = prepared.inputs, prepared.split
    y = prepared.labels if labels is None else labels
    model = build_model(x.shape[1], n_out, ModelConfig(hidden=hidden), quant, prepared.preprocessor.input_type, True, seed=3)
    pruning = PruningConfig(enabled=sparsity > 0 or bool(layer_sparsity), target_sparsity=sparsity, begin_fraction=0.0,
                            end_fraction=0.5, frequency=5, layers=layer_sparsity)
    cfg = TrainingConfig(epochs=2, verbose=False, batch_size=256)
    return train(model, x[split.train], y[split.train], x[split.val], y[split.val], n_out, cfg, pruning).model


@pytest.mark.parametrize("name", list(MODELS))
def test_zero_differing_events(prepared, tmp_path, name):
    quant, hidden, sparsity = MODELS[name]
    model = train_briefly(prepared, quant, hidden, sparsity)
    x_test = prepared.inputs[prepared.split.test]
    result = hls_check(model, x_test, HLSConfig(), tmp_path / "prj", name, n_stress=2000)
    assert result.events == len(x_test) > 500
    assert result.mismatched_events == 0 and result.max_abs_diff_lsb == 0, result.summary()
    assert result.stress_events == 2000 and result.stress_mismatched_events == 0, result.summary()
    if sparsity:
        kernels = [s.weight_codes for s in extract_network(model).stages]
        zeros = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
        assert zeros >= sparsity - 0.05


def test_multiclass_logits_exact(prepared, tmp_path):
    labels = np.select([prepared.table.truth == 5, prepared.table.truth == 4], [0, 1], 2)
    model = train_briefly(prepared, Q(), [16], 0.0, n_out=3, labels=labels)
    result = hls_check(model, prepared.inputs[prepared.split.test], HLSConfig(), tmp_path / "prj", "multi", n_stress=1000)
    assert result.exact, result.summary()


def test_too_narrow_accumulator_is_diagnosed_at_its_layer(prepared, tmp_path):
    model = train_briefly(prepared, Q(), [32, 16], 0.0)
    network = extract_network(model)
    exact = network.stages[1].accum_type
    narrow = f"ap_fixed<{exact.width - 3},{exact.integer - 3}>"  # three integer bits short: wraps
    result = hls_check(model, prepared.inputs[prepared.split.test], HLSConfig(), tmp_path / "prj", "narrow",
                       precision_overrides={"dense_1": {"accum": narrow, "result": narrow}}, n_stress=1000)
    assert not result.exact
    assert result.first_bad_layer is not None
    assert result.first_bad_layer.layer == "dense_1"
    assert result.first_bad_layer.kind == "overflow/saturation"
    profile = {row["layer"]: row for row in precision_profile(network, prepared.inputs[prepared.split.test])}
    assert profile["dense_0"]["overflow"] == 0.0 and profile["dense_1"]["overflow"] == 0.0


def test_inexact_settings_refused_before_conversion():
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits

    inputs = keras.Input((3,))
    x = QActivation(quantized_bits(8, 3, alpha=1))(inputs)
    x = QDense(2, kernel_quantizer=quantized_bits(6, 0, alpha="auto_po2"), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="bad_dense")(x)
    with pytest.raises(QTriggerError, match=r"layer bad_dense kernel_quantizer: quantized_bits alpha='auto_po2' cannot be converted exactly"):
        extract_network(keras.Model(inputs, x))


def test_unsigned_quantized_bits_activation_exact(prepared, tmp_path):
    """hls4ml 1.3 types quantized_bits(keep_negative=False) as signed with half the resolution; we do not."""
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits

    t = prepared.preprocessor.input_type
    inputs = keras.Input((prepared.inputs.shape[1],), name="inputs")
    x = QActivation(quantized_bits(t.width, t.integer - 1, alpha=1), name="input_q")(inputs)
    x = QDense(16, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1), name="dense_0")(x)
    x = QActivation(quantized_bits(4, 0, keep_negative=False, alpha=1), name="act_0")(x)
    x = QDense(1, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1), name="output")(x)
    model = keras.Model(inputs, x)
    network = extract_network(model)
    assert str(network.stages[0].activation_type) == "ap_ufixed<4,0,RND_CONV,SAT>"  # steps of 1/16
    result = hls_check(model, prepared.inputs[prepared.split.test], HLSConfig(), tmp_path / "prj", "unsigned", n_stress=1000)
    assert result.exact, result.summary()


def test_per_layer_mixed_precision_exact(prepared, tmp_path):
    """[8] hidden: layer 0 at 4-bit weights and 70 % sparsity, output at 8-bit: C-simulation and da4ml RTL exact."""
    from qtrigger.firmware.rtl_stage import rtl_stage

    quant = Q(layers=[{"weight_bits": 4, "bias_bits": 5, "activation_bits": 5, "activation_integer": 1},
                      {"weight_bits": 8, "weight_integer": 1, "bias_bits": 8, "bias_integer": 2}])
    model = train_briefly(prepared, quant, [8], 0.0, layer_sparsity=[0.7, 0.0])
    network = extract_network(model)
    first, output = network.stages
    assert (first.weight_type.width, first.weight_type.integer) == (4, 1)  # quantized_bits(4, 0): sign + 3 fraction bits
    assert (output.weight_type.width, output.weight_type.integer) == (8, 2)
    assert str(first.activation_type) == "ap_ufixed<5,1,RND_CONV,SAT>" and output.activation_type is None
    assert (first.weight_codes == 0).mean() >= 0.65 and (output.weight_codes == 0).mean() < 0.5
    x_test = prepared.inputs[prepared.split.test]
    result = hls_check(model, x_test, HLSConfig(), tmp_path / "prj", "mixed", n_stress=2000)
    assert result.events == len(x_test) > 500
    assert result.mismatched_events == 0 and result.stress_mismatched_events == 0, result.summary()
    rtl = rtl_stage(network, x_test[:300], HLSConfig(), tmp_path / "rtl", synthesize=False, n_ties=300, n_overrange=200)
    assert rtl.mismatches_vs_model == 0 and rtl.latency.ii == 1
