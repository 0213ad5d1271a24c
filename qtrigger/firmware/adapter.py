"""The one place that works around hls4ml 1.3 choosing its Keras-3 front end.

Why this exists: TensorFlow 2.21 installs Keras 3 as ``keras``, while qtrigger's models
are tf-keras (Keras 2) models with QKeras layers. hls4ml 1.3 decides which front end to
use by running ``import keras`` and checking ``keras.__version__ >= '3.0'`` in three
places: ``convert_from_keras_model``, ``utils.config.config_from_keras_model`` and
``model.profiling`` (which then treats a tf-keras model as "not profilable"). For our
models that picks the wrong converter, which fails on QKeras layers. Inside
:func:`keras2_frontend`, ``import keras`` yields ``tf_keras`` so every check picks the
Keras-2 converter; the real module is restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

os.environ["TF_USE_LEGACY_KERAS"] = "1"

_LOCK = threading.RLock()


@contextlib.contextmanager
def keras2_frontend():
    """Within this block, hls4ml sees tf-keras as ``keras`` and uses its Keras-2 path."""
    import tf_keras

    with _LOCK:
        saved = sys.modules.get("keras")
        sys.modules["keras"] = tf_keras
        profiling = _patch_profiling(tf_keras)
        try:
            yield
        finally:
            if saved is None:
                sys.modules.pop("keras", None)
            else:
                sys.modules["keras"] = saved
            if profiling is not None:
                profiling[0].keras = profiling[1]


def _patch_profiling(tf_keras):
    """Point hls4ml.model.profiling's module-level ``keras`` at tf-keras for the block."""
    try:
        import hls4ml.model.profiling as profiling
    except ImportError:  # profiling needs pandas/seaborn; conversion does not
        return None
    saved = getattr(profiling, "keras", None)
    profiling.keras = tf_keras
    activations = getattr(profiling, "__keras_activations", None)
    if isinstance(activations, list) and activations and tf_keras.layers.Activation not in activations:
        activations.append(tf_keras.layers.Activation)
    return profiling, saved


def config_from_keras_model(model, **kwargs):
    """``hls4ml.utils.config_from_keras_model`` through the Keras-2 front end."""
    import hls4ml

    with keras2_frontend():
        return hls4ml.utils.config_from_keras_model(model, **kwargs)


def convert_from_keras_model(model, **kwargs):
    """``hls4ml.converters.convert_from_keras_model`` through the Keras-2 front end."""
    import hls4ml

    with keras2_frontend():
        return hls4ml.converters.convert_from_keras_model(model, **kwargs)


def profiling_module():
    """hls4ml's profiling module, usable on tf-keras models inside :func:`keras2_frontend`."""
    import hls4ml.model.profiling as profiling

    return profiling
