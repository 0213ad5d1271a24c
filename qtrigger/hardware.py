"""Deprecated import path (one release): the estimate is :mod:`qtrigger.estimate.latency`,
device facts are :mod:`qtrigger.device`, vendor builds and reports are :mod:`qtrigger.firmware.vendor`."""

from qtrigger.device import (  # noqa: F401
    CLOCK_UNCERTAINTY,
    DEFAULT_PART,
    DEVICE_RESOURCES,
    FAMILIES,
    DeviceFamily,
    device_family,
)
from qtrigger.estimate.latency import (  # noqa: F401
    METHOD,
    Estimate,
    activation_cost,
    check_budget,
    classify_product,
    csd_digits,
    dsps_per_product,
    estimate_latency_strategy,
    estimate_layer,
    per_event,
)
from qtrigger.firmware.vendor import (  # noqa: F401
    build_command,
    build_project,
    parse_csynth_xml,
    parse_vivado_synth_rpt,
    read_reports,
)

__all__ = [
    "Estimate",
    "DeviceFamily",
    "FAMILIES",
    "device_family",
    "classify_product",
    "csd_digits",
    "estimate_latency_strategy",
    "per_event",
    "check_budget",
    "read_reports",
    "parse_csynth_xml",
    "parse_vivado_synth_rpt",
    "build_command",
    "build_project",
]


def __getattr__(name: str):
    """Any other name of the former module (including private helpers) from its new home."""
    from qtrigger import device
    from qtrigger.estimate import latency
    from qtrigger.firmware import vendor

    for module in (latency, vendor, device):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'qtrigger.hardware' has no attribute {name!r}")
