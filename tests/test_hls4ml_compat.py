"""The Keras-3 routing workaround: all three hls4ml entry points see tf-keras."""

import sys

import pytest

from qtrigger.firmware import adapter as hls4ml_compat


def tiny_qkeras_model():
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    inputs = keras.Input((4,), name="inputs")
    x = QActivation(quantized_bits(8, 3, alpha=1), name="input_q")(inputs)
    x = QDense(3, kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1), name="dense_0")(x)
    x = QActivation(quantized_relu(4, 1), name="relu_0")(x)
    return keras.Model(inputs, x)


def test_keras_is_tf_keras_only_inside_the_block():
    import keras
    import tf_keras

    assert keras.__version__.startswith("3."), "this test assumes Keras 3 is installed, as TensorFlow 2.21 does"
    with hls4ml_compat.keras2_frontend():
        import keras as inner

        assert inner is tf_keras
    assert sys.modules["keras"] is keras


def test_config_from_keras_model_reads_qkeras_quantizers():
    config = hls4ml_compat.config_from_keras_model(tiny_qkeras_model(), granularity="name", backend="Vivado")
    layers = config["LayerName"]
    assert layers["dense_0"]["Precision"]["weight"].startswith("fixed<5,1")
    assert layers["relu_0"]["Precision"]["result"].startswith("ufixed<4,1,RND_CONV,SAT")


def test_plain_hls4ml_takes_the_wrong_front_end():
    """Documents the trap the adapter exists for; if hls4ml fixes it, this test tells us."""
    import hls4ml

    with pytest.raises(Exception):
        hls4ml.utils.config_from_keras_model(tiny_qkeras_model(), granularity="name")


def test_converter_and_profiling_use_keras2(tmp_path):
    model = tiny_qkeras_model()
    hls_model = hls4ml_compat.convert_from_keras_model(model, output_dir=str(tmp_path / "prj"), backend="Vivado")
    layers = {layer.name: layer for layer in hls_model.get_layers()}
    assert "dense_0" in layers and "relu_0" in layers
    assert str(layers["dense_0"].get_attr("weight_t").precision).startswith("fixed<5,1")
    with hls4ml_compat.keras2_frontend():
        profiling = hls4ml_compat.profiling_module()
        import tf_keras

        assert profiling.keras is tf_keras
        assert isinstance(model, profiling.keras.Model)
