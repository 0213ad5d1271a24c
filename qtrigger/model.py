"""QKeras networks from the config: a quantized MLP and its float twin, optionally pruned.

Layer names are fixed (``input_q``, ``dense_<i>``, ``relu_<i>``, ``output``) so that the
hls4ml config, the integer emulation and the reports can refer to them.
Outputs are logits: there is no softmax anywhere in the firmware path.
"""

from __future__ import annotations

import qtrigger  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from qtrigger.config import ModelConfig, PruningConfig, QuantizationConfig
from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType


def n_outputs(label_mode: str, n_classes: int) -> int:
    """One logit for binary labels, one per class for multiclass."""
    return 1 if label_mode == "binary" else n_classes


def build_model(
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
    ``model_cfg.batchnorm`` the QAT hidden layers are :class:`~qtrigger.batchnorm.QDenseBatchnorm`
    (BN folded into the quantized weights) and the float twin has Dense → BatchNormalization.
    """
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    if model_cfg.form == "deepsets":
        return build_deepsets(n_inputs, n_out, model_cfg, quant_cfg, input_type, quantized, seed)
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


def folded_dense(units: int, name: str, q, model_cfg: ModelConfig, in_type: FixedType, n_in: int, init):
    """A QDenseBatchnorm (batch normalization folded into the quantized weights) with layer quantizers ``q``;
    its folded bias takes the layer's accumulator type (``accumulator_bias_bits`` of ``in_type`` x ``n_in``)."""
    from qkeras import quantized_bits

    from qtrigger.batchnorm import QDenseBatchnorm, accumulator_bias_bits

    bias_bits, bias_integer = accumulator_bias_bits(in_type, n_in, q.weight_bits, q.weight_integer)
    return QDenseBatchnorm(units, kernel_quantizer=quantized_bits(q.weight_bits, q.weight_integer, alpha=1),
                           bias_quantizer=quantized_bits(bias_bits, bias_integer, alpha=1), kernel_initializer=init,
                           freeze_step=model_cfg.batchnorm_freeze_step, max_clipped=model_cfg.batchnorm_max_clipped,
                           name=name)


PRUNABLE = ("Dense", "QDense", "QDenseBatchnorm")


def apply_pruning(model, pruning_cfg: PruningConfig, steps_per_epoch: int, epochs: int):
    """Wrap every Dense/QDense/QDenseBatchnorm in ``prune_low_magnitude`` with a polynomial-decay schedule.

    Each layer's final sparsity is ``pruning_cfg.sparsity(i)`` for the i-th Dense layer in
    model order (``pruning.layers``, else ``target_sparsity``); a layer at 0 is left unwrapped.
    """
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    begin, end = pruning_steps(pruning_cfg, steps_per_epoch, epochs)
    targets = pruning_targets(model, pruning_cfg)

    def wrap(layer):
        if type(layer).__name__ not in PRUNABLE:
            return layer
        sparsity = targets[layer.name]
        if sparsity <= 0:
            return layer
        schedule = tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.0, final_sparsity=sparsity,
                                                        begin_step=begin, end_step=end, frequency=pruning_cfg.frequency)
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)

    return keras.models.clone_model(model, clone_function=wrap)


def pruning_steps(pruning_cfg: PruningConfig, steps_per_epoch: int, epochs: int) -> tuple[int, int]:
    """First and last training step of the pruning schedule (its sparsity rises from 0 to the target between them)."""
    total = max(1, steps_per_epoch * epochs)
    begin = int(pruning_cfg.begin_fraction * total)
    return begin, max(int(pruning_cfg.end_fraction * total), begin + 1)


def pruning_targets(model, pruning_cfg: PruningConfig) -> dict[str, float]:
    """Final sparsity of each Dense/QDense/QDenseBatchnorm layer of ``model`` by name (model order)."""
    names = [layer.name for layer in model.layers if type(layer).__name__ in PRUNABLE]
    return {name: pruning_cfg.sparsity(index) for index, name in enumerate(names)}


def strip_pruning(model):
    """Remove pruning wrappers (weights keep their zeros)."""
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras.strip_pruning(model)


def count_parameters(model) -> tuple[int, int]:
    """(all, non-zero) trainable parameters of a stripped model, after weight quantization."""
    import numpy as np

    total = nonzero = 0
    for layer in model.layers:
        for values in quantized_weights(layer):
            total += values.size
            nonzero += int(np.count_nonzero(values))
    return total, nonzero


def quantized_weights(layer) -> list:
    """A Dense/QDense layer's [kernel, bias] (bias-free layers: [kernel]) as the firmware sees them
    (quantizers applied).

    For a QDenseBatchnorm: its quantized folded kernel and bias (what it exports).
    """
    import numpy as np

    if type(layer).__name__ == "QDenseBatchnorm":
        return [np.asarray(t, np.float64) for t in layer.quantized_folded()]
    if type(layer).__name__ not in ("Dense", "QDense"):
        return []
    kernel, *bias = layer.get_weights()
    if type(layer).__name__ == "QDense":
        kernel = np.asarray(layer.kernel_quantizer_internal(kernel))
        bias = [np.asarray(layer.bias_quantizer_internal(b)) for b in bias]
    return [np.asarray(kernel, np.float64), *(np.asarray(b, np.float64) for b in bias)]


def custom_objects() -> dict:
    """Everything needed to load a saved QKeras/tfmot model (including QDenseBatchnorm)."""
    from qkeras.utils import _add_supported_quantized_objects

    from qtrigger.batchnorm import custom_objects as batchnorm_objects

    objects: dict = {}
    _add_supported_quantized_objects(objects)
    objects.update(batchnorm_objects())
    return objects


def load_model(path):
    """Load a model saved by qtrigger (QKeras layers); QDenseBatchnorm layers are folded to QDense.

    Folding uses the saved layer's own float32 tensors, exactly as in training and export;
    the clipping limit is not enforced here (a saved model is checked as it is).
    """
    import tf_keras as keras

    from qtrigger.batchnorm import fold_batchnorm

    objects = custom_objects()
    with keras.utils.custom_object_scope(objects):  # in scope: wrappers (TimeDistributed) deserialize their layer
        model = keras.models.load_model(path, custom_objects=objects, compile=False)
        return fold_batchnorm(model, enforce_clip_limit=False)[0]


def copy_dense_weights(source, target) -> None:
    """Set every Dense/QDense layer of ``target`` to the kernel and bias of the same-named layer of ``source``.

    Used by ``training.qat_init: float_twin``: the QAT model starts from the trained float twin
    (same layer names and shapes; the quantizers apply from the first step of QAT training).
    """
    names = [layer.name for layer in target.layers if layer.name.startswith("dense_") or layer.name == "output"]
    if not names:
        raise QTriggerError("training.qat_init float_twin: the model has no dense_<i> or output layer to initialise")
    for name in names:
        values = source.get_layer(name).get_weights()
        shapes = [w.shape for w in target.get_layer(name).get_weights()]
        if [v.shape for v in values] != shapes:
            raise QTriggerError(f"training.qat_init float_twin: layer {name} has weights {shapes} in the QAT "
                                f"model but {[v.shape for v in values]} in the float twin")
        target.get_layer(name).set_weights(values)
