"""Sample normalisation from ``Runs`` trees: one process, possibly stitched from pTHat bins.

This module is the one owner of ``Runs``-tree reading and cross-section bookkeeping
(the generator writes the trees, the trigger code turns them into rates).

``Runs`` branches
    Required: ``genEventCount``, ``genEventSumw``, ``genEventSumw2`` (older NanoAOD spells
    the sums ``genEventSumw_``/``genEventSumw2_``). Optional, written by
    :mod:`qtrigger.generate` and absent from real CMS NanoAOD: ``genXsec_mb``,
    ``genXsecErr_mb`` (Pythia's ``sigmaGen``/``sigmaErr`` in mb), ``isMinBias``,
    ``pthatMin``, ``pthatMax`` (+inf for an open bin) and ``genFilterEff`` (fraction of
    generated events kept by a generator-level filter; 1 when absent). Several entries of
    one file are summed like several files of one bin, and must agree on the bin.

pTHat bins
    A file belongs to the bin ``[pthatMin, pthatMax)``; a file without ``pthatMax`` is the
    open bin ``[pthatMin, inf)`` (every sample written before binning existed, so those
    keep working unchanged), a file without ``pthatMin`` (real NanoAOD) is one bin with no
    pTHat information. Files of the *same* bin combine as before: counts and weight sums
    add, the cross-section is averaged weighted by events, error
    ``sqrt(sum (n_k err_k)^2) / sum n_k``. *Different* bins of one process are stitched:
    total ``sigma = sum_b sigma_b eps_b`` (``eps_b`` = ``genFilterEff``), error
    ``sqrt(sum (eps_b err_b)^2)``. Refused with a one-line error naming the files:
    overlapping bins, a bin mixed with a file that has no ``pthatMin``, minimum-bias mixed
    with non-minimum-bias files, stitching a bin that has no cross-section.

Per-event absolute weight (:func:`event_xsec_weights_mb`)
    An event finds its bin through its *file* (one file, or several files, per bin; never
    two bins in one file): ``w_abs = sigma_b eps_b w / W_b`` in mb, with ``w`` its
    ``genWeight`` and ``W_b`` the bin's weight sum, so the sum of ``w_abs`` over all
    generated events is the total cross-section, and a rate is ``L * sum_fired w_abs``
    with variance ``L^2 * sum_fired w_abs^2``. ``W_b`` is ``genEventSumw`` when every event
    of the bin is given, else the sum over the given events of the bin (a random subset
    such as a held-out half: each bin is then normalised on its own, which keeps the
    estimate unbiased when the subset's share of a bin fluctuates).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtrigger.data.reader import open_events_tree
from qtrigger.errors import QTriggerError

RUNS_REQUIRED = ("genEventCount", "genEventSumw", "genEventSumw2")
RUNS_XSEC = ("genXsec_mb", "genXsecErr_mb")
RUNS_OPTIONAL = ("isMinBias", "pthatMin")
RUNS_BINNING = ("pthatMax", "genFilterEff")  # optional too; files without them are one open bin, no filter
RUNS_PILEUP = ("pileupMu", "sigmaInel_mb")  # optional: files without them are at mu = 0 (or say nothing)
MB_TO_CM2 = 1e-27
SUMW_REL_TOL = 1e-3  # genWeight is float32 in the file; its sum agrees with genEventSumw to ~1e-6


@dataclass(frozen=True)
class PtHatBin:
    """One pTHat bin ``[pthat_min, pthat_max)`` of a process and the files that make it up.

    ``pthat_min`` is None when the files store no ``pthatMin`` (real NanoAOD);
    ``pthat_max`` is ``math.inf`` for an open bin. ``xsec_mb`` is the generator cross-section
    *before* the filter; the bin contributes ``xsec_mb * filter_efficiency``.
    """

    pthat_min: float | None
    pthat_max: float
    xsec_mb: float | None
    xsec_err_mb: float | None
    filter_efficiency: float
    n_events: int
    sumw: float
    sumw2: float
    files: tuple[str, ...]

    @property
    def xsec_filtered_mb(self) -> float | None:
        """``sigma_b * eps_b``: the cross-section this bin's events stand for (None if unknown)."""
        return None if self.xsec_mb is None else self.xsec_mb * self.filter_efficiency

    def label(self) -> str:
        """``[15, 30)`` / ``[170, inf)`` / ``no pTHat``, for messages and tables."""
        if self.pthat_min is None:
            return "no pTHat"
        return f"[{self.pthat_min:g}, {self.pthat_max:g})"


@dataclass(frozen=True)
class SampleInfo:
    """Normalisation of one process (one or more files, one or more pTHat bins).

    ``xsec_mb``/``xsec_err_mb`` are the total (stitched, filter-corrected) cross-section, None
    when the files do not store one (real CMS NanoAOD). ``pthat_min`` is the lowest bin edge
    (None if not stored). ``n_events``/``sumw``/``sumw2`` add over all files; with several
    bins ``sumw`` mixes bins of different weight scales, so rates must use
    :func:`event_xsec_weights_mb` (``is_stitched``). ``missing`` lists ``"file: branch"`` for
    every absent optional branch of ``RUNS_XSEC + RUNS_OPTIONAL``.
    """

    n_events: int
    sumw: float
    sumw2: float
    xsec_mb: float | None
    xsec_err_mb: float | None
    is_minbias: bool
    pthat_min: float | None
    files: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    bins: tuple[PtHatBin, ...] = ()
    mu: float | None = None
    sigma_inel_mb: float | None = None
    # normalisation "crossing": (binned hard events, zero-bias crossings) at one mu (:func:`rate_sample_info`)
    crossing_parts: tuple["SampleInfo", "SampleInfo"] | None = None

    @property
    def is_stitched(self) -> bool:
        """True when the sample has more than one pTHat bin."""
        return len(self.bins) > 1

    def where(self) -> str:
        """The files, for messages."""
        return ", ".join(self.files) or "this sample"


# --------------------------------------------------------------------------- one file


def read_runs(path: str) -> dict:
    """One file's ``Runs`` tree summed over its entries: counts, sums, cross-section, bin, flags.

    Keys: ``path``, ``n``, ``sumw``, ``sumw2``, ``missing`` (absent optional branches) and,
    where stored, ``xsec``/``xsec_err`` (event-weighted over entries), ``minbias``,
    ``pthat`` (pthatMin), ``pthat_max``, ``filter_eff``.
    """

    runs = open_events_tree(path, "Runs")
    present = set(runs.keys())
    name = {b: b if b in present else b + "_" for b in RUNS_REQUIRED}  # older NanoAOD: genEventSumw_
    lacking = [b for b in RUNS_REQUIRED if name[b] not in present]
    if lacking:
        raise QTriggerError(f"{path}: Runs tree lacks {', '.join(lacking)} (needed to normalise the sample)")
    optional = [b for b in RUNS_XSEC + RUNS_OPTIONAL + RUNS_BINNING + RUNS_PILEUP if b in present]
    arrays = runs.arrays([name[b] for b in RUNS_REQUIRED] + optional, library="np")
    counts = arrays[name["genEventCount"]].astype(np.float64)
    out = {
        "path": str(path),
        "n": int(counts.sum()),
        "sumw": float(arrays[name["genEventSumw"]].sum()),
        "sumw2": float(arrays[name["genEventSumw2"]].sum()),
        "missing": [b for b in RUNS_XSEC + RUNS_OPTIONAL if b not in present],
    }
    weight = counts / counts.sum() if counts.sum() > 0 else np.full(len(counts), 1.0 / max(1, len(counts)))
    if "genXsec_mb" in arrays and "genXsecErr_mb" in arrays:
        out["xsec"] = float((weight * arrays["genXsec_mb"]).sum())
        out["xsec_err"] = float(np.sqrt(((weight * arrays["genXsecErr_mb"]) ** 2).sum()))
    for branch, key in (("isMinBias", "minbias"), ("pthatMin", "pthat"), ("pthatMax", "pthat_max"),
                        ("genFilterEff", "filter_eff"), ("pileupMu", "mu"), ("sigmaInel_mb", "sigma_inel")):
        if branch in arrays:
            values = np.unique(arrays[branch])
            if len(values) != 1:
                raise QTriggerError(f"{path}: Runs entries disagree on {branch} ({values.tolist()}); "
                                    "write one file per pTHat bin")
            out[key] = values[0].item()
    if "filter_eff" in out and not 0 < out["filter_eff"] <= 1:
        raise QTriggerError(f"{path}: genFilterEff = {out['filter_eff']:g}, expected a fraction in (0, 1]")
    return out


def read_pileup(files) -> dict[str, tuple[float, float]]:
    """``{path: (mu, sigma_inel_mb)}`` of the files whose ``Runs`` tree records pileup (``pileupMu > 0``); files
    without a ``Runs`` tree or without the branches (mu = 0, or not recorded: real NanoAOD) are left out."""
    out = {}
    for path in [str(files)] if isinstance(files, (str, Path)) else [str(f) for f in files]:
        try:
            runs = open_events_tree(path, "Runs")
        except QTriggerError:
            continue
        if not set(RUNS_PILEUP) <= set(runs.keys()):
            continue
        arrays = runs.arrays(list(RUNS_PILEUP), library="np")
        if len(arrays["pileupMu"]) and arrays["pileupMu"].max() > 0:
            out[path] = (float(arrays["pileupMu"].max()), float(arrays["sigmaInel_mb"].max()))
    return out


def combine_same_bin(runs: list[dict]) -> dict:
    """One ``Runs`` entry (generator branch names) from several of the same bin: counts and
    weight sums add, cross-sections are averaged weighted by event counts
    (error ``sqrt(sum (n_k err_k)^2) / sum n_k``); other keys are taken from the first."""
    n = np.array([r["genEventCount"] for r in runs], dtype=np.float64)
    xs = np.array([r["genXsec_mb"] for r in runs], dtype=np.float64)
    err = np.array([r["genXsecErr_mb"] for r in runs], dtype=np.float64)
    out = dict(runs[0])
    out["genEventCount"] = int(n.sum())
    out["genEventSumw"] = float(sum(r["genEventSumw"] for r in runs))
    out["genEventSumw2"] = float(sum(r["genEventSumw2"] for r in runs))
    out["genXsec_mb"] = float((n * xs).sum() / n.sum()) if n.sum() > 0 else float(xs.mean())
    out["genXsecErr_mb"] = float(np.sqrt(((n * err) ** 2).sum()) / n.sum()) if n.sum() > 0 else float(err.max())
    return out


# --------------------------------------------------------------------------- one process


def _one_flag(parts: list[dict], key: str, branch: str, what: str):
    """The one value of ``key`` shared by every file that has it (None if none has it)."""
    values = {p["path"]: p[key] for p in parts if key in p}
    if len(set(values.values())) > 1:
        listing = ", ".join(f"{path} ({branch}={value:g})" for path, value in values.items())
        raise QTriggerError(f"files are not one process ({what}): {listing}; read them as separate samples")
    return next(iter(values.values()), None)


def _bin_key(part: dict) -> tuple[float | None, float]:
    pthat = part.get("pthat")
    return (None if pthat is None else float(pthat), float(part.get("pthat_max", math.inf)))


def _make_bin(key: tuple[float | None, float], parts: list[dict]) -> PtHatBin:
    n = np.array([p["n"] for p in parts], dtype=np.float64)
    xsec = xsec_err = None
    if all("xsec" in p for p in parts) and n.sum() > 0:
        xsec = float((n * [p["xsec"] for p in parts]).sum() / n.sum())
        xsec_err = float(np.sqrt(((n * [p["xsec_err"] for p in parts]) ** 2).sum()) / n.sum())
    filter_eff = _one_flag(parts, "filter_eff", "genFilterEff", f"pTHat bin {key} with different filters")
    return PtHatBin(
        pthat_min=key[0], pthat_max=key[1], xsec_mb=xsec, xsec_err_mb=xsec_err,
        filter_efficiency=1.0 if filter_eff is None else float(filter_eff),
        n_events=int(n.sum()), sumw=float(sum(p["sumw"] for p in parts)),
        sumw2=float(sum(p["sumw2"] for p in parts)), files=tuple(p["path"] for p in parts),
    )


def _check_stitchable(bins: list[PtHatBin]) -> None:
    """Refuse a bin without pTHat among binned files, overlaps, and bins without a cross-section."""
    if len(bins) < 2:
        return
    unbinned = [b for b in bins if b.pthat_min is None]
    if unbinned:
        binned = [f for b in bins if b.pthat_min is not None for f in b.files]
        raise QTriggerError(f"cannot stitch {', '.join(unbinned[0].files)} (no pthatMin in Runs) with pTHat-binned "
                            f"files {', '.join(binned)}; read them as separate samples")
    for low, high in zip(bins, bins[1:]):
        if high.pthat_min < low.pthat_max:
            raise QTriggerError(f"files are not one process or not disjoint pTHat bins: {low.label()} "
                                f"({', '.join(low.files)}) overlaps {high.label()} ({', '.join(high.files)})")
    no_xsec = [f for b in bins if b.xsec_mb is None for f in b.files]
    if no_xsec:
        raise QTriggerError(f"cannot stitch pTHat bins without a cross-section: {', '.join(no_xsec)} lack genXsec_mb")


def read_sample_info(files: list[str] | str) -> SampleInfo:
    """Normalisation of one process from its files' ``Runs`` trees (same bin: combined; bins: stitched)."""
    files = [str(files)] if isinstance(files, (str, Path)) else [str(f) for f in files]
    if not files:
        raise QTriggerError("read_sample_info: no files given")
    parts = [read_runs(path) for path in files]
    minbias = _one_flag(parts, "minbias", "isMinBias", "minimum-bias mixed with other events")
    groups: dict[tuple, list[dict]] = {}
    for part in parts:
        groups.setdefault(_bin_key(part), []).append(part)
    bins = sorted((_make_bin(key, group) for key, group in groups.items()),
                  key=lambda b: (-math.inf if b.pthat_min is None else b.pthat_min, b.pthat_max))
    _check_stitchable(bins)
    xsec = xsec_err = None
    if all(b.xsec_mb is not None for b in bins):
        xsec = float(sum(b.xsec_filtered_mb for b in bins))
        xsec_err = float(math.sqrt(sum((b.xsec_err_mb * b.filter_efficiency) ** 2 for b in bins)))
    edges = [b.pthat_min for b in bins if b.pthat_min is not None]
    mu = _one_flag(parts, "mu", "pileupMu", "different pileup")
    sigma_inel = _one_flag(parts, "sigma_inel", "sigmaInel_mb", "different sigma_inel")
    return SampleInfo(
        n_events=sum(b.n_events for b in bins),
        sumw=float(sum(p["sumw"] for p in parts)),
        sumw2=float(sum(p["sumw2"] for p in parts)),
        xsec_mb=xsec,
        xsec_err_mb=xsec_err,
        is_minbias=bool(minbias),
        pthat_min=min(edges) if edges else None,
        files=tuple(files),
        missing=tuple(f"{p['path']}: {b}" for p in parts for b in p["missing"]),
        bins=tuple(bins),
        mu=None if mu is None else float(mu),
        sigma_inel_mb=None if sigma_inel is None else float(sigma_inel),
    )


def generator_cut_gev(info: SampleInfo) -> float | None:
    """The lowest pTHat edge of the (stitched) sample, None when there is none (or it is 0).

    Events whose leading jet lies below ~1.5 x this value are in the generator-cut bias region.
    """
    return info.pthat_min if info.pthat_min else None


# --------------------------------------------------------------------------- per-event weights


def _normalised(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


def sample_bins(info: SampleInfo) -> tuple[PtHatBin, ...]:
    """``info.bins``, or one bin made of the info's own fields when it was built by hand without bins."""
    if info.bins:
        return info.bins
    return (PtHatBin(pthat_min=info.pthat_min, pthat_max=math.inf, xsec_mb=info.xsec_mb,
                     xsec_err_mb=info.xsec_err_mb, filter_efficiency=1.0, n_events=info.n_events,
                     sumw=info.sumw, sumw2=info.sumw2, files=tuple(info.files)),)


def _event_bin_index(bins: tuple[PtHatBin, ...], info: SampleInfo, event_file: np.ndarray, files) -> np.ndarray:
    """Per event, the index into ``bins`` of the bin its file belongs to."""
    bin_of_file = {_normalised(f): k for k, b in enumerate(bins) for f in b.files}
    event_file = np.asarray(event_file)
    if event_file.dtype.kind in "iu":
        names = list(info.files if files is None else files)
        lookup = np.array([bin_of_file.get(_normalised(str(f)), -1) for f in names] + [-1], dtype=np.int64)
        index = np.where((event_file >= 0) & (event_file < len(names)), event_file, len(names))
        out = lookup[index]
        unknown = [str(names[i]) if 0 <= i < len(names) else f"file index {i}" for i in np.unique(event_file[out < 0])]
    else:
        uniq, inverse = np.unique(event_file.astype(str), return_inverse=True)
        per_name = np.array([bin_of_file.get(_normalised(f), -1) for f in uniq], dtype=np.int64)
        out = per_name[inverse] if len(uniq) else np.zeros(0, dtype=np.int64)
        unknown = [f for f, k in zip(uniq, per_name) if k < 0]
    if unknown:
        raise QTriggerError(f"events from {', '.join(map(str, unknown[:3]))} are not in the sample {info.where()}")
    return out


def event_bin_index(info: SampleInfo, event_file: np.ndarray,
                    files: list[str] | tuple[str, ...] | None = None) -> np.ndarray:
    """Per event, the index into :func:`sample_bins` of its pTHat bin (found through its file)."""
    return _event_bin_index(sample_bins(info), info, event_file, files)


def event_xsec_weights_mb(info: SampleInfo, event_file: np.ndarray, gen_weight: np.ndarray,
                          files: list[str] | tuple[str, ...] | None = None) -> np.ndarray:
    """Absolute per-event cross-section weights ``sigma_b eps_b w / W_b`` in mb (module docstring).

    ``event_file``: per event, its file path, or an integer index into ``files`` (default
    ``info.files``; e.g. :attr:`qtrigger.data.reader.JetTable.files` with ``JetTable.event_file``).
    ``gen_weight``: per-event ``genWeight``. Summed over all events of the sample the weights
    give ``info.xsec_mb``; over a random subset, each bin's subset sums to ``sigma_b eps_b``.
    """
    weight = np.asarray(gen_weight, dtype=np.float64)
    bins = sample_bins(info)
    event_bin = _event_bin_index(bins, info, event_file, files)
    if event_bin.shape != weight.shape:
        raise QTriggerError(f"event_file {event_bin.shape} and gen_weight {weight.shape} differ in shape")
    scale = np.zeros(len(bins), dtype=np.float64)
    given = np.bincount(event_bin, minlength=len(bins))
    given_sumw = np.bincount(event_bin, weights=weight, minlength=len(bins))
    absent = [b for k, b in enumerate(bins) if given[k] == 0 and b.n_events > 0]
    if absent and len(absent) < len(bins):
        raise QTriggerError(
            f"no events given from pTHat bin {absent[0].label()} ({', '.join(absent[0].files)}) of {info.where()}: "
            "a stitched sample must be read with every bin (no max_events cut, a by-event split)")
    for k, b in enumerate(bins):
        if given[k] == 0:
            continue
        if b.xsec_mb is None:
            raise QTriggerError(
                f"no cross-section for {', '.join(b.files)}: its Runs tree has no genXsec_mb (real CMS NanoAOD "
                "stores none); use a zero-bias rate or a sample with genXsec_mb")
        scale[k] = b.xsec_filtered_mb / _bin_sumw(b, int(given[k]), float(given_sumw[k]))
    return scale[event_bin] * weight


def _bin_sumw(b: PtHatBin, n_given: int, sumw_given: float) -> float:
    """``W_b``: genEventSumw when the whole bin is given, else the given events' weight sum."""
    where = ", ".join(b.files)
    if n_given > b.n_events:
        raise QTriggerError(f"{n_given} events given for pTHat bin {b.label()} but genEventCount = {b.n_events} ({where})")
    if n_given < b.n_events:
        if sumw_given <= 0:
            raise QTriggerError(f"the given events of pTHat bin {b.label()} ({where}) have weight sum {sumw_given:g}")
        return sumw_given
    if not math.isclose(sumw_given, b.sumw, rel_tol=SUMW_REL_TOL, abs_tol=1e-9):
        raise QTriggerError(f"event weights sum to {sumw_given:g} but genEventSumw = {b.sumw:g} for {where}: "
                            "pass genWeight")
    return b.sumw
