"""Deprecated import path: the hls4ml adapter lives in :mod:`qtrigger.firmware.adapter`."""

from qtrigger.firmware.adapter import (  # noqa: F401
    config_from_keras_model,
    convert_from_keras_model,
    keras2_frontend,
    profiling_module,
)


def __getattr__(name: str):
    """Any other name of the former module from :mod:`qtrigger.firmware.adapter`."""
    from qtrigger.firmware import adapter

    if hasattr(adapter, name):
        return getattr(adapter, name)
    raise AttributeError(f"module 'qtrigger.hls4ml_compat' has no attribute {name!r}")
