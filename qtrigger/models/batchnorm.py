"""Dense + batch normalization folded during quantization-aware training, and its export.

:class:`QDenseBatchnorm` follows upstream QKeras's ``QConv2DBatchnorm`` in its default
``ema_stats_folding`` mode, for a dense layer:

- the kernel is always folded with the *moving* statistics, ``W' = W * s`` with
  ``s = gamma / sqrt(moving_variance + epsilon)`` per output unit, and the kernel
  quantizer sees ``W'`` (no batch-to-batch jitter in the quantized weights);
- until ``freeze_step`` training steps have run, the moving statistics are updated and the
  output is corrected to batch statistics: ``y = (x @ Q(W')) * sqrt(mv + eps) / sqrt(var + eps)
  + Qb(beta + gamma * (b - mean) / sqrt(var + eps))``;
- afterwards (and always in inference) ``y = x @ Q(W') + Qb(b')`` with
  ``b' = beta + s * (b - moving_mean)``: exactly a QDense with kernel ``Q(W')`` and bias ``Qb(b')``.

:func:`fold_batchnorm` replaces every such layer by a plain ``QDense`` holding the layer's
own quantized folded tensors (computed by the same TensorFlow float32 ops the layer uses
in inference), so the exact integer emulation, hls4ml and the C-simulation see an ordinary
QKeras MLP. Pruning (tfmot) ranks ``|W|``, the unfolded kernel variable: the mask is applied
to ``W`` and ``W' = W * s`` is zero exactly where ``W`` is.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from qtrigger.config import ModelConfig
from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType, qkeras_quantizer_type

LAYER_NAME = "QDenseBatchnorm"


def accumulator_bias_bits(input_type: FixedType, n_inputs: int, weight_bits: int, weight_integer: int) -> tuple[int, int]:
    """``(bits, integer)`` of ``quantized_bits`` for a folded bias: the layer's MAC accumulator type.

    Fractional bits are the product's (input + weight), so the bias adds to the accumulator
    without rounding; integer bits hold ``n_inputs`` worst-case products (as QKeras qtools
    derives the accumulator). A folded bias beyond this range would saturate every output
    of the unit whatever the input, so clipping it loses nothing reachable.
    """
    weight_frac = weight_bits - 1 - weight_integer
    frac = input_type.frac + weight_frac
    in_bound = max(abs(input_type.min_value), abs(input_type.max_value))
    bound = n_inputs * in_bound * 2.0**weight_integer
    integer = max(0, math.ceil(math.log2(bound))) if bound > 0 else 0
    return integer + frac + 1, integer


def _layer_class():
    """The Keras layer class, defined on first use so TensorFlow is imported only when needed."""
    global _QDenseBatchnorm
    if _QDenseBatchnorm is None:
        _QDenseBatchnorm = _define_layer()
    return _QDenseBatchnorm


_QDenseBatchnorm = None


def _define_layer():
    import tensorflow as tf
    import tf_keras as keras
    from qkeras import QDense

    class QDenseBatchnorm(QDense):
        """QDense followed by batch normalization, folded into the quantized kernel and bias.

        ``freeze_step``: training steps during which the moving statistics are updated and
        the output is corrected to batch statistics (``None`` = never freeze).
        ``max_clipped``: largest fraction of folded weights or biases of this layer that
        its quantizers may clip before :func:`fold_batchnorm` refuses the export.
        """

        def __init__(self, units, momentum=0.99, epsilon=1e-3, freeze_step=None, max_clipped=0.05, **kwargs):
            if kwargs.get("use_bias") is False:
                raise QTriggerError(f"{LAYER_NAME} {kwargs.get('name', '')}: use_bias must be True (the folded bias)")
            if kwargs.get("activation") not in (None, "linear"):
                raise QTriggerError(f"{LAYER_NAME} {kwargs.get('name', '')}: put the activation in a separate QActivation")
            super().__init__(units, **kwargs)
            self.momentum = float(momentum)
            self.epsilon = float(epsilon)
            self.freeze_step = None if freeze_step is None else int(freeze_step)
            self.max_clipped = float(max_clipped)

        def build(self, input_shape):
            super().build(input_shape)
            shape = (self.units,)
            self.gamma = self.add_weight(name="gamma", shape=shape, initializer="ones", trainable=True)
            self.beta = self.add_weight(name="beta", shape=shape, initializer="zeros", trainable=True)
            self.moving_mean = self.add_weight(name="moving_mean", shape=shape, initializer="zeros", trainable=False)
            self.moving_variance = self.add_weight(name="moving_variance", shape=shape, initializer="ones", trainable=False)
            self.iteration = self.add_weight(name="iteration", shape=(), dtype=tf.int64, initializer="zeros", trainable=False)

        def folded_tensors(self):
            """``(W', b')`` folded with the moving statistics, before quantization (float32)."""
            scale = self.gamma * tf.math.rsqrt(self.moving_variance + self.epsilon)
            return self.kernel * scale, self.beta + scale * (self.bias - self.moving_mean)

        def quantized_folded(self):
            """``(Q(W'), Qb(b'))``: what the inference path multiplies and adds."""
            kernel, bias = self.folded_tensors()
            return self.kernel_quantizer_internal(kernel), self.bias_quantizer_internal(bias)

        def call(self, inputs, training=None):
            if training is None:
                training = keras.backend.learning_phase()
            if isinstance(training, (bool, int)):
                return self._training_call(inputs) if training else self._inference_call(inputs)
            return tf.cond(tf.cast(training, tf.bool), lambda: self._training_call(inputs),
                           lambda: self._inference_call(inputs))

        def _inference_call(self, inputs):
            kernel, bias = self.quantized_folded()
            output = keras.backend.dot(inputs, kernel)  # the same ops as QDense.call
            return keras.backend.bias_add(output, bias, data_format="channels_last")

        def _training_call(self, inputs):
            raw = keras.backend.bias_add(keras.backend.dot(inputs, self.kernel), self.bias, data_format="channels_last")
            mean, variance = tf.nn.moments(raw, axes=[0])
            if self.freeze_step is None:
                active = tf.constant(True)
            else:
                active = self.iteration < self.freeze_step
            mv_root = tf.sqrt(self.moving_variance + self.epsilon)
            batch_inv = tf.math.rsqrt(variance + self.epsilon)
            kernel, moving_bias = self.folded_tensors()
            batch_bias = self.beta + self.gamma * batch_inv * (self.bias - mean)
            q_kernel = self.kernel_quantizer_internal(kernel)
            q_bias = self.bias_quantizer_internal(tf.where(active, batch_bias, moving_bias))
            correction = tf.where(active, mv_root * batch_inv, tf.ones_like(batch_inv))
            output = keras.backend.dot(inputs, q_kernel) * correction
            output = keras.backend.bias_add(output, q_bias, data_format="channels_last")
            with tf.control_dependencies([output]):
                keep = 1.0 - self.momentum
                new_mean = self.moving_mean - (self.moving_mean - tf.stop_gradient(mean)) * keep
                new_var = self.moving_variance - (self.moving_variance - tf.stop_gradient(variance)) * keep
                updates = [self.moving_mean.assign(tf.where(active, new_mean, self.moving_mean)),
                           self.moving_variance.assign(tf.where(active, new_var, self.moving_variance)),
                           self.iteration.assign_add(1)]
            with tf.control_dependencies(updates):
                return tf.identity(output)

        def get_prunable_weights(self):
            return [self.kernel]  # tfmot ranks |W|; the folded W' is zero where W is

        def get_config(self):
            config = super().get_config()
            config.update(momentum=self.momentum, epsilon=self.epsilon, freeze_step=self.freeze_step,
                          max_clipped=self.max_clipped)
            return config

    return QDenseBatchnorm


def QDenseBatchnorm(*args, **kwargs):  # noqa: N802  (a layer constructor)
    """Create a :class:`QDenseBatchnorm` layer (see the module docstring)."""
    return _layer_class()(*args, **kwargs)


def is_batchnorm_layer(layer) -> bool:
    """True for a QDenseBatchnorm layer (also when wrapped by tfmot pruning)."""
    return type(getattr(layer, "layer", layer)).__name__ == LAYER_NAME


def custom_objects() -> dict:
    """Keras custom objects for loading a saved model with QDenseBatchnorm layers."""
    return {LAYER_NAME: _layer_class()}


@dataclass
class FoldedLayer:
    """One folded layer's export: clipping by its quantizers and pruning zeros."""

    name: str
    weights: int
    biases: int
    weights_clipped_fraction: float
    biases_clipped_fraction: float
    zero_weights: int  # exported (quantized) zeros
    zero_folded_weights: int  # W' == 0 before quantization (the pruning mask's zeros)
    kernel_quantizer: str
    bias_quantizer: str

    def as_dict(self) -> dict:
        """Plain data for metrics.json."""
        return asdict(self)


def clipped_fraction(values: np.ndarray, quantizer, where: str) -> float:
    """Fraction of ``values`` whose nearest grid point lies outside the quantizer's range."""
    fixed = qkeras_quantizer_type(quantizer, where)
    codes = np.round(np.asarray(values, np.float64) * 2.0**fixed.frac)
    return float(np.mean((codes < fixed.min_code) | (codes > fixed.max_code))) if codes.size else 0.0


def fold_batchnorm(model, enforce_clip_limit: bool = True) -> tuple[object, list[FoldedLayer]]:
    """``model`` with every QDenseBatchnorm replaced by a QDense holding its quantized folded tensors.

    With ``enforce_clip_limit``, raises QTriggerError when a layer's quantizers clip more
    than its ``max_clipped`` fraction of folded weights or biases (a training-quality
    guard; the exported network is exact either way). A model without such layers is
    returned as is.
    """
    import tf_keras as keras
    from qkeras import QDense

    folded_layers = [layer for layer in model.layers if is_batchnorm_layer(layer)]
    if not folded_layers:
        return model, []
    exported, reports = {}, []
    for layer in folded_layers:
        kernel, bias = (np.asarray(t) for t in layer.folded_tensors())
        q_kernel, q_bias = (np.asarray(t) for t in layer.quantized_folded())
        report = FoldedLayer(
            name=layer.name, weights=int(kernel.size), biases=int(bias.size),
            weights_clipped_fraction=clipped_fraction(kernel, layer.kernel_quantizer_internal, f"layer {layer.name} kernel_quantizer"),
            biases_clipped_fraction=clipped_fraction(bias, layer.bias_quantizer_internal, f"layer {layer.name} bias_quantizer"),
            zero_weights=int(np.count_nonzero(q_kernel == 0)), zero_folded_weights=int(np.count_nonzero(kernel == 0)),
            kernel_quantizer=str(layer.kernel_quantizer_internal), bias_quantizer=str(layer.bias_quantizer_internal),
        )
        worst = max(report.weights_clipped_fraction, report.biases_clipped_fraction)
        if enforce_clip_limit and worst > layer.max_clipped:
            raise QTriggerError(
                f"layer {layer.name}: batch-norm folding clips {report.weights_clipped_fraction:.1%} of weights "
                f"({report.kernel_quantizer}) and {report.biases_clipped_fraction:.1%} of biases "
                f"({report.bias_quantizer}), above model.batchnorm_max_clipped={layer.max_clipped:g}; "
                "give the weights more integer bits (quantization.weight_integer) or raise the limit")
        exported[layer.name] = [q_kernel, q_bias]
        reports.append(report)

    def clone(layer):
        if not is_batchnorm_layer(layer):
            return layer.__class__.from_config(layer.get_config())
        config = layer.get_config()
        for key in ("momentum", "epsilon", "freeze_step", "max_clipped"):
            config.pop(key)
        return QDense.from_config(config)

    stripped = keras.models.clone_model(model, clone_function=clone)
    for old, new in zip(model.layers, stripped.layers):
        new.set_weights(exported.get(old.name, old.get_weights()))
    return stripped, reports


def folded_dense(units: int, name: str, q, model_cfg: ModelConfig, in_type: FixedType, n_in: int, init):
    """A QDenseBatchnorm (batch normalization folded into the quantized weights) with layer quantizers ``q``;
    its folded bias takes the layer's accumulator type (``accumulator_bias_bits`` of ``in_type`` x ``n_in``)."""
    from qkeras import quantized_bits

    bias_bits, bias_integer = accumulator_bias_bits(in_type, n_in, q.weight_bits, q.weight_integer)
    return QDenseBatchnorm(units, kernel_quantizer=quantized_bits(q.weight_bits, q.weight_integer, alpha=1),
                           bias_quantizer=quantized_bits(bias_bits, bias_integer, alpha=1), kernel_initializer=init,
                           freeze_step=model_cfg.batchnorm_freeze_step, max_clipped=model_cfg.batchnorm_max_clipped,
                           name=name)
