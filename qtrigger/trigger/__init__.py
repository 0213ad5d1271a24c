"""Trigger physics (after ``estimate``, before ``levels``): seeds, rates and efficiencies on firmware codes.

``rates`` (normalisation, errors, n_eff) -> ``thresholds`` (calibration) -> ``efficiency``
(Clopper-Pearson, paired gains) -> ``seeds`` (menu families and their grid search) -> ``working_points``
(tuned on the calibration half, quoted on the held-out half) -> ``study`` (a per-jet run's typed
:class:`TriggerResult`) and ``event_study`` (an event-level run's) -> ``summary`` (CLI lines, target
verdicts). ``preselection`` is the event network's fixed ``ht`` seed; ``references`` holds the pT-cut,
BDT and GBDT baselines; ``decision`` and ``event_decision`` the accept-bit HLS C++ and its g++ check;
``event_rtl`` the whole event seed as da4ml Verilog; ``plots`` the figures. The jets' words and event
keys come from :mod:`qtrigger.inputs.seed_jets`. No TensorFlow here.

Caveat: the jets are particle-level (no detector response): a pT-threshold seed's per-jet
efficiency vs jet pT is a step at the cut, not a physical turn-on.
"""

from qtrigger.data.samples import RUNS_OPTIONAL, RUNS_REQUIRED, RUNS_XSEC, SampleInfo, read_sample_info
from qtrigger.inputs.seed_jets import event_fires, event_keys, events_of, leading_jet_pt
from qtrigger.trigger.decision import ap_types_dir, check_decision_csim, random_decision_events, write_decision_hls
from qtrigger.trigger.efficiency import EfficiencyResult, efficiencies
from qtrigger.trigger.plots import (
    ONE_SIGMA,
    STEP_NOTE,
    binned_efficiency,
    plot_binned_efficiency,
    plot_event_efficiency,
    plot_jet_efficiency,
    plot_rate_vs_efficiency,
    rate_efficiency_curve,
)
from qtrigger.trigger.rates import (
    DEFAULT_LUMI_CM2S,
    LHC_BUNCHES,
    LHC_F_REV_HZ,
    MB_TO_CM2,
    RateFn,
    SampleRate,
    binomial_fraction,
    rate_cross_section,
    rate_zero_bias,
    rates_at,
    weighted_fraction,
)
from qtrigger.trigger.references import BDTResult, PtCutResult, bdt_reference, pt_cut_for_rate
from qtrigger.trigger.thresholds import ThresholdResult, calibrate_threshold

__all__ = [
    "BDTResult", "DEFAULT_LUMI_CM2S", "EfficiencyResult", "LHC_BUNCHES", "LHC_F_REV_HZ", "MB_TO_CM2", "ONE_SIGMA",
    "PtCutResult", "RUNS_OPTIONAL", "RUNS_REQUIRED", "RUNS_XSEC", "RateFn", "STEP_NOTE", "SampleInfo", "SampleRate",
    "ThresholdResult", "ap_types_dir", "bdt_reference", "binned_efficiency", "binomial_fraction", "calibrate_threshold",
    "check_decision_csim", "efficiencies", "event_fires", "event_keys", "events_of", "leading_jet_pt",
    "plot_binned_efficiency", "plot_event_efficiency", "plot_jet_efficiency", "plot_rate_vs_efficiency",
    "pt_cut_for_rate", "random_decision_events", "rate_cross_section", "rate_efficiency_curve", "rate_zero_bias",
    "rates_at", "read_sample_info", "weighted_fraction", "write_decision_hls",
]
