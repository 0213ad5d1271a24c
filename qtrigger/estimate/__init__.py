"""Hardware estimates without a vendor tool (every result tagged ``verification: "estimate"``).

- :mod:`~qtrigger.estimate.latency` — analytic model of hls4ml's Latency strategy, the
  per-event view (jets per event, time multiplexing) and the budget check.
- :mod:`~qtrigger.estimate.sets` — a DeepSets network's parts (φ per slot, pooling) and its LUT
  calibration on yosys.
- :mod:`~qtrigger.estimate.da` — hls4ml's distributed-arithmetic kernel cost (da4ml).
- :mod:`~qtrigger.estimate.result` — :class:`HardwareEstimate`, the stage's typed result,
  made by :func:`estimate_hardware`.

Vendor reports (``hls-report``, ``synthesis-report``) are read by :mod:`qtrigger.firmware.vendor`.
"""

from qtrigger.estimate.latency import Estimate, check_budget, estimate_latency_strategy, per_event
from qtrigger.estimate.result import HardwareEstimate, estimate_hardware

__all__ = ["Estimate", "HardwareEstimate", "check_budget", "estimate_hardware", "estimate_latency_strategy", "per_event"]
