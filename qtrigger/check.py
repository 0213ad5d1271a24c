"""Deprecated import path (one release): ``hls check`` lives in :mod:`qtrigger.firmware.check`."""

from qtrigger.firmware.check import (  # noqa: F401
    CheckResult,
    LayerDiagnosis,
    check_model_files,
    diagnose,
    hls_check,
    precision_profile,
)
