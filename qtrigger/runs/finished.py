"""A finished run directory, checked on load: the one way every command opens a run."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qtrigger.config import load_config
from qtrigger.errors import QTriggerError, one_line
from qtrigger.inputs.codes import Preprocessor
from qtrigger.models.build import load_model, model_file, quant_method
from qtrigger.results import RunResult
from qtrigger.rundir import RUN_ID_FILE, read_json, read_run_id, write_json

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
        directory = Path(directory)
        if _STAGING.match(directory.name):
            raise QTriggerError(f"{directory}: the staging folder of an unfinished run (it is removed when its "
                                "lock is free); open the run's final directory")
        if not directory.is_dir():
            raise QTriggerError(f"{directory}: no such run directory")
        for needed in ("config.resolved.yaml", "metrics.json", "preprocessing.json"):
            if not (directory / needed).is_file():
                raise QTriggerError(f"{directory}: not a finished run directory (no {needed})")
        config = load_config(directory / "config.resolved.yaml", check_files=False)
        model_path = directory / model_file(config.quantization)
        if not model_path.is_file():
            raise QTriggerError(f"{directory}: not a finished run directory (no {model_path.name})")
        result = RunResult.from_json(read_json(directory / "metrics.json", "run metrics"), str(directory / "metrics.json"))
        payload = read_json(directory / "preprocessing.json", "preprocessing")
        try:
            preprocessor = Preprocessor.from_json(payload)
        except (TypeError, KeyError, ValueError) as err:
            raise QTriggerError(f"{directory / 'preprocessing.json'}: corrupt preprocessing ({err})") from None
        if model_path.suffix == ".h5":
            _check_hdf5(model_path)
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
        """The saved Keras model (``qat`` or ``float``), with a one-line error if it cannot be read.

        The QAT model is read by the run's ``quantization.method`` (QKeras ``.h5``, HGQ2 ``.keras``)."""

        path = self.directory / model_file(self.config.quantization, which)
        if not path.is_file():
            hint = " (the run had training.float_twin: false)" if which == "float" else ""
            raise QTriggerError(f"{path}: no such model file{hint}")
        if path.suffix != ".h5":
            return quant_method(self.config.quantization).load_model(path)  # one-line errors of its own
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


__all__ = ["FinishedRun", "RUN_ID_FILE", "read_test_jets"]
