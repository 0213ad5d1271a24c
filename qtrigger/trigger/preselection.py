"""``trigger.preselection``: the fixed ``ht``-family seed an event-level network's events must pass first.

Also the check that a rate sample holds the low-pTHat bins the preselection reaches down to.
"""

from __future__ import annotations

import numpy as np

from qtrigger.data.samples import generator_cut_gev
from qtrigger.errors import QTriggerError
from qtrigger.inputs.event import EventInputs
from qtrigger.inputs.seed_jets import min_jet_pt
from qtrigger.trigger.seeds import Seed


def preselection_seed(config, words) -> Seed | None:
    """``trigger.preselection`` as the ``ht``-family seed it is (None: every event passes)."""
    p = config.trigger.preselection
    if p is None:
        return None
    pt_code = int(words.pt_code(p.jet_pt_gev)) if p.jet_pt_gev is not None else None
    return Seed("ht", int(p.min_jets), pt_code, None, int(words.pt_code(p.ht_gev)))


def preselect(config, built: EventInputs, words) -> np.ndarray:
    """Per event: passes ``trigger.preselection`` on the seed's words."""
    seed = preselection_seed(config, words)
    return np.ones(built.n_events, bool) if seed is None else seed.fires(built.jets)


def check_preselection(config, labels: np.ndarray, preselected: np.ndarray, where: str) -> None:
    """One-line error when the preselection keeps no signal or no background event."""
    p = config.trigger.preselection
    for value, name in ((1, "signal"), (0, "background")):
        total = int((labels == value).sum())
        kept = int((preselected & (labels == value)).sum())
        if total and kept == 0:
            raise QTriggerError(f"key trigger.preselection {p.model_dump() if p else None}: keeps no {name} event "
                                f"(0 of {total} in the {where}); loosen it")
        if total == 0:
            raise QTriggerError(f"features.level event: no {name} events in the {where} (data.samples roles)")


def preselection_leading_jet_gev(config) -> float:
    """The lowest leading-jet pT an event passing the preselection can have (GeV)."""
    t = config.trigger
    min_pt = min_jet_pt(config)
    p = t.preselection
    if p is None:
        return float(min_pt)
    jet = (p.jet_pt_gev if p.jet_pt_gev is not None else min_pt) if p.min_jets > 0 else min_pt
    return float(max(jet, min_pt, p.ht_gev / max(t.seed_jets, config.features.event_jets)))


def check_rate_bins(config, info) -> None:
    """One-line error when the rate sample lacks the low-pTHat bins the preselection needs.

    A sample generated above pTHat c is complete only for leading jets above ``trigger.bias_factor`` x c;
    the preselection must not accept events below that.
    """
    cut = generator_cut_gev(info)
    if cut is None:
        return
    needed = preselection_leading_jet_gev(config)
    if needed < config.trigger.bias_factor * cut:
        raise QTriggerError(
            f"rate sample {info.where()} starts at pTHat {cut:g} GeV (complete above ~{config.trigger.bias_factor * cut:g} "
            f"GeV leading-jet pT), but trigger.preselection accepts events with a leading jet down to {needed:g} GeV: "
            "add the lower pTHat bins or tighten the preselection")
