"""Shared test fixtures: the real CMS NanoAOD file, the shipped default sample, small configs."""

import contextlib
import fcntl
import os
from pathlib import Path

import pytest

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One thread per test process: `make test` runs two pytest-xdist workers on two cores, and TensorFlow
# or OpenMP (scikit-learn's boosted trees) pools of two threads each oversubscribe them (a 1 s BDT fit
# took 30 s so). Set here, for tests only; runs keep their configured `training.threads`.
for _var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("QTRIGGER_SHARED_DATA", REPO.parent / "shared" / "data"))
REAL_NANOAOD = SHARED / "nanoAOD_2015_CMS_Open_Data_ttbar.root"
VIVADO_REPORTS = SHARED / "hls4ml_reports" / "Vivado"
DEFAULT_SAMPLE = REPO / "data" / "default"


# Tests in files other branches own that import TensorFlow, compile with g++ or run Pythia for
# several seconds each: marked slow here so that `pytest -m "not slow"` stays under a minute.
# Their owners move these marks into their files at integration (then drop the entry here).
SLOW_ELSEWHERE = {
    "test_hls4ml_compat.py": "*",  # every test imports TensorFlow through hls4ml
    "test_trigger.py": ("test_hls_decision_agrees_with_python", "test_hls_decision_edge_thresholds_and_given_codes",
                        "test_bdt_reference_is_seeded"),
    "test_generate.py": ("test_same_seed_identical_different_seed_differs", "test_parallel_jobs_merge",
                         "test_biased_qcd_weights"),
}


# The files with the longest slow tests, longest first (measured with --durations). Under
# `make test` (xdist, one file per worker at a time) the longest files start first, so that
# no long file starts last while the other worker idles.
LONGEST_FIRST = ["test_scan.py", "test_pipeline.py", "test_event_network.py", "test_exactness.py", "test_hls_check.py", "test_rtl_synth.py",
                 "test_batchnorm.py", "test_trigger_study.py", "test_reliability.py", "test_da.py"]


def pytest_collection_modifyitems(items):
    for item in items:
        names = SLOW_ELSEWHERE.get(Path(str(item.fspath)).name, ())
        if names == "*" or item.originalname in names:
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))  # stable: order within a file kept


@pytest.fixture(scope="session")
def real_nanoaod() -> Path:
    """The real CMS Open Data NanoAOD file (skips only where ../shared is absent)."""
    if not SHARED.is_dir():
        pytest.skip("../shared/data is absent (a user's machine); CI has it")
    return REAL_NANOAOD


@pytest.fixture(scope="session")
def default_sample() -> dict:
    """The generated default sample shipped in data/default/."""
    files = {"ttbar": DEFAULT_SAMPLE / "ttbar.root", "qcd": DEFAULT_SAMPLE / "qcd.root"}
    missing = [str(p) for p in files.values() if not p.is_file()]
    assert not missing, f"default sample missing: {missing}"
    return {k: str(v) for k, v in files.items()}


def small_config_dict(default_sample: dict, tmp_path: Path, **sections) -> dict:
    """A run config on a slice of the default sample, writing under tmp_path."""
    raw = {
        "name": "tiny",
        "output_dir": str(tmp_path / "runs"),
        "data": {
            "samples": [
                {"name": "ttbar", "files": [default_sample["ttbar"]], "role": "signal"},
                {"name": "qcd", "files": [default_sample["qcd"]], "role": "background"},
            ],
            "max_events": 1500,
        },
        "training": {"epochs": 2, "verbose": False, "float_twin": False, "threads": 1},
        "hls": {"output_dir": str(tmp_path / "hls")},
    }
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return raw


@contextlib.contextmanager
def built_once(tmp_path_factory, name: str):
    """A folder shared by every pytest-xdist worker of this test session, and whether it still needs building.

    Yields ``(folder, build)`` holding an exclusive lock: the first worker gets ``build=True`` and
    builds into ``folder``; the others wait on the lock, then get ``build=False`` and read what
    it left. Without xdist the folder is under this session's base temp folder as usual.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # pytest-N/: shared by this session's workers (each has pytest-N/popen-gwK/)
    folder = base / f"shared-{name}"
    folder.mkdir(exist_ok=True)
    with open(base / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = folder / ".built"
        yield folder, not done.exists()
        done.touch()


@pytest.fixture(scope="session")
def runs(default_sample, tmp_path_factory):
    """The one short end-to-end run (6-bit default quantizers, float twin on) every module reads.

    Built once per test session, also under pytest-xdist (``built_once``); tests only read it,
    apart from additions (``compare``, ``hls_check.json``) that other tests never assert absent.
    Other quantizer settings are proven exact in ``tests/test_exactness.py`` (same C-simulation
    and stress assertions, without a whole run each).
    """
    from qtrigger.config import validate_config
    from qtrigger.runs.finished import FinishedRun
    from qtrigger.runs.pipeline import run

    with built_once(tmp_path_factory, "runs") as (tmp, build):
        raw = small_config_dict(default_sample, tmp)
        raw["name"] = "default_6bit"
        raw["training"]["float_twin"] = True
        config = validate_config(raw)
        result = run(config, progress=False) if build else FinishedRun.load(tmp / "runs" / config.name).result
    return {"default_6bit": (config, result, tmp)}
