"""``model.form: mlp``: a quantized multilayer perceptron on one input row, and its float twin."""

from __future__ import annotations

from qtrigger.config import ModelConfig, QuantizationConfig
from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType
from qtrigger.models.batchnorm import folded_dense


def build_mlp(
    n_inputs: int,
    n_out: int,
    model_cfg: ModelConfig,
    quant_cfg: QuantizationConfig,
    input_type: FixedType | None,
    quantized: bool = True,
    seed: int = 1,
):
    """A tf-keras model: [input quantizer] → (Dense [→ BN] → ReLU [→ Dropout]) × N → Dense logits.

    ``quantized=False`` gives the float twin (same architecture, quantizers off). With
    ``model_cfg.batchnorm`` the QAT hidden layers are :class:`~qtrigger.models.batchnorm.QDenseBatchnorm`
    (BN folded into the quantized weights) and the float twin has Dense → BatchNormalization.
    """
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    if quantized and model_cfg.batchnorm and input_type is None:
        raise QTriggerError("model.batchnorm: the QAT model needs an input type to derive the folded bias type")
    inputs = keras.Input((n_inputs,), name="inputs")
    x = inputs
    if quantized and input_type is not None:
        x = QActivation(quantized_bits(input_type.width, input_type.integer - 1, alpha=1), name="input_q")(x)

    def kernel_init(layer_seed):
        return keras.initializers.GlorotUniform(seed=seed + layer_seed)

    def dense(units, name, layer_seed):
        if not quantized:
            return keras.layers.Dense(units, kernel_initializer=kernel_init(layer_seed), name=name)
        q = quant_cfg.layer(layer_seed)
        return QDense(
            units,
            kernel_quantizer=quantized_bits(q.weight_bits, q.weight_integer, alpha=1),
            bias_quantizer=quantized_bits(q.bias_bits, q.bias_integer, alpha=1),
            kernel_initializer=kernel_init(layer_seed),
            name=name,
        )

    n_in, in_type = n_inputs, input_type
    for index, width in enumerate(model_cfg.hidden):
        q = quant_cfg.layer(index)
        name = f"dense_{index}"
        if quantized and model_cfg.batchnorm:
            x = folded_dense(width, name, quant_cfg.layer(index), model_cfg, in_type, n_in, kernel_init(index))(x)
        else:
            x = dense(width, name, index)(x)
            if model_cfg.batchnorm:
                x = keras.layers.BatchNormalization(name=f"batchnorm_{index}")(x)
        if quantized:
            x = QActivation(quantized_relu(q.activation_bits, q.activation_integer), name=f"relu_{index}")(x)
        else:
            x = keras.layers.Activation("relu", name=f"relu_{index}")(x)
        if model_cfg.dropout > 0:
            x = keras.layers.Dropout(model_cfg.dropout, seed=seed + index, name=f"dropout_{index}")(x)
        n_in, in_type = width, FixedType(q.activation_bits, q.activation_integer, False)
    outputs = dense(n_out, "output", len(model_cfg.hidden))(x)
    return keras.Model(inputs, outputs, name="qtrigger_qat" if quantized else "qtrigger_float")
