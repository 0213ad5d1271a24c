"""Deprecated import path (one release) for the former ``qtrigger/da.py``.

hls4ml's DA kernel cost is :mod:`qtrigger.estimate.da`; da4ml's Verilog, Verilator and
the RTL check are :mod:`qtrigger.firmware.rtl`. (A package rather than a ``da.py`` module
so that git follows the move of ``da.py`` to ``firmware/rtl.py`` when branches merge.)
"""

from qtrigger.estimate.da import METHOD, da_estimate, kernel_statistics, verify_da_firmware  # noqa: F401
from qtrigger.firmware.rtl import (  # noqa: F401
    HWCONFIG,
    INSTALL_HINT,
    RAW_EXTRA_BITS,
    ROUNDINGS,
    SOLVER_OPTIONS,
    RtlCheckResult,
    da4ml_trace,
    default_latency_cutoff,
    explain_qkeras_differences,
    first_divergence,
    raw_input_type,
    rounding_disagreements,
    rounding_reference,
    rtl_check,
    rtl_check_run,
    rtl_stimulus,
    rtl_summary,
    verilator_environment,
    verilator_version,
    verilog_summary,
)
from qtrigger.device import DEFAULT_PART  # noqa: F401


def __getattr__(name: str):
    """Any other name of the former module (including private helpers) from its new home."""
    from qtrigger.estimate import da as kernel_cost
    from qtrigger.firmware import rtl

    for module in (rtl, kernel_cost):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'qtrigger.da' has no attribute {name!r}")
