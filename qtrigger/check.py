"""Deprecated import path (one release): ``hls check`` lives in :mod:`qtrigger.firmware.check`."""

from qtrigger.firmware.check import (  # noqa: F401
    CheckResult,
    LayerDiagnosis,
    check_model_files,
    diagnose,
    hls_check,
    precision_profile,
)


def __getattr__(name: str):
    """Any other name of the former module from :mod:`qtrigger.firmware.check`."""
    from qtrigger.firmware import check

    if hasattr(check, name):
        return getattr(check, name)
    raise AttributeError(f"module 'qtrigger.check' has no attribute {name!r}")
