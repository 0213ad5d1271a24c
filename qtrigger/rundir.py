"""Run directories that appear only when complete, and the provenance every run records."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import yaml

from qtrigger.errors import QTriggerError

PACKAGES = [
    "qtrigger", "tensorflow", "tf-keras", "qkeras", "tensorflow-model-optimization", "hls4ml",
    "uproot", "awkward", "numpy", "scikit-learn", "scipy", "matplotlib", "mplhep", "pydantic",
    "pythia8mc", "fastjet",
]


def refuse_existing(paths: list[Path], overwrite: bool) -> None:
    """One-line error if any output already exists and ``overwrite`` is off."""
    if overwrite:
        return
    for path in paths:
        if Path(path).exists():
            raise QTriggerError(f"output directory {path} already exists; pass --overwrite to replace it")


@contextlib.contextmanager
def staged_directories(final_paths: list[Path], overwrite: bool):
    """Yield temporary sibling directories; on success rename them onto ``final_paths``.

    On any exception the temporary directories are removed, so no partial output is
    left behind. Existing outputs are replaced only when ``overwrite`` is true.
    """
    refuse_existing(final_paths, overwrite)
    staged = []
    for final in final_paths:
        final = Path(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.parent / f".{final.name}.partial-{os.getpid()}"
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir()
        staged.append(temp)
    try:
        yield staged
    except BaseException:
        for temp in staged:
            shutil.rmtree(temp, ignore_errors=True)
        raise
    for temp, final in zip(staged, final_paths):
        final = Path(final)
        if final.exists():
            trash = final.parent / f".{final.name}.old-{os.getpid()}"
            final.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        temp.rename(final)


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


def write_provenance(directory: Path, config_dict: dict, threads: int, seed: int) -> None:
    """Resolved config, package versions, git revision and thread/seed settings."""
    directory = Path(directory)
    (directory / "config.resolved.yaml").write_text(yaml.safe_dump(config_dict, sort_keys=False))
    provenance = {
        "versions": package_versions(),
        "git": git_revision(),
        "threads": {"tensorflow_intra_op": threads, "tensorflow_inter_op": threads,
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "seed": seed,
        "host": {"machine": platform.machine(), "cpus": os.cpu_count()},
    }
    (directory / "provenance.json").write_text(json.dumps(provenance, indent=2))
