"""Files written whole (atomic replace), JSON in and out, and the provenance every run directory records."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import yaml

from qtrigger.errors import QTriggerError

log = logging.getLogger("qtrigger")

PACKAGES = [
    "qtrigger", "tensorflow", "tf-keras", "qkeras", "tensorflow-model-optimization", "hls4ml",
    "uproot", "awkward", "numpy", "scikit-learn", "scipy", "matplotlib", "mplhep", "pydantic",
    "pythia8mc", "fastjet",
]


# ----------------------------------------------------------------------------------------
# Files written whole


def json_default(value):
    """JSON for numpy scalars and arrays; anything else as its string."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _host() -> str:
    """This machine's name, safe in a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary sibling of ``path`` to write; on success it is renamed onto ``path``, else removed."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{_host()}-{os.getpid()}.tmp")
    try:
        yield temp
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` so that readers never see half a file."""
    with atomic_path(path) as temp:
        temp.write_text(text)


def write_json(path: str | Path, payload) -> None:
    """Write JSON atomically (numpy values converted)."""
    atomic_write_text(path, json.dumps(payload, indent=2, default=json_default))


def read_json(path: str | Path, what: str) -> dict:
    """A JSON file's content, with a one-line error naming the file when it is missing or corrupt."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise QTriggerError(f"{path}: no such file ({what})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise QTriggerError(f"{path}: corrupt {what} ({type(err).__name__}: {err})") from None


# ----------------------------------------------------------------------------------------
# Provenance


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that decide a run's numbers."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def git_revision() -> dict[str, str | bool | None]:
    """The source tree's commit and whether it had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD") or None
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None}


def write_provenance(directory: Path, config_dict: dict, threads: int, seed: int, run_id: str | None = None) -> None:
    """Resolved config, package versions, git revision, thread/seed settings and the run id."""
    directory = Path(directory)
    atomic_write_text(directory / "config.resolved.yaml", yaml.safe_dump(config_dict, sort_keys=False))
    provenance = {
        "run_id": run_id,
        "versions": package_versions(),
        "git": git_revision(),
        "threads": {"tensorflow_intra_op": threads, "tensorflow_inter_op": threads,
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "seed": seed,
        "host": {"machine": platform.machine(), "cpus": os.cpu_count()},
    }
    write_json(directory / "provenance.json", provenance)
