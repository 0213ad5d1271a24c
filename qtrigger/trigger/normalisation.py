"""Sample normalisation from the ``Runs`` tree (interim owner until :mod:`qtrigger.samples`).

``genEventCount``, ``genEventSumw`` (W), ``genEventSumw2`` are required; ``genXsec_mb``/
``genXsecErr_mb`` and ``isMinBias``/``pthatMin`` are written by our generator but absent from
real CMS NanoAOD. Several files of one process: sums add, cross-sections are averaged
weighted by event counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtrigger.errors import QTriggerError

RUNS_REQUIRED = ("genEventCount", "genEventSumw", "genEventSumw2")
RUNS_XSEC = ("genXsec_mb", "genXsecErr_mb")
RUNS_OPTIONAL = ("isMinBias", "pthatMin")


@dataclass(frozen=True)
class SampleInfo:
    """Normalisation of one process (one or more files), from the ``Runs`` tree.

    ``xsec_mb``/``xsec_err_mb``/``pthat_min`` are None when the files do not store them
    (real CMS NanoAOD); ``missing`` lists ``"file: branch"`` for every absent optional branch.
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

    def where(self) -> str:
        """The files, for messages."""
        return ", ".join(self.files) or "this sample"


def _read_runs(path: str) -> dict:
    """Sums over the entries of one file's ``Runs`` tree, plus which optional branches it lacks."""
    from qtrigger.data import open_events_tree

    runs = open_events_tree(path, "Runs")
    present = set(runs.keys())
    name = {b: b if b in present else b + "_" for b in RUNS_REQUIRED}  # older NanoAOD: genEventSumw_
    lacking = [b for b in RUNS_REQUIRED if name[b] not in present]
    if lacking:
        raise QTriggerError(f"{path}: Runs tree lacks {', '.join(lacking)} (needed to normalise the sample)")
    optional = [b for b in RUNS_XSEC + RUNS_OPTIONAL if b in present]
    arrays = runs.arrays([name[b] for b in RUNS_REQUIRED] + optional, library="np")
    counts = arrays[name["genEventCount"]].astype(np.float64)
    out = {
        "path": path,
        "n": int(counts.sum()),
        "sumw": float(arrays[name["genEventSumw"]].sum()),
        "sumw2": float(arrays[name["genEventSumw2"]].sum()),
        "missing": [b for b in RUNS_XSEC + RUNS_OPTIONAL if b not in present],
    }
    weight = counts / counts.sum() if counts.sum() > 0 else np.full(len(counts), 1.0 / max(1, len(counts)))
    if "genXsec_mb" in arrays and "genXsecErr_mb" in arrays:
        out["xsec"] = float((weight * arrays["genXsec_mb"]).sum())
        out["xsec_err"] = float(np.sqrt(((weight * arrays["genXsecErr_mb"]) ** 2).sum()))
    for branch, key in (("isMinBias", "minbias"), ("pthatMin", "pthat")):
        if branch in arrays:
            values = np.unique(arrays[branch])
            if len(values) != 1:
                raise QTriggerError(f"{path}: Runs entries disagree on {branch} ({values.tolist()})")
            out[key] = values[0].item()
    return out


def _same_value(parts: list[dict], key: str, branch: str):
    """The one value of ``key`` shared by every file that has it (None if none has it)."""
    values = {p["path"]: p[key] for p in parts if key in p}
    if len(set(values.values())) > 1:
        listing = ", ".join(f"{path} ({branch}={value:g})" for path, value in values.items())
        raise QTriggerError(f"files are not one process: {listing}; read them as separate samples")
    return next(iter(values.values()), None)


def read_sample_info(files: list[str] | str) -> SampleInfo:
    """Normalisation of one process from its files' ``Runs`` trees (combined as documented above)."""
    files = [str(files)] if isinstance(files, (str, Path)) else [str(f) for f in files]
    if not files:
        raise QTriggerError("read_sample_info: no files given")
    parts = [_read_runs(path) for path in files]
    n = np.array([p["n"] for p in parts], dtype=np.float64)
    xsec = xsec_err = None
    if all("xsec" in p for p in parts) and n.sum() > 0:
        xsec = float((n * [p["xsec"] for p in parts]).sum() / n.sum())
        xsec_err = float(np.sqrt(((n * [p["xsec_err"] for p in parts]) ** 2).sum()) / n.sum())
    minbias = _same_value(parts, "minbias", "isMinBias")
    pthat = _same_value(parts, "pthat", "pthatMin")
    return SampleInfo(
        n_events=int(n.sum()),
        sumw=float(sum(p["sumw"] for p in parts)),
        sumw2=float(sum(p["sumw2"] for p in parts)),
        xsec_mb=xsec,
        xsec_err_mb=xsec_err,
        is_minbias=bool(minbias),
        pthat_min=None if pthat is None else float(pthat),
        files=tuple(files),
        missing=tuple(f"{p['path']}: {b}" for p in parts for b in p["missing"]),
    )


def _require_xsec(info: SampleInfo) -> float:
    if info.xsec_mb is None:
        raise QTriggerError(
            f"no cross-section for {info.where()}: its Runs tree has no genXsec_mb (real CMS NanoAOD stores "
            "none); set one with dataclasses.replace(info, xsec_mb=..., xsec_err_mb=...) or use a zero-bias rate"
        )
    return info.xsec_mb


def _require_minbias(info: SampleInfo) -> None:
    if not info.is_minbias:
        has_flag = not any(m.endswith(": isMinBias") for m in info.missing)
        state = "isMinBias = 0" if has_flag else "no isMinBias in its Runs tree"
        raise QTriggerError(f"zero-bias rate needs a minimum-bias sample, but {info.where()} has {state}")
