"""Scan files and trial planning: validated up front, one hash per design point."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from qtrigger.config import (
    RunConfig,
    apply_override,
    config_to_dict,
    parse_yaml,
    read_yaml_mapping,
    resolve_sample_files,
    set_dotted,
    validate_as,
    validate_config,
)
from qtrigger.errors import QTriggerError
from qtrigger.models.build import check_runnable
from qtrigger.rundir import NAME_PATTERN, NAME_RULE
from qtrigger.scan.search import SearchConfig, rung_settings, sample_points

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
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
COST_LABELS = {"lut": "estimated LUTs", "cost_lut": "LUTs (yosys where synthesized, else estimate)", "latency_ns": "estimated latency [ns]",
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
    qat_minus_float: float | None = Field(None, ge=-1, le=1)  # a minimum: QAT AUC - float twin AUC >= this

    def configured(self) -> dict[str, float]:
        """The budgets that are set, by result column."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ScanConfig(_Strict):
    """A design-space scan: base run config + overrides + axes, and how to sample them."""

    name: str
    base: str
    overrides: list[str] = Field(default_factory=list)
    axes: dict[str, Any] = Field(default_factory=dict)
    search: SearchConfig | None = None  # instead of axes: a seeded sampler (qtrigger.scan.search)
    # auto: grid signal_efficiency, search qat_auc; val_auc: the validation rows' AUC (choices without the test rows)
    physics: Literal["auto", "signal_efficiency", "qat_auc", "val_auc"] = "auto"
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
        if not NAME_PATTERN.match(name):
            raise ValueError(f"must be {NAME_RULE}")
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

    @model_validator(mode="after")
    def _axes_or_search(self):
        if bool(self.axes) == (self.search is not None):
            raise ValueError("give either axes (a grid) or search (a sampler), exactly one")
        spaces = [self.search.space, *(self.search.methods or {}).values()] if self.search else []
        for key in (k for space in spaces for k in space):
            if not _KEY.match(key) or key in SCAN_SET_KEYS:
                raise ValueError(f"search.space {key}: not a scannable dotted config key")
        return self

    @property
    def physics_column(self) -> str:
        """The result column the Pareto fronts and the search rank on."""
        if self.physics != "auto":
            return self.physics
        return "qat_auc" if self.search is not None else "signal_efficiency"

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


def load_scan_config(path: str | Path, overrides: list[str] | None = None,
                     run_overrides: list[str] | None = None) -> ScanConfig:
    """Read and validate a scan YAML; ``overrides`` (``key=value``) change scan-file keys,
    ``run_overrides`` are added to the run-config overrides of every trial."""
    path = Path(path)
    raw = read_yaml_mapping(path, overrides, what="scan config")
    source = str(path)
    if run_overrides:
        raw["overrides"] = list(raw.get("overrides") or []) + list(run_overrides)
        source += " (--run-set)"
    scan = validate_scan_config(raw, source=source)
    scan._source = path
    return scan


def validate_scan_config(raw: dict, source: str = "scan config") -> ScanConfig:
    """Validate a plain dict into a ScanConfig; errors are one line naming the key."""
    return validate_as(ScanConfig, raw, source)


# ----------------------------------------------------------------------------------------
# Trials


@dataclass
class Trial:
    """One point of the scan: its axis values, identity and executable run config."""

    index: int
    hash: str
    axes: dict[str, Any]
    config: dict  # resolved run config as plain data, with the scan's run locations set
    rung: int | None = None  # search: successive-halving rung (0 for random search)
    point: dict | None = None  # search: the sampled point (axes without the rung's settings)
    final: bool = True  # on the last rung (fully trained): eligible for the Pareto fronts

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
    """Every trial of the scan (a search: its first rung), validated as RunConfigs before anything runs."""
    if scan.search is not None:
        build, base = _builder(scan, threads_per_worker)
        return plan_rung(scan, threads_per_worker, 0, sample_points(scan.search, base.model.hidden), 0, build)
    return _plan_grid(scan, threads_per_worker)


def plan_rung(scan: ScanConfig, threads_per_worker: int, rung: int, points: list[dict], start_index: int,
              build=None) -> list[Trial]:
    """The trials of one search rung: each point with the rung's epochs (full epochs on the last rung,
    once per ``search.training_seeds`` entry there)."""
    if build is None:
        build, base = _builder(scan, threads_per_worker)
    else:
        base = build({}, "base")
    shown, hidden = rung_settings(scan.search, rung, base.training.epochs)
    final = not shown
    trials: list[Trial] = []
    seen: set[str] = set()
    seeds = scan.search.seed_settings() if final else [{}]  # several training seeds: the last rung only
    for point in points:
        for seed in seeds:
            axes = {**point, **shown, **seed}
            config = build({**axes, **hidden}, "trial " + ", ".join(f"{k}={_compact(v)}" for k, v in axes.items()))
            digest = trial_hash(config)
            if digest in seen:
                continue
            seen.add(digest)
            trial_dir = scan_directory(scan) / "trials" / digest
            trials.append(Trial(start_index + len(trials), digest, axes, _runnable(config, scan, trial_dir, digest),
                                rung=rung, point=point, final=final))
    return trials


def _builder(scan: ScanConfig, threads_per_worker: int):
    """``(build(axes, what) -> RunConfig, base RunConfig)``: the base with overrides, then axes, validated."""
    base_path = resolve_base_path(scan)
    base_raw = parse_yaml(base_path.read_text(), f"scan {scan.name}: base {base_path}")
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
            set_dotted(raw, key, copy.deepcopy(value), f"scan {scan.name}: axis {key}")
        raw.update(name=scan.name, output_dir=scan.output_dir)
        raw.setdefault("training", {}).update(threads=threads_per_worker, verbose=False)
        config = validate_config(raw, source=f"scan {scan.name}: {what}")
        try:  # what the method refuses (e.g. hgq with tfmot pruning) is an error now, not one per trial
            check_runnable(config.model, config.quantization, config.pruning)
        except QTriggerError as err:
            raise QTriggerError(f"scan {scan.name}: {what}: {err}") from None
        samples = json.dumps(config_to_dict(config)["data"]["samples"], sort_keys=True)
        if samples not in checked_samples:
            try:
                resolve_sample_files(config)
            except QTriggerError as err:
                raise QTriggerError(f"scan {scan.name}: {what}: {err}") from None
            checked_samples.add(samples)
        return config

    return build, build({}, f"base {base_path.name} with overrides")


def _plan_grid(scan: ScanConfig, threads_per_worker: int) -> list[Trial]:
    """The grid (or random subset of the grid) of ``axes``."""
    build, _ = _builder(scan, threads_per_worker)
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


