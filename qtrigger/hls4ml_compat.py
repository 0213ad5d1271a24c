"""Deprecated import path: the hls4ml adapter lives in :mod:`qtrigger.firmware.adapter`."""

from qtrigger.firmware.adapter import (  # noqa: F401
    config_from_keras_model,
    convert_from_keras_model,
    keras2_frontend,
    profiling_module,
)
