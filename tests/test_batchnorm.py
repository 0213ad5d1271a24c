"""Dense + batch normalization folded during QAT (qtrigger.models.batchnorm): folding, export, pruning, exactness."""

import json
from pathlib import Path

import numpy as np
import pytest

from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType

REPO = Path(__file__).resolve().parent.parent


def _layer(units=4, n_in=3, kernel=(6, 0), bias=(20, 6), seed=0, **kwargs):
    """A built QDenseBatchnorm with random weights and statistics."""
    import tensorflow as tf
    from qkeras import quantized_bits

    from qtrigger.models.batchnorm import QDenseBatchnorm

    layer = QDenseBatchnorm(units, kernel_quantizer=quantized_bits(*kernel, alpha=1),
                            bias_quantizer=quantized_bits(*bias, alpha=1), name="dense_0", **kwargs)
    layer.build((None, n_in))
    rng = np.random.default_rng(seed)
    layer.kernel.assign(rng.uniform(-0.6, 0.6, (n_in, units)).astype(np.float32))
    layer.bias.assign(rng.normal(0, 0.5, units).astype(np.float32))
    layer.gamma.assign(rng.uniform(0.5, 1.5, units).astype(np.float32))
    layer.beta.assign(rng.normal(0, 0.3, units).astype(np.float32))
    layer.moving_mean.assign(rng.normal(0, 0.5, units).astype(np.float32))
    layer.moving_variance.assign(rng.uniform(0.8, 3.0, units).astype(np.float32))
    assert isinstance(layer.kernel, tf.Variable)
    return layer


def _bn_model(seed=0, batchnorm_scale=None):
    """input_q -> QDenseBatchnorm(8) -> relu -> QDense(2), random weights, as build_model makes it."""
    import tf_keras as keras

    from qtrigger.config import ModelConfig, QuantizationConfig
    from qtrigger.models.build import build_model

    model = build_model(3, 2, ModelConfig(hidden=[8], batchnorm=True), QuantizationConfig(), FixedType(12, 4, True))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "QDenseBatchnorm":
            layer.kernel.assign(rng.uniform(-0.5, 0.5, layer.kernel.shape).astype(np.float32))
            layer.bias.assign(rng.normal(0, 1, layer.bias.shape).astype(np.float32))
            layer.gamma.assign((rng.uniform(0.5, 1.5, 8) * (batchnorm_scale or 1.0)).astype(np.float32))
            layer.beta.assign(rng.normal(0, 0.3, 8).astype(np.float32))
            layer.moving_mean.assign(rng.normal(0, 1, 8).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.5, 4, 8).astype(np.float32))
    assert isinstance(model, keras.Model)
    return model


def _inputs(n=3000, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 2, (n, 3)).astype(np.float32)


# --- configuration -----------------------------------------------------------------------------------

def test_config_batchnorm_keys_validated():
    from qtrigger.config import validate_config

    base = {"data": {"samples": [{"name": "s", "files": ["x.root"]}]}}
    config = validate_config({**base, "model": {"batchnorm": True, "batchnorm_freeze_step": 500}})
    assert config.model.batchnorm and config.model.batchnorm_freeze_step == 500
    with pytest.raises(QTriggerError, match=r"key model: .*batchnorm_freeze_step is set but batchnorm is false"):
        validate_config({**base, "model": {"batchnorm_freeze_step": 500}})
    with pytest.raises(QTriggerError, match=r"key model.batchnorm_freeze_step: .*greater than or equal to 1 \(got 0\)"):
        validate_config({**base, "model": {"batchnorm": True, "batchnorm_freeze_step": 0}})
    with pytest.raises(QTriggerError, match=r"key model.batchnorm_max_clipped: .*\(got 1.5\)"):
        validate_config({**base, "model": {"batchnorm": True, "batchnorm_max_clipped": 1.5}})
    with pytest.raises(QTriggerError, match=r"key model.batchnorm: "):
        validate_config({**base, "model": {"batchnorm": "maybe"}})


def test_seed_config_is_the_seed_architecture():
    from qtrigger.config import load_config

    config = load_config(REPO / "configs" / "seed_ultralight.yaml", check_files=False)
    assert config.model.hidden == [32, 16] and config.model.dropout == 0.1 and config.model.batchnorm
    assert config.labels.mode == "multiclass" and config.labels.class_names == ["b", "rest"]
    assert config.labels.classes == {"b": [5], "rest": [0, 4]}
    assert (config.labels.score.plus, config.labels.score.minus) == ("b", "rest")


# --- the layer ---------------------------------------------------------------------------------------

def test_accumulator_bias_type():
    from qtrigger.models.batchnorm import accumulator_bias_bits

    # signed input ap_fixed<16,6>: |x| <= 32, 10 frac bits; 6-bit weights (5 frac bits, |w| <= 1); 10 inputs
    assert accumulator_bias_bits(FixedType(16, 6, True), 10, 6, 0) == (1 + 9 + 15, 9)  # 320 < 2**9
    # ReLU ap_ufixed<6,2>: |x| < 4, 4 frac bits; 32 inputs: 128 -> 7 integer bits, 9 frac bits
    assert accumulator_bias_bits(FixedType(6, 2, False), 32, 6, 0) == (17, 7)
    assert accumulator_bias_bits(FixedType(6, 2, False), 16, 8, 1) == (1 + 7 + 10, 7)


def test_inference_is_the_moving_statistics_fold():
    """Inference = x @ Q(gamma W / sigma) + Qb(beta + gamma (b - mu) / sigma), sigma from the moving variance."""
    from qkeras import quantized_bits

    layer = _layer()
    x = _inputs(50)
    kernel, bias, gamma, beta, mean, var = (np.asarray(v, np.float64) for v in
                                            (layer.kernel, layer.bias, layer.gamma, layer.beta,
                                             layer.moving_mean, layer.moving_variance))
    scale = gamma / np.sqrt(var + 1e-3)
    q_kernel = np.asarray(quantized_bits(6, 0, alpha=1)((kernel * scale).astype(np.float32)), np.float64)
    q_bias = np.asarray(quantized_bits(20, 6, alpha=1)((beta + scale * (bias - mean)).astype(np.float32)), np.float64)
    expected = x.astype(np.float64) @ q_kernel + q_bias
    got = np.asarray(layer(x, training=False), np.float64)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert int(layer.iteration.numpy()) == 0  # inference does not count steps


def test_training_uses_batch_statistics_until_freeze():
    """Before the freeze: batch-norm output with batch statistics, moving averages updated; after: inference."""
    layer = _layer(kernel=(16, 2), bias=(24, 8), freeze_step=3, momentum=0.9)
    x = _inputs(400)
    raw = x.astype(np.float64) @ np.asarray(layer.kernel, np.float64) + np.asarray(layer.bias, np.float64)
    mean, var = raw.mean(axis=0), raw.var(axis=0)
    mv_mean = np.asarray(layer.moving_mean, np.float64)
    gamma, beta = np.asarray(layer.gamma, np.float64), np.asarray(layer.beta, np.float64)
    out = np.asarray(layer(x, training=True), np.float64)
    batch_norm = gamma * (raw - mean) / np.sqrt(var + 1e-3) + beta
    np.testing.assert_allclose(out, batch_norm, atol=0.01)  # 16-bit quantizers: close to float BN
    np.testing.assert_allclose(np.asarray(layer.moving_mean), 0.9 * mv_mean + 0.1 * mean, rtol=1e-5, atol=1e-6)
    layer(x, training=True)
    layer(x, training=True)
    frozen = [np.asarray(layer.moving_mean).copy(), np.asarray(layer.moving_variance).copy()]
    after = np.asarray(layer(x, training=True))  # step 3: frozen
    assert int(layer.iteration.numpy()) == 4
    np.testing.assert_array_equal(np.asarray(layer.moving_mean), frozen[0])
    np.testing.assert_array_equal(np.asarray(layer.moving_variance), frozen[1])
    np.testing.assert_array_equal(after, np.asarray(layer(x, training=False)))


def test_tfmot_wraps_the_layer_and_prunes_the_unfolded_kernel():
    import tensorflow_model_optimization as tfmot

    layer = _layer()
    assert layer.get_prunable_weights() == [layer.kernel]
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(_layer().__class__.from_config(layer.get_config()))
    assert type(wrapped.layer).__name__ == "QDenseBatchnorm"


# --- export ------------------------------------------------------------------------------------------

def test_fold_exports_qdense_bit_for_bit_on_grid():
    from qtrigger.emulate.network import extract_network
    from qtrigger.fixedpoint import qkeras_quantizer_type
    from qtrigger.models.batchnorm import fold_batchnorm

    model = _bn_model()
    x = _inputs()
    folded, reports = fold_batchnorm(model)
    assert [type(layer).__name__ for layer in folded.layers] == ["InputLayer", "QActivation", "QDense", "QActivation", "QDense"]
    assert [r.name for r in reports] == ["dense_0"]
    np.testing.assert_array_equal(model.predict(x, verbose=0), folded.predict(x, verbose=0))
    dense = folded.get_layer("dense_0")
    for values, quantizer in zip(dense.get_weights(), (dense.kernel_quantizer_internal, dense.bias_quantizer_internal)):
        fixed = qkeras_quantizer_type(quantizer, "test")
        codes = values.astype(np.float64) * 2.0**fixed.frac
        assert np.array_equal(codes, np.round(codes)) and codes.min() >= fixed.min_code and codes.max() <= fixed.max_code
    network = extract_network(folded)
    # accumulator-derived: input ap_fixed<12,4> (8 frac bits, |x| <= 8) x 6-bit weights (5 frac), 3 inputs: 24 < 2**5
    assert network.stages[0].bias_type == FixedType(1 + 5 + 13, 5 + 1, True, "RND_CONV", "SAT")


def test_excess_clipping_fails_in_one_line():
    from qtrigger.models.batchnorm import fold_batchnorm

    with pytest.raises(QTriggerError) as err:
        fold_batchnorm(_bn_model(batchnorm_scale=40.0))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("layer dense_0: batch-norm folding clips ") and "model.batchnorm_max_clipped=0.05" in message


def test_clipped_fraction_counts_values_rounding_outside_the_range():
    from qkeras import quantized_bits

    from qtrigger.models.batchnorm import clipped_fraction

    q = quantized_bits(4, 0, alpha=1)  # grid step 1/8, range [-1, 7/8]
    values = np.array([0.0, 0.9, 0.93, -1.0, -1.07, -1.1, 0.5, 2.0])
    # 0.9 -> 7.2 -> 7 (in range); 0.93 -> 7.44 -> 7; -1.07 -> -8.56 -> -9 clipped; -1.1 clipped; 2.0 clipped
    assert clipped_fraction(values, q, "t") == pytest.approx(3 / 8)


def test_saved_batchnorm_model_loads_folded(tmp_path):
    from qtrigger.models.batchnorm import fold_batchnorm
    from qtrigger.models.build import load_model

    model = _bn_model(seed=3)
    path = tmp_path / "bn.h5"
    model.save(path)
    loaded = load_model(path)
    assert "QDenseBatchnorm" not in {type(layer).__name__ for layer in loaded.layers}
    x = _inputs()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    reference, _ = fold_batchnorm(model)
    for a, b in zip(loaded.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_float_twin_uses_batchnormalization():
    from qtrigger.config import ModelConfig, QuantizationConfig
    from qtrigger.models.build import build_model

    model = build_model(3, 2, ModelConfig(hidden=[8, 4], batchnorm=True, dropout=0.1), QuantizationConfig(), None, quantized=False)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Dense", "BatchNormalization", "Activation", "Dropout",
                     "Dense", "BatchNormalization", "Activation", "Dropout", "Dense"]


def test_freeze_step_beyond_training_is_refused_before_fitting():
    from qtrigger.config import ModelConfig, QuantizationConfig, TrainingConfig
    from qtrigger.models.build import build_model
    from qtrigger.models.train import train

    model = build_model(3, 1, ModelConfig(hidden=[4], batchnorm=True, batchnorm_freeze_step=20),
                        QuantizationConfig(), FixedType(12, 4, True))
    x, y = _inputs(100), np.arange(100) % 2
    cfg = TrainingConfig(epochs=2, batch_size=10, verbose=False)
    with pytest.raises(QTriggerError, match=r"^model.batchnorm_freeze_step=20: training has only 20 steps"):
        train(model, x, y, x, y, 1, cfg, None)


# --- training (slow) ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(default_sample):
    """A pruned QAT model with folded batch norm, trained on a slice of the default sample."""
    from qtrigger.config import validate_config
    from qtrigger.models.build import build_model
    from qtrigger.models.train import configure_tensorflow, train
    from qtrigger.runs.pipeline import prepare_data

    raw = {"data": {"samples": [{"name": "ttbar", "files": [default_sample["ttbar"]], "role": "signal"},
                                {"name": "qcd", "files": [default_sample["qcd"]], "role": "background"}],
                    "max_events": 4000},
           "labels": {"mode": "multiclass", "classes": {"b": [5], "rest": [0, 4]}, "score": {"plus": "b", "minus": "rest"}},
           "model": {"hidden": [16, 8], "dropout": 0.1, "batchnorm": True},
           "quantization": {"weight_integer": 1},  # folded weights need [-2, 2) (as configs/seed_ultralight.yaml)
           "pruning": {"frequency": 5},
           "training": {"epochs": 8, "batch_size": 256, "verbose": False, "threads": 1}}
    config = validate_config(raw)
    configure_tensorflow(1, 1)
    prepared = prepare_data(config)
    x, y, split = prepared.inputs, prepared.labels, prepared.split
    model = build_model(x.shape[1], 2, config.model, config.quantization, prepared.preprocessor.input_type)
    result = train(model, x[split.train], y[split.train], x[split.val], y[split.val], 2, config.training, config.pruning)
    return result, x[split.test], config


@pytest.mark.slow
def test_trained_export_is_bit_for_bit_and_zeros_are_the_mask(trained):
    from qtrigger.models.build import quantized_weights

    result, x_test, _ = trained
    assert result.batchnorm["freeze_step"] == 6 * result.batchnorm["steps_per_epoch"]  # ceil(0.7 * 8) epochs
    # bit for bit: the BN model in inference mode and the exported QDense model, every test jet
    np.testing.assert_array_equal(result.unfolded_model.predict(x_test, verbose=0),
                                  result.model.predict(x_test, verbose=0))
    for name in ("dense_0", "dense_1"):
        unfolded = result.unfolded_model.get_layer(name)
        assert int(unfolded.iteration.numpy()) > unfolded.freeze_step  # trained past the freeze
        mask = result.pruning_masks[name]
        assert 0.45 <= 1 - mask.mean() <= 0.55
        folded_kernel = np.asarray(unfolded.folded_tensors()[0])
        np.testing.assert_array_equal(folded_kernel == 0, mask == 0)  # W' is zero exactly where pruned
        exported = quantized_weights(result.model.get_layer(name))[0]
        assert np.all(exported[mask == 0] == 0)
        # further exported zeros are unpruned weights that round to 0 on the 6-bit grid, nothing else
        extra = (exported == 0) & (mask == 1)
        assert np.all(np.abs(folded_kernel[extra]) <= 2.0**-5)  # half an LSB of quantized_bits(6, 1)
    layers = {r["name"]: r for r in result.batchnorm["layers"]}
    assert set(layers) == {"dense_0", "dense_1"}
    assert all(0 <= r["weights_clipped_fraction"] <= 0.05 for r in layers.values())
    json.dumps(result.batchnorm)  # metrics-ready


@pytest.mark.slow
def test_saved_bn_model_is_exact_through_hls_check(trained, tmp_path):
    from qtrigger.cli import main

    result, x_test, _ = trained
    model_path, inputs_path = tmp_path / "bn_model.h5", tmp_path / "x.npy"
    result.unfolded_model.save(model_path)
    np.save(inputs_path, x_test)
    assert main(["hls", "check", "--model", str(model_path), "--inputs", str(inputs_path), "--json"]) == 0


@pytest.mark.slow
def test_seed_config_run_is_exact(default_sample, tmp_path):
    import yaml

    from qtrigger.config import validate_config
    from qtrigger.runs.pipeline import run

    raw = yaml.safe_load((REPO / "configs" / "seed_ultralight.yaml").read_text())
    raw.update(name="seed", output_dir=str(tmp_path / "runs"))
    raw["data"]["samples"] = [{"name": "ttbar", "files": [default_sample["ttbar"]], "role": "signal"},
                              {"name": "qcd", "files": [default_sample["qcd"]], "role": "background"}]
    raw["data"]["max_events"] = 3000
    raw["training"].update(epochs=6, threads=1, verbose=False, float_twin=True)
    raw["trigger"]["enabled"] = False  # this test is about folding and exactness; the trigger stage has its own tests
    raw["hls"]["output_dir"] = str(tmp_path / "hls")
    metrics = run(validate_config(raw), progress=False)
    assert metrics["csim"]["mismatched_jets"] == 0 and metrics["csim"]["stress"]["mismatched_jets"] == 0
    assert metrics["csim"]["jets"] == metrics["data"]["n_jets"]["test"]
    assert abs(metrics["qat"]["auc"] - metrics["float"]["auc"]) < 0.1
