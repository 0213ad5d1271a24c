"""Typed results of a run (:class:`RunResult`, written as ``metrics.json``) and :class:`FinishedRun`,
the one way every command opens a finished run directory."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from qtrigger.errors import QTriggerError, one_line
from qtrigger.rundir import RUN_ID_FILE, read_json, read_run_id, write_json


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


_STAGING = re.compile(r"^\..+\.(partial|old)-")


@dataclass
class FinishedRun:
    """A finished run directory, checked on load: config, preprocessing, metrics, model file, run id."""

    directory: Path
    config: Any  # RunConfig
    result: RunResult
    preprocessor: Any  # Preprocessor
    run_id: str | None

    @classmethod
    def load(cls, directory: str | Path) -> "FinishedRun":
        """Open ``runs/<name>/``; missing, unfinished (``.partial``) or corrupt runs are one-line errors."""
        from qtrigger.config import load_config
        from qtrigger.inputs.codes import Preprocessor

        directory = Path(directory)
        if _STAGING.match(directory.name):
            raise QTriggerError(f"{directory}: the staging folder of an unfinished run (it is removed when its "
                                "lock is free); open the run's final directory")
        if not directory.is_dir():
            raise QTriggerError(f"{directory}: no such run directory")
        for needed in ("config.resolved.yaml", "metrics.json", "preprocessing.json", "model_qat.h5"):
            if not (directory / needed).is_file():
                raise QTriggerError(f"{directory}: not a finished run directory (no {needed})")
        config = load_config(directory / "config.resolved.yaml", check_files=False)
        result = RunResult.from_json(read_json(directory / "metrics.json", "run metrics"), str(directory / "metrics.json"))
        payload = read_json(directory / "preprocessing.json", "preprocessing")
        try:
            preprocessor = Preprocessor.from_json(payload)
        except (TypeError, KeyError, ValueError) as err:
            raise QTriggerError(f"{directory / 'preprocessing.json'}: corrupt preprocessing ({err})") from None
        _check_hdf5(directory / "model_qat.h5")
        result.directory = directory
        run = cls(directory, config, result, preprocessor, read_run_id(directory))
        run.check_hls_project()
        return run

    @property
    def name(self) -> str:
        """The run's name."""
        return self.result.run

    @property
    def hls_project_dir(self) -> Path | None:
        """The run's HLS project folder as recorded in its metrics."""
        project = self.result.hls.get("project_dir")
        return Path(project) if project else None

    def check_hls_project(self) -> None:
        """The HLS project, when present, must carry this run's id (both are replaced together)."""
        project = self.hls_project_dir
        if self.run_id is None or project is None or not project.is_dir():
            return
        other = read_run_id(project)
        if other is not None and other != self.run_id:
            raise QTriggerError(f"{project}: HLS project of another run (run id {other}, {self.directory} has "
                                f"{self.run_id}); rerun qtrigger run to rebuild both")

    def load_model(self, which: str = "qat"):
        """The saved Keras model (``qat`` or ``float``), with a one-line error if it cannot be read."""
        from qtrigger.models.build import load_model

        path = self.directory / f"model_{which}.h5"
        if not path.is_file():
            hint = " (the run had training.float_twin: false)" if which == "float" else ""
            raise QTriggerError(f"{path}: no such model file{hint}")
        _check_hdf5(path)
        try:
            return load_model(path)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise QTriggerError(f"{path}: unreadable Keras model ({type(err).__name__}: {err})") from None

    def test_jets(self) -> dict[str, np.ndarray]:
        """The run's test jets (``test_jets.npz``) as arrays."""
        return read_test_jets(self.directory / "test_jets.npz")

    def save_result(self) -> None:
        """Rewrite ``metrics.json`` from :attr:`result` (atomically)."""
        write_json(self.directory / "metrics.json", self.result.to_json())


def read_test_jets(path: Path) -> dict[str, np.ndarray]:
    """A run's ``test_jets.npz`` as arrays; missing or corrupt is a one-line error naming the file."""
    try:
        with np.load(path) as archive:
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise QTriggerError(f"{path}: no such file (the run's test jets)") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise QTriggerError(f"{path}: corrupt test jets ({type(err).__name__})") from None


def _check_hdf5(path: Path) -> None:
    """A readable HDF5 file holding a Keras model (checked with h5py: no TensorFlow needed)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            has_model = "model_config" in handle.attrs
            version = str(handle.attrs.get("keras_version", ""))
    except OSError as err:
        raise QTriggerError(f"{path}: not a readable HDF5 Keras model file ({one_line(err)})") from None
    if not has_model:
        raise QTriggerError(f"{path}: HDF5 file without a Keras model (no model_config)")
    if version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 3:
        raise QTriggerError(f"{path}: saved with Keras {version} (Keras 3.x), which qtrigger (QKeras on tf_keras 2.x) "
                            "cannot read; "
                            "save it with tf_keras: run your training with TF_USE_LEGACY_KERAS=1 and model.save('M.h5')")


__all__ = ["DataSummary", "FinishedRun", "ModelSummary", "RUN_ID_FILE", "RunResult", "ScoreMetrics"]
