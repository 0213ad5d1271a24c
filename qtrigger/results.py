"""Typed results of a run: one section per stage, gathered in :class:`RunResult` (written as ``metrics.json``).

Finished run directories are opened by :class:`qtrigger.runs.finished.FinishedRun`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from qtrigger.errors import QTriggerError


class _Section:
    """A ``metrics.json`` section: typed fields, plus keys added by newer stages kept in ``extra``."""

    def to_json(self) -> dict:
        """Plain data, fields in ``metrics.json`` order, then the extra keys."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return out | self.extra

    @classmethod
    def from_json(cls, data: dict):
        """From a ``metrics.json`` section; unknown keys go to ``extra``."""
        names = {f.name for f in fields(cls)} - {"extra"}
        section = cls(**{k: v for k, v in data.items() if k in names})
        section.extra = {k: v for k, v in data.items() if k not in names}
        return section


@dataclass
class DataSummary(_Section):
    """What was read and how it was split (``metrics.json`` → ``data``)."""

    samples: dict[str, list[str]]
    n_events: int
    n_jets: dict[str, int]
    signal_fraction: float
    dropped_nonfinite: int
    input_type: str
    shifts: dict[str, int]
    extra: dict = field(default_factory=dict)


@dataclass
class ModelSummary(_Section):
    """Size, derived types and training length of the QAT model (``metrics.json`` → ``model``)."""

    parameters: int
    nonzero_parameters: int
    input_type: str
    output_type: str
    best_epoch: int | None
    epochs_run: int | None
    layers: list[dict]
    extra: dict = field(default_factory=dict)  # e.g. batchnorm folding statistics


_WORKING_POINT = ("threshold", "target_background_efficiency", "background_efficiency", "signal_efficiency",
                  "signal_efficiency_err", "background_rejection")


@dataclass
class ScoreMetrics:
    """Per-jet AUC and the working point at ``trigger.background_efficiency`` (``qat``, ``float``)."""

    auc: float | None
    auc_note: str | None = None
    threshold: float | None = None
    target_background_efficiency: float | None = None
    background_efficiency: float | None = None
    signal_efficiency: float | None = None
    signal_efficiency_err: float | None = None
    background_rejection: float | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """Plain data: the AUC (with a note when unavailable), then the working point when there is one."""
        out: dict[str, Any] = {"auc": self.auc}
        if self.auc_note is not None:
            out["auc_note"] = self.auc_note
        if self.threshold is not None:
            out.update({key: getattr(self, key) for key in _WORKING_POINT})
        return out | self.extra

    @classmethod
    def from_json(cls, data: dict) -> "ScoreMetrics":
        """Inverse of :meth:`to_json`."""
        known = ("auc", "auc_note", *_WORKING_POINT)
        return cls(**{key: data.get(key) for key in known}, extra={k: v for k, v in data.items() if k not in known})


@dataclass
class RunResult(Mapping):
    """Every stage's result of one run; :meth:`to_json` is ``metrics.json``.

    Stages owned by other modules (HLS estimate, C-simulation, trigger study) are held as
    their JSON dicts. The mapping interface (``result["qat"]["auc"]``) reads
    :meth:`to_json`, so code written for the plain metrics dict keeps working.
    """

    run: str
    data: DataSummary
    model: ModelSummary
    precision_profile: list[dict]
    qat: ScoreMetrics
    float_twin: ScoreMetrics | None = None
    hls: dict = field(default_factory=dict)
    csim: dict = field(default_factory=dict)
    trigger: dict | None = None
    wall_seconds: float | None = None
    extra: dict = field(default_factory=dict)  # added later to metrics.json: compare, hls synth reports, ...
    directory: Path | None = field(default=None, compare=False)  # where the run was written (not in metrics.json)

    def to_json(self) -> dict:
        """``metrics.json`` content (keys and order as written by every earlier version)."""
        out: dict[str, Any] = {"run": self.run, "data": self.data.to_json(), "model": self.model.to_json(),
                               "precision_profile": self.precision_profile, "qat": self.qat.to_json()}
        if self.float_twin is not None:
            out["float"] = self.float_twin.to_json()
        out["hls"] = self.hls
        out["csim"] = self.csim
        if self.trigger is not None:
            out["trigger"] = self.trigger
        out["wall_seconds"] = self.wall_seconds
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: dict, source: str = "metrics.json") -> "RunResult":
        """Read ``metrics.json`` content; a missing section is a one-line error naming ``source``."""
        known = {"run", "data", "model", "precision_profile", "qat", "float", "hls", "csim", "trigger", "wall_seconds"}
        missing = [key for key in ("run", "data", "model", "qat") if key not in data]
        if missing:
            raise QTriggerError(f"{source}: not a qtrigger run's metrics (no {', '.join(missing)})")
        try:
            return cls(
                run=data["run"], data=DataSummary.from_json(data["data"]), model=ModelSummary.from_json(data["model"]),
                precision_profile=data.get("precision_profile") or [], qat=ScoreMetrics.from_json(data["qat"]),
                float_twin=ScoreMetrics.from_json(data["float"]) if "float" in data else None,
                hls=data.get("hls") or {}, csim=data.get("csim") or {}, trigger=data.get("trigger"),
                wall_seconds=data.get("wall_seconds"), extra={k: v for k, v in data.items() if k not in known},
            )
        except TypeError as err:
            raise QTriggerError(f"{source}: unexpected metrics layout ({err})") from None

    # Mapping interface over to_json(), for callers of the earlier dict API.
    def __getitem__(self, key: str):
        return self.to_json()[key]

    def __iter__(self):
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())

