"""``model.form: deepsets``: a quantized DeepSets network on (constituents, features) inputs, and its float twin."""

from __future__ import annotations

from qtrigger.config import ModelConfig, QuantizationConfig
from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType
from qtrigger.models.batchnorm import folded_dense


def build_deepsets(n_features: int, n_out: int, model_cfg: ModelConfig, quant_cfg: QuantizationConfig,
                   input_type: FixedType | None, quantized: bool = True, seed: int = 1):
    """A DeepSets tf-keras model on (constituents, features) inputs.

    ``input_q`` → (bias-free ``phi_<i>`` Dense per constituent → ``phi_relu_<i>``) × N →
    ``pool`` (GlobalAveragePooling1D or GlobalMaxPooling1D) → (``dense_<j>`` [with batch
    normalization, folded for QAT, when ``model_cfg.batchnorm``] → ``relu_<j>``) × M → ``output``
    logits. Quantizer settings per Dense layer in model order (φ, ρ, output); ``quantized=False``
    gives the float twin.
    """
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    if quantized and input_type is None:
        raise QTriggerError("model.form deepsets: the QAT model needs an input type (the constituent codes' grid)")
    inputs = keras.Input((model_cfg.constituents, n_features), name="inputs")
    x = inputs
    if quantized:
        x = QActivation(quantized_bits(input_type.width, input_type.integer - 1, alpha=1), name="input_q")(x)

    def block(x, units, index, name, relu_name, use_bias):
        init = keras.initializers.GlorotUniform(seed=seed + index)
        if not quantized:
            x = keras.layers.Dense(units, use_bias=use_bias, kernel_initializer=init, name=name)(x)
            return keras.layers.Activation("relu", name=relu_name)(x) if relu_name else x
        q = quant_cfg.layer(index)
        x = QDense(units, use_bias=use_bias, kernel_initializer=init, name=name,
                   kernel_quantizer=quantized_bits(q.weight_bits, q.weight_integer, alpha=1),
                   bias_quantizer=quantized_bits(q.bias_bits, q.bias_integer, alpha=1) if use_bias else None)(x)
        return QActivation(quantized_relu(q.activation_bits, q.activation_integer), name=relu_name)(x) if relu_name else x

    index = 0
    for i, width in enumerate(model_cfg.phi):
        x, index = block(x, width, index, f"phi_{i}", f"phi_relu_{i}", use_bias=False), index + 1
    pool = keras.layers.GlobalAveragePooling1D if model_cfg.pooling == "mean" else keras.layers.GlobalMaxPooling1D
    x = pool(name="pool")(x)
    in_type, n_in = _pooled_type(model_cfg, quant_cfg), model_cfg.phi[-1]
    for i, width in enumerate(model_cfg.rho):
        if model_cfg.batchnorm:  # rho only: a folded bias in phi would make padded slots nonzero
            x = _rho_batchnorm_block(x, width, index, i, quantized, model_cfg, quant_cfg, in_type, n_in, seed)
        else:
            x = block(x, width, index, f"dense_{i}", f"relu_{i}", use_bias=True)
        q = quant_cfg.layer(index)
        in_type, n_in, index = FixedType(q.activation_bits, q.activation_integer, False), width, index + 1
    outputs = block(x, n_out, index, "output", None, use_bias=True)
    return keras.Model(inputs, outputs, name="qtrigger_deepsets_qat" if quantized else "qtrigger_deepsets_float")


def _pooled_type(model_cfg: ModelConfig, quant_cfg: QuantizationConfig) -> FixedType:
    """The pooling's output grid: the last phi activation, with log2(constituents) more fractional bits for a mean."""
    q = quant_cfg.layer(len(model_cfg.phi) - 1)
    extra = model_cfg.constituents.bit_length() - 1 if model_cfg.pooling == "mean" else 0
    return FixedType(q.activation_bits + extra, q.activation_integer, False)


def _rho_batchnorm_block(x, width: int, index: int, i: int, quantized: bool, model_cfg: ModelConfig,
                         quant_cfg: QuantizationConfig, in_type: FixedType, n_in: int, seed: int):
    """``dense_<i>`` with batch normalization → ``relu_<i>``: QDenseBatchnorm (folded) for QAT, Dense → BN for the twin."""
    import tf_keras as keras
    from qkeras import QActivation, quantized_relu

    init = keras.initializers.GlorotUniform(seed=seed + index)
    if not quantized:
        x = keras.layers.Dense(width, kernel_initializer=init, name=f"dense_{i}")(x)
        x = keras.layers.BatchNormalization(name=f"batchnorm_{i}")(x)
        return keras.layers.Activation("relu", name=f"relu_{i}")(x)
    q = quant_cfg.layer(index)
    x = folded_dense(width, f"dense_{i}", q, model_cfg, in_type, n_in, init)(x)
    return QActivation(quantized_relu(q.activation_bits, q.activation_integer), name=f"relu_{i}")(x)
