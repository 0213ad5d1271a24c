"""Design-space scans: many run configs as independent tasks on dask.distributed, resumable.

A scan file (``configs/scan_*.yaml``) names a base run config, overrides applied to every
trial, and axes (config key → values). Every trial's resolved config is validated as a
:class:`~qtrigger.config.RunConfig` before anything runs. A trial is identified by the
first 12 hex digits of the sha256 of its resolved config as canonical JSON (without the
keys the scan itself sets: ``name``, ``output_dir``, ``hls.output_dir``,
``training.threads``, ``training.verbose``), so the same point has the same identity
whatever the worker count or output directory.

Layout of ``<output_dir>/<name>/``::

    scan.resolved.yaml     the scan config as run, and the resolved base config path
    trials.json            every planned trial: hash, index, axis values
    trials/<hash>/         one trial: <name>_<hash>/ (its run directory), hls/<name>_<hash>/,
                           attempts.jsonl (one line per attempt), trial.log (its output),
                           result.json (written last via rename: exists only when complete)
    results.parquet/.csv   rebuilt from the result files on every scan (never appended)
    pareto.png, report.md  signal efficiency vs estimated LUTs and vs latency

Each trial is one task (:func:`run_trial`); by default on a
``LocalCluster(n_workers=N, threads_per_worker=1, processes=True)``, or on any existing
cluster (``scheduler="tcp://host:8786"``). Each task sets TensorFlow's thread count to
``threads_per_worker`` so workers do not oversubscribe the machine. A worker that dies
mid-trial makes the trial run again (at most ``retries`` more times); a trial that fails
records its one-line error in its result file and the scan goes on.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import math
import os
import random
import re
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from qtrigger.config import (
    RunConfig,
    apply_override,
    config_to_dict,
    format_validation_error,
    resolve_sample_files,
    validate_config,
)
from qtrigger.errors import QTriggerError

log = logging.getLogger("qtrigger.scan")

FAIL_ONCE_ENV = "QTRIGGER_SCAN_FAIL_ONCE"
"""Fault injection: ``QTRIGGER_SCAN_FAIL_ONCE=<marker dir>`` makes the first attempt of every
trial kill its worker process (``os._exit(1)``), recording the kill as ``<marker dir>/<hash>``."""

SCAN_SET_KEYS = {
    "name": "each trial is named <scan>_<hash>",
    "output_dir": "trials run in <output_dir>/<scan>/trials/<hash>/",
    "hls.output_dir": "HLS projects go to <output_dir>/<scan>/trials/<hash>/hls/",
    "training.threads": "set by threads_per_worker (--threads-per-worker)",
    "training.verbose": "trials train quietly",
}
MAX_GRID = 10000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
COST_LABELS = {"lut": "estimated LUTs", "latency_ns": "estimated latency [ns]",
               "nonzero_parameters": "non-zero parameters"}


# ----------------------------------------------------------------------------------------
# Scan config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Budgets(_Strict):
    """Limits a design point must meet to be marked as fitting (per network instance)."""

    latency_ns: float | None = Field(None, gt=0)
    lut: int | None = Field(None, gt=0)
    dsp: int | None = Field(None, ge=0)

    def configured(self) -> dict[str, float]:
        """The budgets that are set, by result column."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ScanConfig(_Strict):
    """A design-space scan: base run config + overrides + axes, and how to sample them."""

    name: str
    base: str
    overrides: list[str] = Field(default_factory=list)
    axes: dict[str, Any] = Field(min_length=1)
    sampling: Literal["grid", "random"] = "grid"
    max_trials: int | None = Field(None, ge=1)
    seed: int = 0
    output_dir: str = "scans"
    retries: int = Field(2, ge=0, le=20)
    budgets: Budgets = Budgets()

    _source: Path | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name):
        if not _NAME.match(name):
            raise ValueError("must be letters, digits, '_', '-' or '.' (it names a directory)")
        return name

    @field_validator("overrides")
    @classmethod
    def _key_value(cls, overrides):
        for text in overrides:
            key = text.partition("=")[0].strip()
            if "=" not in text or not _KEY.match(key):
                raise ValueError(f"{text!r}: expected KEY.PATH=VALUE, e.g. training.epochs=2")
            if key in SCAN_SET_KEYS:
                raise ValueError(f"{key} cannot be overridden: {SCAN_SET_KEYS[key]}")
        return overrides

    @field_validator("axes")
    @classmethod
    def _expand_axes(cls, axes):
        expanded = {}
        for key, spec in axes.items():
            if not isinstance(key, str) or not _KEY.match(key):
                raise ValueError(f"axis {key!r}: expected a dotted config key such as quantization.weight_bits")
            if key in SCAN_SET_KEYS:
                raise ValueError(f"axis {key}: cannot be scanned: {SCAN_SET_KEYS[key]}")
            expanded[key] = _axis_values(key, spec)
        return expanded

    @property
    def source(self) -> Path | None:
        """The scan file this config was read from (None when built in code)."""
        return self._source

    def grid_size(self) -> int:
        """Number of points in the full grid of the axes."""
        return math.prod(len(v) for v in self.axes.values())


def _axis_values(key: str, spec) -> list:
    """A list of values, or ``{range: {start, stop, step}}`` (stop inclusive)."""
    if isinstance(spec, list):
        if not spec:
            raise ValueError(f"axis {key}: empty list of values")
        return list(spec)
    if isinstance(spec, dict) and set(spec) == {"range"} and isinstance(spec["range"], dict):
        rng = spec["range"]
        if set(rng) != {"start", "stop", "step"}:
            raise ValueError(f"axis {key}: range needs exactly start, stop, step (got {sorted(rng)})")
        start, stop, step = rng["start"], rng["stop"], rng["step"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, stop, step)):
            raise ValueError(f"axis {key}: range start/stop/step must be numbers (got {rng})")
        if step <= 0 or stop < start:
            raise ValueError(f"axis {key}: range needs step > 0 and stop >= start (got {rng})")
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        if count > MAX_GRID:
            raise ValueError(f"axis {key}: range has {count} values (more than {MAX_GRID})")
        integer = all(isinstance(v, int) for v in (start, stop, step))
        return [start + i * step if integer else round(start + i * step, 10) for i in range(count)]
    raise ValueError(f"axis {key}: expected a list of values or {{range: {{start, stop, step}}}} (got {spec!r})")


def load_scan_config(path: str | Path, overrides: list[str] | None = None) -> ScanConfig:
    """Read and validate a scan YAML; ``overrides`` (``key=value``) change scan-file keys."""
    path = Path(path)
    if not path.is_file():
        raise QTriggerError(f"scan config {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise QTriggerError(f"scan config {path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise QTriggerError(f"scan config {path}: expected a mapping at top level, got {type(raw).__name__}")
    for override in overrides or []:
        apply_override(raw, override)
    raw.setdefault("name", path.stem)
    scan = validate_scan_config(raw, source=str(path))
    scan._source = path
    return scan


def validate_scan_config(raw: dict, source: str = "scan config") -> ScanConfig:
    """Validate a plain dict into a ScanConfig; errors are one line naming the key."""
    try:
        return ScanConfig.model_validate(raw)
    except ValidationError as err:
        raise QTriggerError(f"{source}: {format_validation_error(err)}") from None


# ----------------------------------------------------------------------------------------
# Trials


@dataclass
class Trial:
    """One point of the scan: its axis values, identity and executable run config."""

    index: int
    hash: str
    axes: dict[str, Any]
    config: dict  # resolved run config as plain data, with the scan's run locations set

    @property
    def label(self) -> str:
        """``key=value, ...`` on one line."""
        return ", ".join(f"{k}={_compact(v)}" for k, v in self.axes.items())


def resolve_base_path(scan: ScanConfig) -> Path:
    """The base run config: relative to the scan file's directory, else to the working directory."""
    base = Path(scan.base)
    candidates = [base] if base.is_absolute() else (
        ([scan.source.parent / base] if scan.source is not None else []) + [Path.cwd() / base])
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    tried = " or ".join(str(c) for c in candidates)
    raise QTriggerError(f"scan {scan.name}: key base: run config {scan.base!r} not found (tried {tried})")


def scan_directory(scan: ScanConfig) -> Path:
    """``<output_dir>/<name>`` as an absolute path."""
    return (Path(scan.output_dir) / scan.name).absolute()


def trial_hash(config: RunConfig | dict) -> str:
    """sha256 of the canonical JSON of the resolved config without scan-set keys; 12 hex digits."""
    data = copy.deepcopy(config_to_dict(config) if isinstance(config, RunConfig) else config)
    for key in SCAN_SET_KEYS:
        node, parts = data, key.split(".")
        for part in parts[:-1]:
            node = node.get(part, {})
        node.pop(parts[-1], None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def plan_trials(scan: ScanConfig, threads_per_worker: int = 1) -> list[Trial]:
    """Every trial of the scan, validated as a RunConfig; a bad key or value raises before anything runs."""
    base_path = resolve_base_path(scan)
    try:
        base_raw = yaml.safe_load(base_path.read_text())
    except yaml.YAMLError as err:
        raise QTriggerError(f"scan {scan.name}: base {base_path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(base_raw, dict):
        raise QTriggerError(f"scan {scan.name}: base {base_path}: expected a mapping of sections")
    for override in scan.overrides:
        try:
            apply_override(base_raw, override)
        except QTriggerError as err:
            raise QTriggerError(f"scan {scan.name}: overrides: {err}") from None
    checked_samples: set[str] = set()

    def build(axes: dict, what: str) -> RunConfig:
        raw = copy.deepcopy(base_raw)
        for key, value in axes.items():
            _set_key(raw, key, copy.deepcopy(value), f"scan {scan.name}: axis {key}")
        raw.update(name=scan.name, output_dir=scan.output_dir)
        raw.setdefault("training", {}).update(threads=threads_per_worker, verbose=False)
        config = validate_config(raw, source=f"scan {scan.name}: {what}")
        samples = json.dumps(config_to_dict(config)["data"]["samples"], sort_keys=True)
        if samples not in checked_samples:
            try:
                resolve_sample_files(config)
            except QTriggerError as err:
                raise QTriggerError(f"scan {scan.name}: {what}: {err}") from None
            checked_samples.add(samples)
        return config

    build({}, f"base {base_path.name} with overrides")
    for key, values in scan.axes.items():  # each value alone first: the error names one axis value
        for value in values:
            build({key: value}, f"axis {key}={_compact(value)}")

    keys, value_lists = list(scan.axes), list(scan.axes.values())
    size = scan.grid_size()
    if scan.sampling == "grid":
        if size > MAX_GRID:
            raise QTriggerError(f"scan {scan.name}: key axes: the grid has {size} points (more than {MAX_GRID}); "
                                "use sampling: random with max_trials")
        if scan.max_trials is not None and size > scan.max_trials:
            raise QTriggerError(f"scan {scan.name}: key max_trials: the grid has {size} points, more than "
                                f"max_trials={scan.max_trials}; raise max_trials or use sampling: random")
        indices = range(size)
    else:
        if scan.max_trials is None:
            raise QTriggerError(f"scan {scan.name}: key max_trials: sampling: random needs max_trials")
        indices = random.Random(scan.seed).sample(range(size), min(scan.max_trials, size))

    trials: list[Trial] = []
    seen: dict[str, Trial] = {}
    scan_dir = scan_directory(scan)
    for flat in indices:
        axes = dict(zip(keys, _unflatten(flat, value_lists)))
        config = build(axes, "trial " + ", ".join(f"{k}={_compact(v)}" for k, v in axes.items()))
        digest = trial_hash(config)
        if digest in seen:
            log.warning("scan %s: trial %s gives the same run config as %s; running it once",
                        scan.name, axes, seen[digest].axes)
            continue
        trial = Trial(len(trials), digest, axes, _runnable(config, scan, scan_dir / "trials" / digest, digest))
        seen[digest] = trial
        trials.append(trial)
    return trials


def _unflatten(flat: int, value_lists: list[list]) -> list:
    """Mixed-radix decode of a grid index (last axis fastest, like itertools.product)."""
    out = []
    for values in reversed(value_lists):
        flat, i = divmod(flat, len(values))
        out.append(values[i])
    return out[::-1]


def _set_key(raw: dict, key: str, value, what: str) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise QTriggerError(f"{what}: {part} is not a section of the run config")
        node = child
    node[parts[-1]] = value


def _runnable(config: RunConfig, scan: ScanConfig, trial_dir: Path, digest: str) -> dict:
    """The trial's config with absolute sample paths and run locations inside its trial directory."""
    data = config_to_dict(config)
    data["name"] = f"{scan.name}_{digest}"
    data["output_dir"] = str(trial_dir)
    data["hls"]["output_dir"] = str(trial_dir / "hls")
    for sample in data["data"]["samples"]:
        sample["files"] = [f if os.path.isabs(f) else os.path.abspath(f) for f in sample["files"]]
    return data


def _compact(value) -> str:
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# ----------------------------------------------------------------------------------------
# The task that runs on a worker


def run_trial(spec: dict) -> dict:
    """Run one trial on a dask worker and write its ``result.json`` (last, by rename).

    ``spec``: ``hash``, ``index``, ``axes``, ``config`` (plain run config), ``trial_dir``,
    ``scan``, and optionally ``fail_once`` (fault-injection marker directory).
    """
    trial_dir = Path(spec["trial_dir"])
    trial_dir.mkdir(parents=True, exist_ok=True)
    started_wall, started = time.perf_counter(), _now()
    worker = _worker_address()
    _append_line(trial_dir / "attempts.jsonl", {"started": started, "pid": os.getpid(), "host": socket.gethostname(),
                                                "worker": worker, "submission": spec.get("submission", 1)})
    fail_dir = spec.get("fail_once") or os.environ.get(FAIL_ONCE_ENV)
    if fail_dir:
        _fail_once(Path(fail_dir), spec["hash"])
    _remove_partials(trial_dir)
    status, error, metrics, threads = "ok", None, {}, None
    log_path = trial_dir / "trial.log"
    with _output_to(log_path) if _alone_in_process() else contextlib.nullcontext():
        try:
            from qtrigger.pipeline import run

            _quiet_tensorflow()
            config = validate_config(spec["config"], source=f"trial {spec['hash']}")
            metrics = run(config, overwrite=True, progress=False)
        except QTriggerError as err:
            status, error = "failed", _one_line(str(err))
        except Exception as err:  # the scan goes on; the traceback is kept in trial.log
            import traceback

            traceback.print_exc()
            status, error = "failed", _one_line(f"{type(err).__name__}: {err}")
        finally:
            threads = _tensorflow_threads()
            _release_tensorflow()
    result = {
        "hash": spec["hash"], "scan": spec["scan"], "index": spec["index"], "status": status, "error": error,
        "axes": spec["axes"], "metrics": summarise_metrics(metrics) if metrics else {},
        "wall_seconds": round(time.perf_counter() - started_wall, 2), "started": started, "finished": _now(),
        "attempts": _count_lines(trial_dir / "attempts.jsonl"), "host": socket.gethostname(), "pid": os.getpid(),
        "worker": worker, "tensorflow_threads": threads, "requested_threads": spec["config"]["training"]["threads"],
        "run_dir": str(Path(spec["config"]["output_dir"]) / spec["config"]["name"]),
        "hls_dir": str(Path(spec["config"]["hls"]["output_dir"]) / spec["config"]["name"]),
        "log": str(log_path),
    }
    write_result(trial_dir, result)
    return result


def _fail_once(marker_dir: Path, digest: str) -> None:
    """Kill this worker process on the first attempt of a trial (the marker file records it)."""
    marker_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(marker_dir / digest, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, f"{os.getpid()} {_now()}\n".encode())
    os.fsync(fd)
    os.close(fd)
    os._exit(1)


def write_result(trial_dir: Path, result: dict) -> None:
    """``result.json`` via a temporary name and a rename, so it exists only when complete."""
    temp = Path(trial_dir) / f".result.json.{os.getpid()}.{time.monotonic_ns()}.tmp"
    temp.write_text(json.dumps(result, indent=2, default=_json_default))
    os.replace(temp, Path(trial_dir) / "result.json")


def _remove_partials(trial_dir: Path) -> None:
    """Staging directories left by an attempt whose worker died."""
    for parent in (trial_dir, trial_dir / "hls"):
        for stale in parent.glob(".*.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in parent.glob(".*.old-*"):
            shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def _output_to(path: Path):
    """Send this process's stdout/stderr (Python and native: TensorFlow, g++) to the trial log."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _alone_in_process() -> bool:
    """True in a one-thread dask worker: only then may a trial take over the process's stdout/stderr."""
    try:
        from distributed import get_worker

        return get_worker().state.nthreads == 1
    except (ImportError, ValueError, AttributeError):
        return False


def _quiet_tensorflow() -> None:
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", message=r"The `keras.constraints.serialize\(\)` API")
    warnings.filterwarnings("ignore", message=r"You are saving your model as an HDF5 file")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _tensorflow_threads() -> dict | None:
    if "tensorflow" not in sys.modules:
        return None
    import tensorflow as tf

    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def _release_tensorflow() -> None:
    if "tf_keras" in sys.modules:
        import gc

        sys.modules["tf_keras"].backend.clear_session()
        gc.collect()


def _worker_address() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


def _append_line(path: Path, payload: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(payload) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _count_lines(path: Path) -> int:
    try:
        return sum(1 for line in Path(path).read_text().splitlines() if line.strip())
    except FileNotFoundError:
        return 0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def _json_default(value):
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:
        pass
    return str(value)


def _get(metrics: dict, dotted: str):
    node = metrics
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def summarise_metrics(metrics: dict) -> dict:
    """The numbers a scan compares, flat; a metric the run did not produce is None."""
    get = lambda key: _get(metrics, key)  # noqa: E731
    trigger_eff, qat_eff = get("trigger.signal_efficiency"), get("qat.signal_efficiency")
    if trigger_eff is not None:
        source = "trigger.signal_efficiency (at the target rate)"
    else:
        target = get("qat.target_background_efficiency")
        source = "qat.signal_efficiency" + (f" (at background efficiency {target:g})" if target is not None else "")
    out = {
        "qat_auc": get("qat.auc"), "float_auc": get("float.auc"),
        "signal_efficiency": trigger_eff if trigger_eff is not None else qat_eff,
        "signal_efficiency_source": source if (trigger_eff is not None or qat_eff is not None) else None,
        "qat_signal_efficiency": qat_eff, "trigger_signal_efficiency": trigger_eff,
        "trigger_rate_hz": get("trigger.rate_hz"), "trigger_threshold_code": get("trigger.threshold_code"),
        "csim_jets": get("csim.jets"), "csim_mismatched_jets": get("csim.mismatched_jets"),
        "nonzero_parameters": get("model.nonzero_parameters"), "parameters": get("model.parameters"),
        "run_wall_seconds": get("wall_seconds"),
    }
    for name in ("latency_cycles", "latency_ns", "lut", "ff", "dsp", "bram"):
        out[name] = get(f"hls.estimate.{name}")
    per_event = get("hls.estimate_per_event")
    if isinstance(per_event, dict):
        for name in ("instances", "latency_ns", "meets_ii"):
            out[f"event_{name}"] = per_event.get(name)
        for name in ("lut", "ff", "dsp", "bram"):
            out[f"event_{name}"] = (per_event.get("total") or {}).get(name)
    out["run_budget_fits"] = get("hls.budget.fits")
    return out


# ----------------------------------------------------------------------------------------
# Running a scan


@dataclass
class ScanResult:
    """What a scan produced: the table (one row per planned trial) and where it is."""

    name: str
    directory: Path
    table: Any  # pandas.DataFrame
    trials: int
    ran: int
    skipped: int
    ok: int
    failed: int
    missing: int
    worker_deaths: int
    wall_seconds: float
    workers: int | None
    threads_per_worker: int
    cost_axes: dict[str, str]
    pareto: dict[str, list[str]] = field(default_factory=dict)

    @property
    def results_path(self) -> Path:
        return self.directory / "results.parquet"

    @property
    def report_path(self) -> Path:
        return self.directory / "report.md"

    @property
    def plot_path(self) -> Path:
        return self.directory / "pareto.png"


def default_parallelism(workers: int | None, threads_per_worker: int | None, scheduler) -> tuple[int | None, int]:
    """Local cluster: fill the cores (workers × threads ≈ cores). Existing cluster: 1 thread unless given."""
    cores = os.cpu_count() or 1
    if scheduler is not None:
        return None, threads_per_worker or 1
    if workers is None and threads_per_worker is None:
        return cores, 1
    if workers is None:
        return max(1, cores // threads_per_worker), threads_per_worker
    if threads_per_worker is None:
        return workers, max(1, cores // workers)
    return workers, threads_per_worker


def run_scan(scan_config: ScanConfig | str | Path, workers: int | None = None, scheduler=None, resume: bool = False,
             progress: bool = True, threads_per_worker: int | None = None, overwrite: bool = False,
             retry_failed: bool = False, fail_once_dir: str | Path | None = None) -> ScanResult:
    """Run every trial of a scan as a dask task, then write results.parquet/.csv, pareto.png and report.md.

    ``scheduler``: None (start a LocalCluster of ``workers`` processes, one task each), an
    address ``tcp://host:8786``, a ``distributed.Client`` or a cluster object. ``resume``
    skips trials whose result file exists (``retry_failed`` re-runs those that failed);
    ``overwrite`` runs every trial again. Without either, finished trials are an error.
    ``fail_once_dir`` (default: env ``QTRIGGER_SCAN_FAIL_ONCE``) is fault injection for tests:
    each trial's first attempt kills its worker process.
    """
    scan = scan_config if isinstance(scan_config, ScanConfig) else load_scan_config(scan_config)
    if resume and overwrite:
        raise QTriggerError("scan: choose --resume (skip finished trials) or --overwrite (run all again), not both")
    if workers is not None and workers < 1:
        raise QTriggerError(f"scan: --workers must be >= 1 (got {workers})")
    if threads_per_worker is not None and threads_per_worker < 1:
        raise QTriggerError(f"scan: --threads-per-worker must be >= 1 (got {threads_per_worker})")
    workers, threads = default_parallelism(workers, threads_per_worker, scheduler)
    trials = plan_trials(scan, threads)  # everything is validated before anything runs or is written
    scan_dir = scan_directory(scan)
    done = {t.hash: _read_result(scan_dir / "trials" / t.hash) for t in trials}
    done = {h: r for h, r in done.items() if r is not None}
    if done and not (resume or overwrite):
        raise QTriggerError(f"scan directory {scan_dir} already has {len(done)} finished trial(s) of {len(trials)}; "
                            "pass --resume to run only the missing ones or --overwrite to run all again")
    if overwrite:
        for trial in trials:
            for name in ("result.json", "attempts.jsonl"):
                (scan_dir / "trials" / trial.hash / name).unlink(missing_ok=True)
        done = {}
    if retry_failed:
        for digest in [h for h, r in done.items() if r.get("status") != "ok"]:
            (scan_dir / "trials" / digest / "result.json").unlink()
            del done[digest]
    to_run = [t for t in trials if t.hash not in done]
    _write_plan(scan, scan_dir, trials, threads)

    started = time.perf_counter()
    stats = {"deaths": 0, "workers": workers}
    try:
        if to_run:
            fail_once = str(fail_once_dir) if fail_once_dir else os.environ.get(FAIL_ONCE_ENV)
            with _client(workers, scheduler, threads) as client:
                stats["workers"] = len(client.nthreads()) or workers
                _execute(client, scan, to_run, scan_dir, threads, fail_once, progress, stats)
    except KeyboardInterrupt:
        write_outputs(scan, trials, scan_dir)  # the table of what finished; --resume runs the rest
        raise
    wall = round(time.perf_counter() - started, 1)
    table, cost_axes, pareto = write_outputs(scan, trials, scan_dir, wall_seconds=wall)
    statuses = table["status"].tolist() if len(table) else []
    return ScanResult(
        name=scan.name, directory=scan_dir, table=table, trials=len(trials), ran=len(to_run),
        skipped=len(trials) - len(to_run), ok=statuses.count("ok"), failed=statuses.count("failed"),
        missing=statuses.count("missing"), worker_deaths=stats["deaths"], wall_seconds=wall,
        workers=stats["workers"], threads_per_worker=threads, cost_axes=cost_axes, pareto=pareto,
    )


@contextlib.contextmanager
def _client(workers: int | None, scheduler, threads: int):
    """A Client on a new LocalCluster, or on the given scheduler address / client / cluster."""
    from distributed import Client, LocalCluster

    if scheduler is None:
        # allowed_failures=0: every worker death reaches the client at once as KilledWorker,
        # which resubmits the trial itself, so `retries` bounds the attempts exactly.
        # Numerical libraries get the same thread budget as TensorFlow (Dask's default is 1).
        env = {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.ERROR, scheduler_kwargs={"allowed_failures": 0}, env=env) as cluster, \
                Client(cluster) as client:
            yield client
        return
    if isinstance(scheduler, Client):
        yield scheduler
        return
    address = getattr(scheduler, "scheduler_address", scheduler)
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as err:
        raise QTriggerError(f"scan: cannot connect to the Dask scheduler at {address} ({_one_line(str(err))})") from None
    try:
        yield client
    finally:
        client.close()


def _execute(client, scan: ScanConfig, to_run: list[Trial], scan_dir: Path, threads: int, fail_once: str | None,
             progress: bool, stats: dict) -> None:
    """Submit at most one trial per worker thread; resubmit a trial whose worker died."""
    from collections import deque

    from distributed import wait
    from distributed.scheduler import KilledWorker
    from tqdm import tqdm

    pending = deque(to_run)
    inflight: dict = {}
    submissions: dict[str, int] = {}
    counts = {"ok": 0, "failed": 0}
    warned_threads = False
    bar = tqdm(total=len(to_run), desc=f"scan {scan.name}", unit="trial", disable=not progress, file=sys.stderr)

    def note(text):
        if progress:
            bar.write(text)
        else:
            log.warning(text)

    def submit(trial: Trial):
        submissions[trial.hash] = submissions.get(trial.hash, 0) + 1
        spec = {"hash": trial.hash, "index": trial.index, "axes": trial.axes, "config": trial.config,
                "trial_dir": str(scan_dir / "trials" / trial.hash), "scan": scan.name,
                "submission": submissions[trial.hash], "fail_once": fail_once}
        future = client.submit(run_trial, spec, key=f"trial-{trial.hash}-{submissions[trial.hash]}",
                               pure=False, retries=scan.retries)
        inflight[future] = trial

    def finish(trial: Trial, status: str):
        counts[status] += 1
        bar.update(1)

    shown = [None]

    def show():
        state = (counts["ok"], counts["failed"], len(inflight))
        if state != shown[0]:
            bar.set_postfix(ok=state[0], failed=state[1], running=state[2], refresh=True)
            shown[0] = state

    try:
        while pending or inflight:
            nthreads = client.nthreads()
            if not warned_threads and any(n > 1 for n in nthreads.values()):
                note("scan: some workers run more than one task at a time; trials in one process share "
                     "TensorFlow's seeds and thread pools (start workers with --nthreads 1)")
                warned_threads = True
            capacity = max(1, sum(nthreads.values()))
            while pending and len(inflight) < capacity:
                submit(pending.popleft())
            show()
            try:
                finished = wait(list(inflight), timeout=2, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                continue
            for future in finished:
                trial = inflight.pop(future)
                trial_dir = scan_dir / "trials" / trial.hash
                if future.status == "finished":
                    try:
                        status = future.result()["status"]
                    except Exception:  # result lost with its worker: the file on disk is the record
                        status = (_read_result(trial_dir) or {}).get("status", "failed")
                    finish(trial, status)
                    continue
                try:
                    error = future.exception()
                except BaseException as err:  # cancelled
                    error = err
                future.release()
                written = _read_result(trial_dir)
                if written is not None:  # the worker died after the result was complete
                    finish(trial, written.get("status", "failed"))
                elif isinstance(error, KilledWorker):
                    stats["deaths"] += 1
                    if submissions[trial.hash] <= scan.retries:
                        note(f"scan: worker died running trial {trial.hash} ({trial.label}); "
                             f"running it again ({submissions[trial.hash]} of {scan.retries} retries)")
                        submit(trial)
                    else:
                        message = (f"the worker died on each of {submissions[trial.hash]} attempts "
                                   "(KilledWorker; out of memory or a crash in native code?)")
                        _record_failure(trial, scan, trial_dir, message)
                        note(f"scan: trial {trial.hash} failed: {message}")
                        finish(trial, "failed")
                else:
                    _record_failure(trial, scan, trial_dir, _one_line(f"{type(error).__name__}: {error}"))
                    finish(trial, "failed")
            show()
    except BaseException:
        for future in inflight:
            future.cancel()
        raise
    finally:
        bar.close()


def _record_failure(trial: Trial, scan: ScanConfig, trial_dir: Path, message: str) -> None:
    """A result file for a trial that never produced one itself."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    write_result(trial_dir, {"hash": trial.hash, "scan": scan.name, "index": trial.index, "status": "failed",
                             "error": message, "axes": trial.axes, "metrics": {}, "wall_seconds": None,
                             "started": None, "finished": _now(), "attempts": _count_lines(trial_dir / "attempts.jsonl")})


def _read_result(trial_dir: Path) -> dict | None:
    path = Path(trial_dir) / "result.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError):
        return None


def _write_plan(scan: ScanConfig, scan_dir: Path, trials: list[Trial], threads: int) -> None:
    scan_dir.mkdir(parents=True, exist_ok=True)
    resolved = scan.model_dump(mode="json")
    resolved["base_resolved"] = str(resolve_base_path(scan))
    resolved["threads_per_worker"] = threads
    _atomic_text(scan_dir / "scan.resolved.yaml", yaml.safe_dump(resolved, sort_keys=False))
    _atomic_text(scan_dir / "trials.json", json.dumps(
        [{"index": t.index, "hash": t.hash, "axes": t.axes} for t in trials], indent=2))


def _atomic_text(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


# ----------------------------------------------------------------------------------------
# Results: table, Pareto fronts, plot, report

METRIC_COLUMNS = [
    "qat_auc", "float_auc", "signal_efficiency", "qat_signal_efficiency", "trigger_signal_efficiency",
    "trigger_rate_hz", "trigger_threshold_code", "csim_jets", "csim_mismatched_jets",
    "latency_cycles", "latency_ns", "lut", "ff", "dsp", "bram",
    "event_instances", "event_latency_ns", "event_meets_ii", "event_lut", "event_ff", "event_dsp", "event_bram",
    "run_budget_fits", "nonzero_parameters", "parameters", "run_wall_seconds", "signal_efficiency_source",
]


def collect_results(scan: ScanConfig, trials: list[Trial], scan_dir: Path):
    """One row per planned trial, from the result files (a trial without one has status 'missing')."""
    import pandas as pd

    rows = []
    for trial in trials:
        result = _read_result(scan_dir / "trials" / trial.hash) or {}
        row = {"hash": trial.hash, "index": trial.index, "status": result.get("status", "missing")}
        row.update({key: trial.axes[key] for key in scan.axes})
        metrics = result.get("metrics") or {}
        row.update({name: metrics.get(name) for name in METRIC_COLUMNS})
        row.update(wall_seconds=result.get("wall_seconds"), attempts=result.get("attempts"),
                   tensorflow_threads=(result.get("tensorflow_threads") or {}).get("intra_op"),
                   started=result.get("started"), finished=result.get("finished"), error=result.get("error"))
        rows.append(row)
    table = pd.DataFrame(rows)
    for key in scan.axes:  # lists (model.hidden) and mixed types as compact text, so parquet/csv can hold them
        values = table[key].tolist()
        if any(isinstance(v, (list, dict, tuple)) for v in values) or len({type(v) for v in values}) > 1 and \
                not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            table[key] = [_compact(v) for v in values]
    for name in METRIC_COLUMNS:
        if name != "signal_efficiency_source" and table[name].isna().all():
            table[name] = table[name].astype("float64")
    return table


def pareto_front(efficiency, cost) -> list[bool]:
    """True for points no other point beats (higher-or-equal efficiency at lower-or-equal cost)."""
    points = [(c, e, i) for i, (e, c) in enumerate(zip(efficiency, cost)) if _number(e) and _number(c)]
    points.sort(key=lambda p: (p[0], -p[1]))
    front = [False] * len(efficiency)
    best = -math.inf
    for c, e, i in points:
        if e > best:
            front[i] = True
            best = e
    return front


def _number(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def choose_cost_axes(table) -> dict[str, str]:
    """``{"lut": column, "latency": column}``: estimates when present, else non-zero parameters."""
    ok = table[table["status"] == "ok"] if len(table) else table
    axes = {}
    for kind, column in (("lut", "lut"), ("latency", "latency_ns")):
        present = len(ok) and ok[column].notna().any()
        axes[kind] = column if present else "nonzero_parameters"
    return axes


def fits_budgets(row, budgets: Budgets) -> bool | None:
    """True/False against the configured budgets; None when none are set or an estimate is missing."""
    limits = budgets.configured()
    if not limits:
        return None
    verdict = True
    for column, limit in limits.items():
        value = row.get(column)
        if not _number(value):
            return None
        verdict = verdict and value <= limit
    return verdict


def write_outputs(scan: ScanConfig, trials: list[Trial], scan_dir: Path, wall_seconds: float | None = None):
    """Rebuild results.parquet/.csv from the result files, then pareto.png and report.md."""
    table = collect_results(scan, trials, scan_dir)
    ok = (table["status"] == "ok").tolist()
    table["fits_budgets"] = [fits_budgets(row, scan.budgets) if good else None
                             for row, good in zip(table.to_dict("records"), ok)]
    cost_axes = choose_cost_axes(table)
    pareto = {}
    for kind, column in cost_axes.items():
        eff = [e if good else None for e, good in zip(table["signal_efficiency"].tolist(), ok)]
        front = pareto_front(eff, table[column].tolist())
        table[f"pareto_{kind}"] = front
        pareto[kind] = [h for h, on in zip(table["hash"], front) if on]
    table["fits_budgets"] = table["fits_budgets"].astype("boolean")
    temp = scan_dir / f".results.parquet.{os.getpid()}.tmp"
    table.to_parquet(temp, index=False)
    os.replace(temp, scan_dir / "results.parquet")
    temp = scan_dir / f".results.csv.{os.getpid()}.tmp"
    table.to_csv(temp, index=False)
    os.replace(temp, scan_dir / "results.csv")
    plot_pareto(scan_dir / "pareto.png", table, scan, cost_axes)
    _atomic_text(scan_dir / "report.md", render_scan_report(scan, table, cost_axes, wall_seconds))
    return table, cost_axes, pareto


def plot_pareto(path: Path, table, scan: ScanConfig, cost_axes: dict[str, str]) -> None:
    """Signal efficiency vs cost (LUTs, latency; or non-zero parameters), front joined, budget fits marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = list(dict.fromkeys(cost_axes.values()))  # one panel when both fall back to parameters
    fig, axes = plt.subplots(1, len(columns), figsize=(6.5 * len(columns), 5), squeeze=False)
    ok = table[(table["status"] == "ok") & table["signal_efficiency"].notna()]
    limits = scan.budgets.configured()
    for ax, column in zip(axes[0], columns):
        kind = next(k for k, c in cost_axes.items() if c == column)
        data = ok[ok[column].notna()]
        for verdict, style in ((True, dict(marker="o", color="tab:green", label="fits budgets")),
                               (False, dict(marker="x", color="tab:red", label="over budget")),
                               (None, dict(marker="o", facecolors="none", edgecolors="tab:blue",
                                           label="budgets not set" if not limits else "estimate missing"))):
            chosen = data[data["fits_budgets"].isna()] if verdict is None else \
                data[data["fits_budgets"].fillna(not verdict) == verdict]
            if len(chosen):
                ax.scatter(chosen[column], chosen["signal_efficiency"], s=40, zorder=3, **style)
        front = data[data[f"pareto_{kind}"]].sort_values(column)
        if len(front):
            ax.step(front[column], front["signal_efficiency"], where="post", color="black", lw=1.2, zorder=2)
            ax.scatter(front[column], front["signal_efficiency"], s=130, facecolors="none", edgecolors="black",
                       lw=1.2, zorder=4, label="Pareto front")
            for _, row in front.iterrows():
                ax.annotate(row["hash"][:6], (row[column], row["signal_efficiency"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
        if column in limits:
            ax.axvline(limits[column], color="tab:red", ls="--", lw=1, label=f"budget {limits[column]:g}")
        label = COST_LABELS.get(column, column)
        if column == "nonzero_parameters":
            label += " (no hardware estimate)"
        ax.set_xlabel(label)
        ax.set_ylabel("signal efficiency")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        if not len(data):
            ax.text(0.5, 0.5, "no finished trial", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"scan {scan.name}: {len(ok)} of {len(table)} trials")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_scan_report(scan: ScanConfig, table, cost_axes: dict[str, str], wall_seconds: float | None) -> str:
    """``report.md``: what was scanned, the Pareto fronts, every trial, failures."""
    n_ok = int((table["status"] == "ok").sum())
    n_failed = int((table["status"] == "failed").sum())
    n_missing = int((table["status"] == "missing").sum())
    axis_keys = list(scan.axes)
    lines = [f"# Scan `{scan.name}`", ""]
    lines.append(f"- base run config: `{scan.base}`; overrides for every trial: "
                 + (", ".join(f"`{o}`" for o in scan.overrides) or "none"))
    lines.append("- axes: " + "; ".join(f"`{k}` ∈ {{{', '.join(_compact(v) for v in vs)}}}" for k, vs in scan.axes.items()))
    lines.append(f"- sampling: {scan.sampling}" + (f" (max_trials {scan.max_trials}, seed {scan.seed})"
                                                  if scan.sampling == "random" else ""))
    lines.append(f"- trials: {len(table)} — {n_ok} ok, {n_failed} failed"
                 + (f", {n_missing} not finished (run again with `--resume`)" if n_missing else "")
                 + (f"; wall time {wall_seconds:g} s" if wall_seconds is not None else ""))
    sources = sorted({s for s in table["signal_efficiency_source"].dropna()})
    lines.append("- signal efficiency: " + ("; ".join(f"`{s}`" for s in sources) or "n/a"))
    limits = scan.budgets.configured()
    lines.append("- budgets (per network instance): " + (", ".join(f"{k} ≤ {v:g}" for k, v in limits.items())
                                                         if limits else "none configured"))
    fallback = [kind for kind, column in cost_axes.items() if column == "nonzero_parameters"]
    if fallback:
        lines.append(f"- **no hardware estimate in the results** for {' and '.join(fallback)}: "
                     "the cost axis there is `model.nonzero_parameters` instead")
    lines += ["", "![Pareto fronts](pareto.png)", ""]
    columns = ["hash", *axis_keys, "signal_efficiency", "qat_auc", "lut", "latency_ns", "dsp",
               "nonzero_parameters", "csim_mismatched_jets", "fits_budgets"]
    for kind, column in cost_axes.items():
        title = {"lut": "estimated LUTs", "latency": "estimated latency"}[kind]
        if column == "nonzero_parameters":
            title += " (fallback: non-zero parameters)"
        front = table[table[f"pareto_{kind}"]].sort_values(column)
        lines += [f"## Pareto front: signal efficiency vs {title}", ""]
        lines += _markdown_table(front, columns) if len(front) else ["no finished trial with both numbers", ""]
    lines += ["## All trials", ""]
    lines += _markdown_table(table.sort_values("signal_efficiency", ascending=False, na_position="last"),
                             columns + ["float_auc", "wall_seconds", "attempts", "status"])
    failed = table[table["status"] == "failed"]
    if len(failed):
        lines += ["## Failed trials", ""]
        lines += _markdown_table(failed, ["hash", *axis_keys, "attempts", "error"])
    lines += ["Per trial: `trials/<hash>/result.json` (summary), `trials/<hash>/<scan>_<hash>/` (the run: "
              "metrics.json, report.md, plots), `trials/<hash>/hls/` (the HLS project), `trials/<hash>/trial.log`.", ""]
    return "\n".join(lines)


def _markdown_table(table, columns: list[str]) -> list[str]:
    columns = [c for c in columns if c in table.columns]
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table[columns].to_dict("records"):
        out.append("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
    return out + [""]


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    try:
        import pandas as pd

        if value is pd.NA:
            return "–"
    except ImportError:
        pass
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


# ----------------------------------------------------------------------------------------
# CLI glue


def add_arguments(parser) -> None:
    """Arguments of ``qtrigger scan``."""
    parser.add_argument("config", help="scan config YAML, e.g. configs/scan_ci.yaml")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="local worker processes (default: cores / threads-per-worker)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run on an existing Dask cluster, e.g. tcp://host:8786 (instead of a local one)")
    parser.add_argument("--threads-per-worker", type=int, default=None, metavar="T",
                        help="TensorFlow threads per trial (default: cores / workers locally, 1 on --scheduler)")
    parser.add_argument("--resume", action="store_true", help="skip trials whose result.json exists")
    parser.add_argument("--retry-failed", action="store_true", help="with --resume: run failed trials again too")
    parser.add_argument("--overwrite", action="store_true", help="run every trial again")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a scan-file key, e.g. --set output_dir=/tmp/scans --set max_trials=4")
    parser.add_argument("--run-set", dest="run_overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="add a run-config override for every trial, e.g. --run-set training.epochs=2")
    parser.add_argument("--dry-run", action="store_true", help="list the trials (validated) and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_from_args(args) -> int:
    """``qtrigger scan``: 0 when every trial succeeded, 1 when some failed (results are written either way)."""
    scan = load_scan_config(args.config, args.overrides)
    if args.run_overrides:
        raw = scan.model_dump()
        raw["overrides"] = list(scan.overrides) + list(args.run_overrides)
        source = scan.source
        scan = validate_scan_config(raw, source=f"{args.config} (--run-set)")
        scan._source = source
    if args.dry_run:
        _, threads = default_parallelism(args.workers, args.threads_per_worker, args.scheduler)
        trials = plan_trials(scan, threads)
        scan_dir = scan_directory(scan)
        for trial in trials:
            result = _read_result(scan_dir / "trials" / trial.hash)
            print(f"{trial.hash}  {(result or {}).get('status', 'pending'):8s} {trial.label}")
        print(f"{len(trials)} trials, all valid; outputs in {scan_dir}")
        return 0
    result = run_scan(scan, workers=args.workers, scheduler=args.scheduler, resume=args.resume,
                      progress=not args.no_progress, threads_per_worker=args.threads_per_worker,
                      overwrite=args.overwrite, retry_failed=args.retry_failed)
    print(summary_text(result))
    return 0 if result.failed == 0 and result.missing == 0 else 1


def summary_text(result: ScanResult) -> str:
    """A few lines for the terminal."""
    where = f"{result.workers} workers" if result.workers else "the cluster"
    lines = [f"scan {result.name}: {result.trials} trials — {result.ok} ok, {result.failed} failed"
             + (f", {result.skipped} already done" if result.skipped else "")
             + (f", {result.worker_deaths} worker deaths (retried)" if result.worker_deaths else "")
             + f"; {result.wall_seconds:g} s on {where} × {result.threads_per_worker} TensorFlow thread(s)"]
    table = result.table
    for kind, column in result.cost_axes.items():
        front = table[table["hash"].isin(result.pareto.get(kind, []))].sort_values(column)
        note = " (no hardware estimate: non-zero parameters)" if column == "nonzero_parameters" else ""
        lines.append(f"Pareto front, signal efficiency vs {column}{note}:")
        for _, row in front.iterrows():
            fits = {"yes": "fits budgets", "no": "over budget"}.get(_cell(row["fits_budgets"]), "")
            lines.append(f"  {row['hash']}  eff {row['signal_efficiency']:.4f}  {column} {row[column]:g}  {fits}")
    lines.append(f"results: {result.results_path} (and .csv), {result.plot_path}, {result.report_path}")
    return "\n".join(lines)
