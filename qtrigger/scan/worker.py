"""The task that runs one trial on a Dask worker and writes its result file last."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from qtrigger.config import validate_config
from qtrigger.errors import QTriggerError, one_line
from qtrigger.results import RunResult
from qtrigger.rundir import atomic_write_text, json_default, remove_stale_staging
from qtrigger.runs.pipeline import run
from qtrigger.runtime import quiet_tensorflow
from qtrigger.scan.plan import FAIL_ONCE_ENV

log = logging.getLogger("qtrigger.scan")



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
            quiet_tensorflow()
            config = validate_config(spec["config"], source=f"trial {spec['hash']}")
            metrics = run(config, overwrite=True, progress=False)
        except QTriggerError as err:
            status, error = "failed", one_line(err)
        except Exception as err:  # the scan goes on; the traceback is kept in trial.log
            import traceback

            traceback.print_exc()
            status, error = "failed", one_line(f"{type(err).__name__}: {err}")
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
    atomic_write_text(Path(trial_dir) / "result.json", json.dumps(result, indent=2, default=json_default))


def _remove_partials(trial_dir: Path) -> None:
    """Staging directories left by an attempt whose worker died (only those whose lock is free)."""
    for parent in (trial_dir, trial_dir / "hls"):
        if parent.is_dir():
            remove_stale_staging(parent)


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


def summarise_metrics(metrics) -> dict:
    """The numbers a scan compares, flat (from a RunResult or its metrics dict); a missing metric is None."""

    result = metrics if isinstance(metrics, RunResult) else RunResult.from_json(metrics)
    trigger, qat = result.trigger or {}, result.qat
    trigger_eff, qat_eff = trigger.get("signal_efficiency"), qat.signal_efficiency
    if trigger_eff is not None:
        source = "trigger.signal_efficiency (at the target rate)"
    else:
        target = qat.target_background_efficiency
        source = "qat.signal_efficiency" + (f" (at background efficiency {target:g})" if target is not None else "")
    estimate = result.hls.get("estimate") or {}
    per_event = result.hls.get("estimate_per_event")
    out = {
        "qat_auc": qat.auc, "val_auc": qat.extra.get("val_auc"), "float_auc": result.float_twin.auc if result.float_twin else None,
        "signal_efficiency": trigger_eff if trigger_eff is not None else qat_eff,
        "signal_efficiency_source": source if (trigger_eff is not None or qat_eff is not None) else None,
        "qat_signal_efficiency": qat_eff, "trigger_signal_efficiency": trigger_eff,
        "trigger_rate_hz": trigger.get("rate_hz"), "trigger_threshold_code": trigger.get("threshold_code"),
        "csim_jets": result.csim.get("jets"), "csim_mismatched_jets": result.csim.get("mismatched_jets"),
        "nonzero_parameters": result.model.nonzero_parameters, "parameters": result.model.parameters,
        "run_wall_seconds": result.wall_seconds,
    }
    for name in ("latency_cycles", "latency_ns", "lut", "ff", "dsp", "bram"):
        out[name] = estimate.get(name)
    out["lut_calibrated"] = bool(estimate.get("calibration"))  # set networks: the LUT model times a yosys fit
    if isinstance(per_event, dict):
        for name in ("instances", "latency_ns", "meets_ii"):
            out[f"event_{name}"] = per_event.get(name)
        for name in ("lut", "ff", "dsp", "bram"):
            out[f"event_{name}"] = (per_event.get("total") or {}).get(name)
    out["run_budget_fits"] = (result.hls.get("budget") or {}).get("fits")
    out.update(_rtl_metrics(result.extra.get("rtl")))
    return out


def _rtl_metrics(rtl: dict | None) -> dict:
    """The RTL stage's measured numbers: yosys LUT/FF (None when not synthesized), da4ml's LUT estimate, exactness."""
    rtl = rtl or {}
    synth = rtl.get("synth") or {}
    return {"rtl_lut": synth.get("lut"), "rtl_ff": synth.get("ff"),
            "rtl_da4ml_lut": (rtl.get("da4ml_estimate") or {}).get("cost_lut_estimate"),
            "rtl_mismatches": rtl.get("mismatches_vs_model"), "rtl_latency_cycles": rtl.get("latency_cycles"),
            "rtl_ii": rtl.get("ii")}


def _read_result(trial_dir: Path) -> dict | None:
    path = Path(trial_dir) / "result.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError):
        return None
