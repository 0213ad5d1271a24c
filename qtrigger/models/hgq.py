"""``quantization.method: hgq``: HGQ2 networks on Keras 3 beside QKeras on tf-keras, in one process.

Installation (``make install``): hgq2 goes into ``<venv>/hgq2`` with ``pip install --no-deps --target``, and its
own ``qkeras`` compatibility package is deleted from there. Every hgq2 release ships that package; installed
into site-packages it shadows QKeras 0.9.0 (``from qkeras import QDense`` fails, ``pip check`` stays clean and a
QKeras reinstall does not repair it). :func:`import_hgq` *appends* the directory to ``sys.path``, so nothing
found there can shadow a package of the environment. hgq2's dependencies (``keras>=3.15``, ``quantizers``)
are ordinary dependencies: TensorFlow 2.21 installs Keras 3 already, and hls4ml installs ``quantizers``.

Backend: TensorFlow (``KERAS_BACKEND=tensorflow``). It is already installed and pinned for QKeras, hls4ml's
HGQ2 converter and da4ml's tracer read the trained quantizers whatever the backend, and the run's seed, op
determinism and thread count (:func:`seed_keras`) then cover both Keras versions. tf-keras stays what
``tf.keras`` means (``TF_USE_LEGACY_KERAS=1``, set by ``import qtrigger``); HGQ2 imports ``keras`` (Keras 3).

Nothing here is imported by the QKeras path or by ``import qtrigger``: only
:data:`qtrigger.models.build.METHODS` reaches it, for ``method: hgq``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qtrigger.config import HGQConfig, ModelConfig, QuantizationConfig, TrainingConfig
from qtrigger.errors import QTriggerError, one_line
from qtrigger.fixedpoint import FixedType
from qtrigger.models.recipe import balanced, class_weights, kept_epoch, recipe_callbacks

HGQ2_PATH_ENV = "QTRIGGER_HGQ2_PATH"
HGQ2_VERSIONS = ("0.2.0",)  # measured: QKeras beside it in one process, hls4ml 1.3 converts its models
KERAS_BACKEND = "tensorflow"


def hgq2_dir() -> Path:
    """Where ``make install`` puts hgq2: ``$QTRIGGER_HGQ2_PATH``, else ``<sys.prefix>/hgq2`` (the venv's own)."""
    return Path(os.environ.get(HGQ2_PATH_ENV) or Path(sys.prefix) / "hgq2")


def import_hgq():
    """Import HGQ2 (Keras 3, TensorFlow backend) without letting its files shadow QKeras; return the module.

    A one-line error when hgq2 is not installed, or when Keras 3 is already on another backend.
    """
    backend = os.environ.setdefault("KERAS_BACKEND", KERAS_BACKEND)
    if backend != KERAS_BACKEND:
        raise QTriggerError(f"quantization.method: hgq runs Keras 3 on the {KERAS_BACKEND} backend, "
                            f"but KERAS_BACKEND={backend}")
    folder = hgq2_dir()
    if not (folder / "hgq" / "__init__.py").is_file():
        raise QTriggerError(f"quantization.method: hgq: HGQ2 is not installed in {folder} (run `make install`, or "
                            f"pip install --no-deps --target {folder} 'hgq2=={HGQ2_VERSIONS[-1]}'; "
                            f"{HGQ2_PATH_ENV} names another folder)")
    _check_no_shadow(folder)
    if str(folder) not in sys.path:
        sys.path.append(str(folder))  # appended: the environment's packages (QKeras) always come first
    import hgq

    if hgq.__version__ not in HGQ2_VERSIONS:
        raise QTriggerError(f"quantization.method: hgq: HGQ2 {hgq.__version__} in {folder} is not a measured "
                            f"version (expected {' or '.join(HGQ2_VERSIONS)})")
    return hgq


def _check_no_shadow(folder: Path) -> None:
    """Refuse an environment whose ``qkeras`` is hgq2's compatibility package instead of QKeras."""
    spec = importlib.util.find_spec("qkeras")
    origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
    if origin is not None and folder.resolve() in origin.parents:
        raise QTriggerError(f"qkeras resolves to hgq2's compatibility package in {folder}, not QKeras 0.9.0; "
                            f"delete {folder / 'qkeras'}")


def seed_keras(seed: int, threads: int) -> None:
    """Seeds (Python, NumPy, TensorFlow, Keras 3), op determinism and thread counts, as QKeras runs have them."""
    import_hgq()
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # already initialised in this process: thread counts are fixed from the first call
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _weight_config(hgq_cfg: HGQConfig, place: str):
    """A weight or bias quantizer: learned bits per element (HGQ2 ``kbi``), saturating symmetrically."""
    from hgq.config import QuantizerConfig

    return QuantizerConfig("kbi", place, b0=hgq_cfg.weight_bits, i0=hgq_cfg.weight_integer,
                           round_mode=hgq_cfg.round_mode, overflow_mode="SAT_SYM")


def _datalane_config(integer: int, frac: int, hgq_cfg: HGQConfig):
    """An input or activation quantizer: learned integer and fractional bits per element, saturating."""
    from hgq.config import QuantizerConfig

    return QuantizerConfig("kif", "datalane", i0=integer, f0=frac, round_mode=hgq_cfg.round_mode,
                           overflow_mode=hgq_cfg.overflow_mode)


def build_hgq_mlp(n_inputs: int, n_out: int, model_cfg: ModelConfig, quant_cfg: QuantizationConfig,
                  input_type: FixedType | None, seed: int = 1):
    """A Keras-3 HGQ2 MLP: (QDense → ReLU) × N → QDense logits, every width learned per element.

    Each QDense quantizes its input: the first one the network inputs (initial widths = the run's input grid,
    so an input can learn to keep fewer bits, never more), the others the previous ReLU's outputs
    (``quantization.hgq.activation_*``). The logits are the last accumulator, unquantized, as in the QKeras MLP.
    Layer names are ``dense_<i>`` and ``output``, as in every qtrigger network.
    """
    import_hgq()
    import keras
    from hgq.config import LayerConfigScope
    from hgq.layers import QDense

    hgq_cfg = quant_cfg.hgq
    first = _input_config(input_type, hgq_cfg)
    later = _datalane_config(hgq_cfg.activation_integer, hgq_cfg.activation_frac, hgq_cfg)
    with LayerConfigScope(beta0=hgq_cfg.beta, enable_ebops=True):
        inputs = keras.Input((n_inputs,), name="inputs")
        x = inputs
        widths = [*model_cfg.hidden, n_out]
        for index, width in enumerate(widths):
            last = index == len(widths) - 1
            x = QDense(width, activation=None if last else "relu", name="output" if last else f"dense_{index}",
                       kernel_initializer=keras.initializers.GlorotUniform(seed=seed + index),
                       iq_conf=first if index == 0 else later, kq_conf=_weight_config(hgq_cfg, "weight"),
                       bq_conf=_weight_config(hgq_cfg, "bias"))(x)
            if model_cfg.dropout > 0 and not last:
                x = keras.layers.Dropout(model_cfg.dropout, seed=seed + index, name=f"dropout_{index}")(x)
    return keras.Model(inputs, x, name="qtrigger_hgq")


def _input_config(input_type: FixedType | None, hgq_cfg: HGQConfig):
    """The first layer's input quantizer: the run's input grid (HGQ2 integer bits exclude the sign); it always
    saturates, as every qtrigger input does (``overflow_mode`` applies to the hidden activations)."""
    saturating = hgq_cfg.model_copy(update={"overflow_mode": "SAT"})
    if input_type is None:
        return _datalane_config(hgq_cfg.activation_integer, hgq_cfg.activation_frac, saturating)
    return _datalane_config(input_type.integer - int(input_type.signed), input_type.frac, saturating)


def saturate_quantizer(quantizer) -> None:
    """Switch a built HGQ2 fixed-point quantizer (``Quantizer`` layer) from WRAP to SAT, keeping its widths.

    Its variables become what a SAT quantizer builds, in the order Keras 3 saves them (trainable, then
    non-trainable): the integer bits turn trainable (WRAP calibrates them instead), the WRAP-only decay speed
    goes, so a saved model loads with every width in place.
    """
    from hgq.quantizer.internal.fixed_point_quantizer import get_fixed_quantizer

    inner = quantizer.quantizer
    quantizer.config.config["overflow_mode"] = "SAT"  # what a saved model rebuilds
    inner._overflow_mode = "SAT"
    inner._symmetric = False
    inner.stateless_quantizer = get_fixed_quantizer(inner.round_mode, "SAT")
    integer, decay = inner._i, getattr(inner, "_i_decay_speed", None)
    inner._non_trainable_variables[:] = [v for v in inner._non_trainable_variables
                                         if v is not integer and v is not decay]
    trainable = [v for v in inner._trainable_variables if v is not integer] + [integer]
    order = {"b": 0, "i": 1, "f": 2}  # creation order of a SAT build: KBI (b, i), KIF (i, f)
    inner._trainable_variables[:] = sorted(trainable, key=lambda v: order.get(v.name.split("/")[-1], 3))
    integer.trainable = True
    if decay is not None:
        del inner._i_decay_speed


@dataclass
class HGQTrainResult:
    """A trained HGQ2 model, its history (with ``beta`` and ``ebops`` per epoch) and the restored epoch."""

    model: object
    history: dict
    best_epoch: int
    epochs_run: int
    ebops: int = 0
    widths: dict[str, dict[str, float]] = field(default_factory=dict)


def train_hgq(model, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
              n_classes: int, cfg: TrainingConfig, hgq_cfg: HGQConfig, sample_weight: np.ndarray | None = None,
              val_sample_weight: np.ndarray | None = None, label: str = "HGQ2 model") -> HGQTrainResult:
    """Fit an HGQ2 model (logit outputs) with the β schedule, early stopping and LR reduction of QKeras runs.

    ``sample_weight`` / ``val_sample_weight``: per-row weights; with ``training.class_weight: balanced`` the
    class totals are balanced as for QKeras models (:func:`qtrigger.models.recipe.balanced`). The recipe
    (``training.keep_epoch``, ``training.lr_schedule``) is the QKeras runs' one; with ``keep_epoch: best`` the
    validation loss that picks the epoch includes β × EBOPs, so a cheaper network can win.
    """
    seed_keras(cfg.seed, cfg.threads)
    import keras
    from hgq.utils.sugar import BetaScheduler, FreeEBOPs

    binary = n_classes == 1
    loss = (keras.losses.BinaryCrossentropy(from_logits=True) if binary
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss)
    callbacks = [BetaScheduler(lambda epoch: hgq_cfg.beta_at(epoch, cfg.epochs)), FreeEBOPs(),
                 *recipe_callbacks(keras, cfg)]
    y_type = np.float32 if binary else np.int64
    weights, val_weights = _row_weights(y_train, sample_weight, cfg, n_classes), None
    if val_sample_weight is not None:
        val_weights = _row_weights(y_val, val_sample_weight, cfg, n_classes)
    validation = (x_val.astype(np.float32), y_val.astype(y_type))
    if val_weights is not None:
        validation = (*validation, val_weights)
    if cfg.verbose:
        print(f"training {label}: {len(x_train)} rows, {cfg.epochs} epochs max, β {hgq_cfg.beta:g}"
              + (f" → {hgq_cfg.beta_final:g}" if hgq_cfg.beta_final is not None else ""))
    history = model.fit(x_train.astype(np.float32), y_train.astype(y_type), validation_data=validation,
                        epochs=cfg.epochs, batch_size=cfg.batch_size, callbacks=callbacks, shuffle=True,
                        sample_weight=weights, verbose=2 if cfg.verbose else 0)
    logs = {k: [float(v) for v in values] for k, values in history.history.items()}
    val_loss = logs.get("val_loss", [])
    return HGQTrainResult(model, logs, kept_epoch(cfg, val_loss), len(val_loss),
                          ebops(model), learned_widths(model))


def _row_weights(labels: np.ndarray, weights: np.ndarray | None, cfg: TrainingConfig,
                 n_classes: int) -> np.ndarray | None:
    """Per-row weights as QKeras training uses them: the given ones (or 1), class-balanced when configured."""
    if weights is None and cfg.class_weight != "balanced":
        return None
    per_row = np.ones(len(labels)) if weights is None else np.asarray(weights, np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if cfg.class_weight == "balanced":
        k = 2 if n_classes == 1 else n_classes
        class_weights(labels, k)  # raises on an empty class
        per_row = balanced(per_row, labels, k)
    return per_row.astype(np.float32)


def count_hgq_parameters(model) -> tuple[int, int]:
    """(all, non-zero) kernel and bias values of a trained HGQ2 MLP after its learned quantizers (0-bit weights
    count as zero)."""
    import keras

    arrays = []
    for layer in model.layers:
        if type(layer).__name__ != "QDense":
            continue
        arrays.append(keras.ops.convert_to_numpy(layer.kq(layer.kernel, training=False)))
        if layer.bq is not None:
            arrays.append(keras.ops.convert_to_numpy(layer.bq(layer.bias, training=False)))
    return sum(a.size for a in arrays), sum(int(np.count_nonzero(a)) for a in arrays)


def ebops(model) -> int:
    """HGQ2's resource estimate of the model's present widths (effective bit operations)."""
    import keras
    from hgq.layers import QLayerBase

    total = 0
    for layer in model._flatten_layers():
        if isinstance(layer, QLayerBase) and layer.enable_ebops and layer._ebops is not None:
            total += int(keras.ops.convert_to_numpy(layer._ebops))
    return total


def learned_widths(model) -> dict[str, dict[str, float]]:
    """Per QDense: mean learned bits of its weights and of its inputs, and the share of weights at 0 bits."""
    import keras

    widths = {}
    for layer in model.layers:
        if type(layer).__name__ != "QDense":
            continue
        kernel_bits = keras.ops.convert_to_numpy(layer.kq.bits_(layer.kernel.shape))
        input_bits = keras.ops.convert_to_numpy(layer.iq.bits_((1, *layer.input.shape[1:])))
        widths[layer.name] = {"weight_bits_mean": float(np.mean(kernel_bits)),
                              "input_bits_mean": float(np.mean(input_bits)),
                              "zero_bit_weights": float(np.mean(kernel_bits <= 0))}
    return widths


def save_hgq(model, path: Path) -> Path:
    """Save a trained HGQ2 model as a Keras-3 ``.keras`` file."""
    model.save(Path(path))
    return Path(path)


def load_hgq(path: Path):
    """Load a ``.keras`` HGQ2 model saved by :func:`save_hgq` (HGQ2's layers register themselves with Keras 3)."""
    import_hgq()
    import hgq.layers  # noqa: F401  (registers the serializable layers)
    import keras

    try:
        return keras.models.load_model(Path(path), compile=False)
    except Exception as err:  # noqa: BLE001 (Keras raises many types; the user gets one line)
        raise QTriggerError(f"{path}: not a Keras-3 model qtrigger can read with HGQ2 ({one_line(err)})") from None
