"""Networks from the config: the registries of model forms and quantization methods, pruning, saved models.

Layer names are fixed (``input_q``, ``dense_<i>``, ``relu_<i>``, ``output``) so that the
hls4ml config, the integer emulation and the reports can refer to them.
Outputs are logits: there is no softmax anywhere in the firmware path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qtrigger.config import KNOWN_FORMS, KNOWN_METHODS, ModelConfig, PruningConfig, QuantizationConfig
from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType
from qtrigger.models.batchnorm import custom_objects as batchnorm_objects
from qtrigger.models.batchnorm import fold_batchnorm
from qtrigger.models.deepsets import build_deepsets
from qtrigger.models.mlp import build_mlp


def n_outputs(label_mode: str, n_classes: int) -> int:
    """One logit for binary labels, one per class for multiclass."""
    return 1 if label_mode == "binary" else n_classes


FormBuilder = Callable[..., Any]
"""``builder(n_inputs, n_out, model_cfg, quant_cfg, input_type, quantized, seed)`` -> a tf-keras model."""

MODEL_FORMS: dict[str, FormBuilder] = {"mlp": build_mlp, "deepsets": build_deepsets}


def register_form(name: str, builder: FormBuilder) -> None:
    """Make ``builder`` selectable as ``model.form: <name>``; its layers must be ones the integer reference
    reads (QDense, QActivation, pooling; :func:`qtrigger.emulate.sets.extract_any_network`)."""
    MODEL_FORMS[name] = builder
    KNOWN_FORMS.add(name)


def build_model(n_inputs: int, n_out: int, model_cfg: ModelConfig, quant_cfg: QuantizationConfig,
                input_type: FixedType | None, quantized: bool = True, seed: int = 1):
    """The ``model.form`` network: the QAT model (``quantized``) or its float twin, logits out (no softmax).

    The QAT model comes from the ``quantization.method`` (:data:`METHODS`); the float twin is always the
    form's tf-keras float network, so QKeras and HGQ2 runs share one float reference.
    """
    if not quantized:
        return form_builder(model_cfg)(n_inputs, n_out, model_cfg, quant_cfg, input_type, False, seed)
    return quant_method(quant_cfg).build(n_inputs, n_out, model_cfg, quant_cfg, input_type, seed)


def registered(registry: dict, name: str, key: str, what: str):
    """``registry[name]``; a one-line error naming ``key`` and the registered names when there is none."""
    try:
        return registry[name]
    except KeyError:
        raise QTriggerError(f"key {key}: {name!r} is not a registered {what} (expected one of {sorted(registry)})") \
            from None


def form_builder(model_cfg: ModelConfig) -> FormBuilder:
    """The registered builder of ``model.form``; a one-line error for an unknown form."""
    return registered(MODEL_FORMS, model_cfg.form, "model.form", "model form")


MethodBuilder = Callable[..., Any]
"""``builder(n_inputs, n_out, model_cfg, quant_cfg, input_type, seed)`` -> the QAT model."""

MethodTrainer = Callable[..., Any]
"""``trainer(model, x_train, y_train, x_val, y_val, n_out, training_cfg, quant_cfg, pruning_cfg, label,
sample_weight, val_sample_weight)`` -> a result with ``model``, ``history``, ``best_epoch``, ``epochs_run``."""


@dataclass(frozen=True)
class QuantMethod:
    """One ``quantization.method``: how its QAT model is built, trained, counted, saved and read back.

    ``check(model_cfg, quant_cfg, pruning_cfg)`` raises a one-line error for settings the method refuses;
    ``train`` fits the QAT model (None: :func:`qtrigger.models.train.train`, the tf-keras trainer);
    ``suffix`` is the saved model's file suffix, ``save(model, path)`` and ``load(path)`` write and read it;
    ``count(model)`` gives (all, non-zero) parameters as the firmware sees them.
    ``runs``: ``qtrigger run`` takes the method (``missing`` says what is not built yet when it does not).
    The float twin is always the form's tf-keras network (one float reference for every method), and every
    stage after training reads the method's trained model through its integer reference
    (:func:`qtrigger.emulate.sets.extract_any_network`).
    """

    build: MethodBuilder
    check: Callable[..., None] | None = None
    train: MethodTrainer | None = None
    suffix: str = ".h5"
    save: Callable[[Any, Path], Any] | None = None
    load: Callable[[Path], Any] | None = None
    count: Callable[[Any], tuple[int, int]] | None = None
    runs: bool = True
    missing: str = ""

    def save_model(self, model, path: Path) -> Path:
        """Write ``model`` to ``path`` (its suffix is :attr:`suffix`)."""
        if self.save is not None:
            self.save(model, path)
        else:
            model.save(path)
        return Path(path)

    def load_model(self, path: Path):
        """Read a model this method saved."""
        return (self.load or load_model)(path)

    def parameters(self, model) -> tuple[int, int]:
        """(all, non-zero) trainable parameters of the trained model, after weight quantization."""
        return (self.count or count_parameters)(model)


def _build_qkeras(n_inputs, n_out, model_cfg, quant_cfg, input_type, seed):
    """QKeras on tf-keras: the form's own quantized network."""
    return form_builder(model_cfg)(n_inputs, n_out, model_cfg, quant_cfg, input_type, True, seed)


def _build_hgq(n_inputs, n_out, model_cfg, quant_cfg, input_type, seed):
    """HGQ2 on Keras 3 (:mod:`qtrigger.models.hgq`, imported only for this method: the HGQ2 world stays deferred)."""
    from qtrigger.models.hgq import build_hgq_mlp

    _check_hgq(model_cfg, quant_cfg, PruningConfig(enabled=False))
    return build_hgq_mlp(n_inputs, n_out, model_cfg, quant_cfg, input_type, seed)


def _train_hgq(model, x_train, y_train, x_val, y_val, n_out, training_cfg, quant_cfg, pruning_cfg, label,
               sample_weight=None, val_sample_weight=None):
    """HGQ2's trainer (β schedule, EBOPs penalty), deferred with the HGQ2 world."""
    from qtrigger.models.hgq import train_hgq

    return train_hgq(model, x_train, y_train, x_val, y_val, n_out, training_cfg, quant_cfg.hgq, sample_weight,
                     val_sample_weight, label=label)


def _save_hgq(model, path: Path):
    from qtrigger.models.hgq import save_hgq

    return save_hgq(model, path)


def _load_hgq(path: Path):
    from qtrigger.models.hgq import load_hgq

    return load_hgq(path)


def _count_hgq(model) -> tuple[int, int]:
    from qtrigger.models.hgq import count_hgq_parameters

    return count_hgq_parameters(model)


HGQ_RUN_FORMS = ("mlp",)


def _check_hgq(model_cfg: ModelConfig, quant_cfg: QuantizationConfig, pruning_cfg: PruningConfig) -> None:
    """HGQ2 builds the MLP only so far, and learns its own sparsity (no tfmot pruning)."""
    if model_cfg.form not in HGQ_RUN_FORMS:
        raise QTriggerError(f"quantization.method: hgq builds model.form {' or '.join(HGQ_RUN_FORMS)} only so far, "
                            f"not {model_cfg.form!r}")
    if model_cfg.batchnorm:
        raise QTriggerError("quantization.method: hgq does not fold batch normalization; set model.batchnorm: false")
    if pruning_cfg.active:
        raise QTriggerError("quantization.method: hgq learns its own sparsity (weights at 0 bits); "
                            "set pruning.enabled: false")


METHODS: dict[str, QuantMethod] = {
    "qkeras": QuantMethod(_build_qkeras),
    "hgq": QuantMethod(_build_hgq, _check_hgq, train=_train_hgq, suffix=".keras", save=_save_hgq, load=_load_hgq,
                       count=_count_hgq),
}


def register_method(name: str, method: QuantMethod) -> None:
    """Make ``method`` selectable as ``quantization.method: <name>``."""
    METHODS[name] = method
    KNOWN_METHODS.add(name)


def quant_method(quant_cfg: QuantizationConfig) -> QuantMethod:
    """The registered ``quantization.method``; a one-line error for an unknown one."""
    return registered(METHODS, quant_cfg.method, "quantization.method", "quantization method")


def model_file(quant_cfg: QuantizationConfig, which: str = "qat") -> str:
    """A run's saved model file name: ``model_qat`` with the method's suffix; the float twin is always ``.h5``."""
    return f"model_{which}{quant_method(quant_cfg).suffix if which == 'qat' else '.h5'}"


def check_runnable(model_cfg: ModelConfig, quant_cfg: QuantizationConfig, pruning_cfg: PruningConfig) -> None:
    """A one-line error, before any data is read, when ``qtrigger run`` cannot take this method and form."""
    method = quant_method(quant_cfg)
    if method.check is not None:
        method.check(model_cfg, quant_cfg, pruning_cfg)
    if not method.runs:
        raise QTriggerError(f"quantization.method: {quant_cfg.method}: qtrigger run does not take it yet: "
                            f"{method.missing}")


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
        layer = target.get_layer(name)
        shapes = [w.shape for w in layer.get_weights()]
        if [v.shape for v in values] == shapes:
            layer.set_weights(values)
        elif _kernel_and_bias_shapes(layer) == [v.shape for v in values]:  # an HGQ2 QDense: its widths stay
            for variable, value in zip((layer.kernel, layer.bias), values):
                variable.assign(value)
        else:
            raise QTriggerError(f"training.qat_init float_twin: layer {name} has weights {shapes} in the QAT "
                                f"model but {[v.shape for v in values]} in the float twin")


def _kernel_and_bias_shapes(layer) -> list[tuple]:
    """The shapes of a layer's ``kernel`` and ``bias`` variables (bias-free: the kernel only; neither: [])."""
    if getattr(layer, "kernel", None) is None:
        return []
    bias = getattr(layer, "bias", None)
    return [tuple(layer.kernel.shape)] + ([tuple(bias.shape)] if bias is not None else [])
