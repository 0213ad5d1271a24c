"""The hardware-estimate stage of a run as one typed result."""

from __future__ import annotations

from dataclasses import dataclass

from qtrigger.emulate.network import QuantizedNetwork
from qtrigger.estimate.da import da_estimate
from qtrigger.estimate.latency import Estimate, check_budget, estimate_latency_strategy, per_event


@dataclass
class HardwareEstimate:
    """Analytic estimate of one instance, the per-event view, the budget check, optional DA cost.

    :meth:`to_json` gives the keys the run writes into ``metrics.json["hls"]``.
    """

    estimate: Estimate
    per_event: dict
    budget: dict
    da: dict | None = None

    def to_json(self) -> dict:
        """``estimate``, ``estimate_per_event``, ``budget`` (and ``estimate_da`` with the DA strategy)."""
        out = {"estimate": self.estimate.to_dict(), "estimate_per_event": self.per_event, "budget": self.budget}
        if self.da is not None:
            out["estimate_da"] = self.da
        return out

    def add_da(self, project, network: QuantizedNetwork, hls_cfg) -> "HardwareEstimate":
        """Add hls4ml's DA kernel cost of the converted ``project`` (``estimate_da``)."""

        self.da = da_estimate(project, network, hls_cfg.clock_period_ns, part=hls_cfg.part)
        return self


def estimate_hardware(network: QuantizedNetwork, hls_cfg, project=None, input_words=None) -> HardwareEstimate:
    """Latency-strategy estimate, per event and budget from ``hls_cfg`` (an :class:`HLSConfig`).

    ``input_words``: the word each network input arrives in (the input level's
    :meth:`~qtrigger.levels.base.InputLevel.input_words`; None: all at the common input type).
    With ``project`` (the converted :class:`~qtrigger.firmware.convert.HLSProject`) and
    ``hls_cfg.strategy == "distributed_arithmetic"``, hls4ml's DA kernel cost is added.
    """
    estimate = estimate_latency_strategy(network, hls_cfg.clock_period_ns, hls_cfg.reuse_factor, hls_cfg.part,
                                         input_words)
    event = per_event(estimate, hls_cfg.jets_per_event, hls_cfg.instance_mode,
                      time_multiplexing=hls_cfg.time_multiplexing)
    budget = check_budget(estimate, hls_cfg.latency_budget_ns, hls_cfg.resource_budget)
    result = HardwareEstimate(estimate, event, budget)
    if project is not None and hls_cfg.strategy == "distributed_arithmetic":
        result.add_da(project, network, hls_cfg)
    return result
