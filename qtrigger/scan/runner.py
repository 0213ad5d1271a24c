"""Running a scan: the Dask client, submission, retries of killed workers."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qtrigger.errors import QTriggerError, one_line
from qtrigger.rundir import atomic_write_text, locked_folder
from qtrigger.runtime import dask_client
from qtrigger.scan.plan import (
    FAIL_ONCE_ENV,
    ScanConfig,
    Trial,
    load_scan_config,
    plan_rung,
    plan_trials,
    resolve_base_path,
    scan_directory,
)
from qtrigger.scan.results import _cell, write_outputs
from qtrigger.scan.search import survivors
from qtrigger.scan.worker import _count_lines, _now, _read_result, run_trial, write_result

log = logging.getLogger("qtrigger.scan")



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
    physics: str = "signal_efficiency"  # the column the fronts rank on
    points: Any = None  # search with training_seeds: one row per point, worst over its seeds (the fronts' table)

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
    if workers is not None and workers < 1:
        raise QTriggerError(f"scan: --workers must be >= 1 (got {workers})")
    if threads_per_worker is not None and threads_per_worker < 1:
        raise QTriggerError(f"scan: --threads-per-worker must be >= 1 (got {threads_per_worker})")
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
    workers, threads = default_parallelism(workers, threads_per_worker, scheduler)
    trials = plan_trials(scan, threads)  # everything is validated before anything runs or is written
    scan_dir = scan_directory(scan)
    with locked_folder(scan_dir, "qtrigger scan"):  # two scans into one folder would race on every trial
        return _run_locked(scan, trials, scan_dir, workers, scheduler, threads, resume, overwrite, retry_failed,
                           fail_once_dir, progress)


def _run_locked(scan: ScanConfig, trials: list[Trial], scan_dir: Path, workers, scheduler, threads: int,
                resume: bool, overwrite: bool, retry_failed: bool, fail_once_dir, progress: bool) -> ScanResult:
    """:func:`run_scan` once the scan folder's lock is held: refuse finished trials, run the rest, write outputs."""
    done = _finished(trials, scan_dir)
    if done and not (resume or overwrite):
        raise QTriggerError(f"scan directory {scan_dir} already has {len(done)} finished trial(s) of {len(trials)}; "
                            "pass --resume to run only the missing ones or --overwrite to run all again")
    started = time.perf_counter()
    stats = {"deaths": 0, "workers": workers, "ran": 0}
    fail_once = str(fail_once_dir) if fail_once_dir else os.environ.get(FAIL_ONCE_ENV)
    all_trials = list(trials)
    try:
        with contextlib.ExitStack() as stack:
            clients: list = []

            def client():
                if not clients:
                    clients.append(stack.enter_context(_client(workers, scheduler, threads)))
                    stats["workers"] = len(clients[0].nthreads()) or workers
                return clients[0]

            batch = trials
            while batch:
                to_run = _to_run(batch, scan_dir, overwrite, retry_failed)
                _write_plan(scan, scan_dir, all_trials, threads)
                if to_run:
                    _execute(client(), scan, to_run, scan_dir, threads, fail_once, progress, stats)
                    stats["ran"] += len(to_run)
                batch = next_rung(scan, threads, batch, scan_dir, len(all_trials))
                all_trials += batch
    except KeyboardInterrupt:
        write_outputs(scan, all_trials, scan_dir)  # the table of what finished; --resume runs the rest
        raise
    wall = round(time.perf_counter() - started, 1)
    table, cost_axes, pareto, points = write_outputs(scan, all_trials, scan_dir, wall_seconds=wall)
    statuses = table["status"].tolist() if len(table) else []
    return ScanResult(
        name=scan.name, directory=scan_dir, table=table, trials=len(all_trials), ran=stats["ran"],
        skipped=len(all_trials) - stats["ran"], ok=statuses.count("ok"), failed=statuses.count("failed"),
        missing=statuses.count("missing"), worker_deaths=stats["deaths"], wall_seconds=wall,
        workers=stats["workers"], threads_per_worker=threads, cost_axes=cost_axes, pareto=pareto,
        physics=scan.physics_column, points=points,
    )


def _finished(trials: list[Trial], scan_dir: Path) -> dict[str, dict]:
    """Result files of the trials that have one, by hash."""
    done = {t.hash: _read_result(scan_dir / "trials" / t.hash) for t in trials}
    return {h: r for h, r in done.items() if r is not None}


def _to_run(trials: list[Trial], scan_dir: Path, overwrite: bool, retry_failed: bool) -> list[Trial]:
    """The trials without a result file, after removing results ``overwrite``/``retry_failed`` ask to redo."""
    if overwrite:
        for trial in trials:
            for name in ("result.json", "attempts.jsonl"):
                (scan_dir / "trials" / trial.hash / name).unlink(missing_ok=True)
    done = _finished(trials, scan_dir)
    if retry_failed:
        for digest in [h for h, r in done.items() if r.get("status") != "ok"]:
            (scan_dir / "trials" / digest / "result.json").unlink()
            del done[digest]
    return [t for t in trials if t.hash not in done]


def next_rung(scan: ScanConfig, threads: int, previous: list[Trial], scan_dir: Path, start_index: int) -> list[Trial]:
    """Successive halving: the next rung's trials (the best of ``previous``), or [] after the last rung."""
    if scan.search is None or scan.search.sampler != "halving" or not previous or previous[0].final:
        return []
    rows = [_read_result(scan_dir / "trials" / t.hash) or {} for t in previous]
    keep = survivors(rows, scan.search.halving.eta, scan.physics_column)
    if not keep:
        log.warning("scan %s: no trial of rung %d finished with %s; the search stops", scan.name,
                    previous[0].rung, scan.physics_column)
        return []
    return plan_rung(scan, threads, previous[0].rung + 1, [previous[i].point for i in keep], start_index)


def _client(workers: int | None, scheduler, threads: int):
    """A Client on a new LocalCluster, or on the given scheduler address / client / cluster."""
    # allowed_failures=0: every worker death reaches the client at once as KilledWorker,
    # which resubmits the trial itself, so `retries` bounds the attempts exactly.
    # Numerical libraries get the same thread budget as TensorFlow (Dask's default is 1).
    env = {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    return dask_client(workers, scheduler, "scan", env=env, scheduler_kwargs={"allowed_failures": 0})


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
                    _record_failure(trial, scan, trial_dir, one_line(f"{type(error).__name__}: {error}"))
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


def _write_plan(scan: ScanConfig, scan_dir: Path, trials: list[Trial], threads: int) -> None:
    scan_dir.mkdir(parents=True, exist_ok=True)
    resolved = scan.model_dump(mode="json")
    resolved["base_resolved"] = str(resolve_base_path(scan))
    resolved["threads_per_worker"] = threads
    atomic_write_text(scan_dir / "scan.resolved.yaml", yaml.safe_dump(resolved, sort_keys=False))
    atomic_write_text(scan_dir / "trials.json", json.dumps(
        [{"index": t.index, "hash": t.hash, "axes": t.axes, **({"rung": t.rung} if t.rung is not None else {})}
         for t in trials], indent=2))


def dry_run(scan: ScanConfig, workers: int | None = None, threads_per_worker: int | None = None, scheduler=None) -> str:
    """Validate and list every trial with its status (nothing runs, nothing is written)."""
    _, threads = default_parallelism(workers, threads_per_worker, scheduler)
    trials = plan_trials(scan, threads)
    scan_dir = scan_directory(scan)
    lines = [f"{t.hash}  {(_read_result(scan_dir / 'trials' / t.hash) or {}).get('status', 'pending'):8s} {t.label}"
             for t in trials]
    lines.append(f"{len(trials)} trials, all valid; outputs in {scan_dir}")
    if scan.search is not None and not trials[0].final:
        lines.append("successive halving: these are rung 0; later rungs are planned from its results")
    return "\n".join(lines)


def summary_text(result: ScanResult) -> str:
    """A few lines for the terminal."""
    where = f"{result.workers} workers" if result.workers else "the cluster"
    lines = [f"scan {result.name}: {result.trials} trials — {result.ok} ok, {result.failed} failed"
             + (f", {result.skipped} already done" if result.skipped else "")
             + (f", {result.worker_deaths} worker deaths (retried)" if result.worker_deaths else "")
             + f"; {result.wall_seconds:g} s on {where} × {result.threads_per_worker} TensorFlow thread(s)"]
    table = result.table if result.points is None else result.points
    worst = "" if result.points is None else ", each point by its worst training seed"
    for kind, column in result.cost_axes.items():
        front = table[table["hash"].isin(result.pareto.get(kind, []))].sort_values(column)
        note = " (no hardware estimate: non-zero parameters)" if column == "nonzero_parameters" else ""
        lines.append(f"Pareto front, {result.physics} vs {column}{note}{worst}:")
        for _, row in front.iterrows():
            fits = {"yes": "fits budgets", "no": "over budget"}.get(_cell(row["fits_budgets"]), "")
            source = f" ({row['cost_lut_source']})" if column == "cost_lut" else ""
            gap = f"  QAT-float {row['qat_minus_float']:+.4f}" if result.points is not None else ""
            lines.append(f"  {row['hash']}  {result.physics} {row[result.physics]:.4f}{gap}  {column} {row[column]:g}"
                         f"{source}  {fits}")
    lines.append(f"results: {result.results_path} (and .csv), {result.plot_path}, {result.report_path}")
    return "\n".join(lines)
