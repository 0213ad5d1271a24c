"""Rates per bunch crossing at pileup: pTHat-binned hard events and zero-bias crossings at one mu, each crossing
counted once by its hardest interaction (docs/trigger.md, "Pileup: rates per bunch crossing")."""

from __future__ import annotations

import math

import numpy as np

from qtrigger.data.reader import open_events_tree
from qtrigger.data.samples import (
    MB_TO_CM2,
    SampleInfo,
    _normalised,
    event_xsec_weights_mb,
    read_runs,
    read_sample_info,
)
from qtrigger.errors import QTriggerError


def crossing_weights_hz(binned: SampleInfo, zero_bias: SampleInfo, binned_file: np.ndarray, binned_weight: np.ndarray,
                        binned_pthat: np.ndarray, binned_overlay_pthat: np.ndarray, zero_bias_hardest: np.ndarray,
                        lumi_cm2s: float, crossing_rate_hz: float,
                        binned_files: list[str] | tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One rate weight (Hz) per bunch crossing for pTHat-binned hard events and zero-bias crossings at the same mu.

    A crossing is counted once, by its hardest interaction (docs/trigger.md, "Rates per bunch crossing"):

    - a binned event weighs ``L * w_abs`` (:func:`event_xsec_weights_mb`, mb -> cm^2) when its overlay's hardest
      interaction (``Pileup_maxPtHat``) is not harder than its own (``Generator_binvar``), else 0 (that crossing
      belongs to the bin of the harder interaction);
    - a zero-bias crossing weighs ``crossing_rate_hz / N`` (N: the crossings given) when its hardest interaction
      (``Generator_binvar``) lies below the lowest bin edge, else 0 (the binned samples hold those crossings).

    The stitching of the binned sample alone counts a crossing once per hard interaction in it: at mu = 60 loose
    cuts are overcounted many times (tests/test_pileup.py). Returns (binned weights, zero-bias weights).
    """
    if not zero_bias.is_minbias:
        raise QTriggerError(f"crossing weights: {zero_bias.where()} is not a zero-bias sample (isMinBias in Runs)")
    if binned.pthat_min is None:
        raise QTriggerError(f"crossing weights: {binned.where()} has no pthatMin in Runs (no lowest bin edge)")
    if binned.mu is not None and zero_bias.mu is not None and not math.isclose(binned.mu, zero_bias.mu, rel_tol=1e-6):
        raise QTriggerError(f"crossing weights: the binned sample is at mu = {binned.mu:g}, the zero-bias one at "
                            f"mu = {zero_bias.mu:g} ({zero_bias.where()}); combine samples of one pileup")
    own = np.asarray(binned_pthat, dtype=np.float64)
    keep = np.asarray(binned_overlay_pthat, dtype=np.float64) <= own
    w_binned = lumi_cm2s * MB_TO_CM2 * event_xsec_weights_mb(binned, binned_file, binned_weight, binned_files) * keep
    hardest = np.asarray(zero_bias_hardest, dtype=np.float64)
    w_zero_bias = np.where(hardest < binned.pthat_min, crossing_rate_hz / max(1, len(hardest)), 0.0)
    return w_binned, w_zero_bias


def rate_sample_info(files: list[str], normalisation: str) -> SampleInfo:
    """The normalisation of a rate sample: :func:`read_sample_info`, or with ``normalisation: crossing`` the
    combined sample of pTHat-binned hard events and zero-bias crossings (``isMinBias``) at one mu.

    The combined sample has no generator cut (``pthat_min`` None: the zero-bias crossings hold everything below
    the lowest bin edge) and carries its two parts in ``crossing_parts``.
    """
    if normalisation != "crossing":
        return read_sample_info(files)
    files = [str(f) for f in files]
    flags = {f: bool(read_runs(f).get("minbias")) for f in files}
    zero_bias, binned = [f for f in files if flags[f]], [f for f in files if not flags[f]]
    if not zero_bias or not binned:
        raise QTriggerError(f"trigger.normalisation crossing needs pTHat-binned hard events and zero-bias crossings "
                            f"(isMinBias in Runs) among the rate files; got {len(binned)} binned and {len(zero_bias)} "
                            f"zero-bias file(s) in {', '.join(files)}")
    hard, crossings = read_sample_info(binned), read_sample_info(zero_bias)
    if not crossings.mu:
        raise QTriggerError(f"trigger.normalisation crossing: the zero-bias sample {crossings.where()} records no "
                            "pileup (pileupMu in Runs); generate it with --process minbias --pileup MU")
    if hard.pthat_min is None:
        raise QTriggerError(f"trigger.normalisation crossing: {hard.where()} has no pthatMin in Runs (no lowest bin "
                            "edge to join the zero-bias crossings at)")
    if hard.mu is None or not math.isclose(hard.mu, crossings.mu, rel_tol=1e-6):
        raise QTriggerError(f"trigger.normalisation crossing: the binned sample is at mu = {hard.mu or 0:g}, the "
                            f"zero-bias one at mu = {crossings.mu:g} ({crossings.where()}); combine samples of one pileup")
    return SampleInfo(n_events=hard.n_events + crossings.n_events, sumw=hard.sumw + crossings.sumw,
                      sumw2=hard.sumw2 + crossings.sumw2, xsec_mb=hard.xsec_mb, xsec_err_mb=hard.xsec_err_mb,
                      is_minbias=False, pthat_min=None, files=tuple(files), missing=hard.missing + crossings.missing,
                      bins=hard.bins, mu=crossings.mu, sigma_inel_mb=crossings.sigma_inel_mb,
                      crossing_parts=(hard, crossings))


CROSSING_BRANCHES = ("Generator_binvar", "Pileup_maxPtHat")


def _event_branches(files, event_file: np.ndarray, event_entry: np.ndarray, branches, tree: str) -> dict:
    """``branches`` per event (``event_file`` indexes ``files``, ``event_entry`` is the entry in its tree)."""
    out = {b: np.zeros(len(event_file)) for b in branches}
    for k in np.unique(event_file):
        rows = np.flatnonzero(event_file == k)
        events = open_events_tree(files[k], tree)
        lacking = [b for b in branches if b not in events.keys()]
        if lacking:
            raise QTriggerError(f"{files[k]}: no {', '.join(lacking)} branch (needed for rates per bunch crossing; "
                                "generate the sample with --pileup)")
        arrays = events.arrays(list(branches), library="np")
        for b in branches:
            out[b][rows] = arrays[b][event_entry[rows]]
    return out


def table_crossing_weights_hz(info: SampleInfo, events: np.ndarray, files, event_file: np.ndarray,
                              event_entry: np.ndarray, gen_weight: np.ndarray, lumi_cm2s: float,
                              crossing_rate_hz: float, tree: str = "Events") -> np.ndarray:
    """Per event of a table (``event_file`` indexing ``files``): its rate weight in Hz per bunch crossing
    (:func:`crossing_weights_hz`) for the combined sample ``info`` (:func:`rate_sample_info`), normalised on the
    ``events`` given (each pTHat bin to its cross-section, the zero-bias crossings to the crossing rate: a random
    half of the sample gives the full rate); 0 for other events, vetoed binned events and zero-bias crossings
    above the lowest bin edge."""
    hard, crossings = info.crossing_parts
    event_file, event_entry = np.asarray(event_file), np.asarray(event_entry)
    events = np.asarray(events, dtype=bool)
    paths = np.array([_normalised(str(f)) for f in files])
    in_hard = events & np.isin(paths[event_file], [_normalised(f) for f in hard.files])
    in_zero_bias = events & np.isin(paths[event_file], [_normalised(f) for f in crossings.files])
    mine = in_hard | in_zero_bias
    values = _event_branches(files, event_file[mine], event_entry[mine], CROSSING_BRANCHES, tree)
    branches = {}
    for name, v in values.items():
        branches[name] = np.zeros(len(event_file))
        branches[name][mine] = v
    w_hard, w_zero_bias = crossing_weights_hz(
        hard, crossings, event_file[in_hard], np.asarray(gen_weight)[in_hard],
        branches["Generator_binvar"][in_hard], branches["Pileup_maxPtHat"][in_hard],
        branches["Generator_binvar"][in_zero_bias], lumi_cm2s, crossing_rate_hz, files)
    weights = np.zeros(len(event_file))
    weights[in_hard], weights[in_zero_bias] = w_hard, w_zero_bias
    return weights


def overlay_veto_keep(info: SampleInfo, files, event_file: np.ndarray, event_entry: np.ndarray,
                      tree: str = "Events") -> np.ndarray:
    """Per event: False for a pTHat-binned event at pileup whose overlay holds a harder interaction than its own
    (that crossing belongs to the harder interaction's bin; :func:`crossing_weights_hz`), else True. All True
    for an unbinned sample or one without pileup."""
    event_file = np.asarray(event_file)
    if not (info.mu and info.is_stitched and info.pthat_min is not None):
        return np.ones(len(event_file), dtype=bool)
    values = _event_branches(files, event_file, np.asarray(event_entry), CROSSING_BRANCHES, tree)
    return values["Pileup_maxPtHat"] <= values["Generator_binvar"]


def shared_interaction_groups(files, event_file: np.ndarray, event_entry: np.ndarray, events: np.ndarray,
                              tree: str = "Events") -> np.ndarray | None:
    """Per event of the table a group label for :mod:`qtrigger.trigger.shared`, or None when no two of the
    selected ``events`` share an interaction.

    Zero-bias crossings at mu > 0 drawn from a pileup library share their hardest interaction when it is the same
    library interaction: its pTHat (``Generator_binvar``, full float32) is then equal to the bit, which distinct
    Pythia interactions practically never are. Such crossings get that value as their label; every other event
    (binned hard events: their own interaction is the hardest; mu = 0; a hardest pTHat of 0) is its own group.
    """
    event_file, event_entry = np.asarray(event_file), np.asarray(event_entry)
    events = np.asarray(events, dtype=bool)
    label = -1.0 - np.arange(len(event_file), dtype=np.float64)  # unique, below any pTHat
    for k in np.unique(event_file[events]):
        runs = read_runs(str(files[k]))
        if not (runs.get("minbias") and (runs.get("mu") or 0) > 0):
            continue
        rows = np.flatnonzero(events & (event_file == k))
        hardest = _event_branches(files, event_file[rows], event_entry[rows], ("Generator_binvar",), tree)
        value = hardest["Generator_binvar"].astype(np.float32).astype(np.float64)
        label[rows] = np.where(value > 0, value, label[rows])
    selected = label[events]
    return label if len(np.unique(selected)) < len(selected) else None
