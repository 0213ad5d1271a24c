"""Process set-up shared by the CLI and scan workers: quiet TensorFlow, SIGTERM handled like SIGINT, and the
one way qtrigger gets a dask.distributed Client (scans and sample generation)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
import warnings

from qtrigger.errors import QTriggerError, one_line

GRACE_SECONDS = 10.0
"""After SIGTERM, how long the normal unwinding may take before the process cleans up and exits itself."""

_forced_cleanups: list = []


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ INFO/WARNING chatter; Python warnings that matter still show."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ INFO/WARNING/ERROR noise (CUDA probing, graph attrs)
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    # QKeras quantizers are serialized through tf-keras' constraint API, which warns on every save.
    warnings.filterwarnings("ignore", message=r"The `keras.constraints.serialize\(\)` API")
    warnings.filterwarnings("ignore", message=r"You are saving your model as an HDF5 file")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # dask.distributed logs every connection at INFO; scans report progress themselves
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where SIGINT would raise KeyboardInterrupt (so the same clean-up runs)."""


def register_forced_cleanup(callback) -> None:
    """``callback()`` runs if a terminated process has not unwound within :data:`GRACE_SECONDS`."""
    _forced_cleanups.append(callback)


def _force_exit() -> None:
    """Last resort when the Terminated exception was swallowed (a bare ``except:`` in some library)."""
    for callback in _forced_cleanups:
        try:
            callback()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
    os.write(2, b"qtrigger: terminated; no partial outputs were kept\n")
    os._exit(128 + signal.SIGTERM)


def _watchdog() -> None:
    time.sleep(GRACE_SECONDS)
    _force_exit()


_terminating = threading.Event()


def terminating() -> bool:
    """Whether this process has received SIGTERM (its :class:`Terminated` may have been turned into another
    exception by a library it passed through, e.g. TensorFlow's lazy import wrapper)."""
    return _terminating.is_set()


def _on_sigterm(signum, frame):
    if _terminating.is_set():  # a second SIGTERM: do not wait any longer
        _force_exit()
    _terminating.set()
    # Children (g++ under hls4ml's build script, ...) share our process group when we lead
    # it, as a shell's Ctrl-C would reach them: pass the signal on, then unwind.
    if os.getpgrp() == os.getpid():
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            os.killpg(os.getpgrp(), signal.SIGTERM)
        finally:
            signal.signal(signal.SIGTERM, previous)
    threading.Thread(target=_watchdog, name="qtrigger-sigterm-watchdog", daemon=True).start()
    sys.stderr.flush()
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in the main thread."""
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def dask_client(workers: int | None, scheduler, what: str, env: dict | None = None,
                scheduler_kwargs: dict | None = None):
    """A Client on a new LocalCluster of ``workers`` single-threaded processes, or on ``scheduler``.

    ``scheduler`` is an address (``tcp://host:8786``), a ``distributed.Client`` (used as is,
    not closed) or a cluster object (e.g. dask-jobqueue's). ``what`` names the command in
    the one-line error when the scheduler cannot be reached.
    """
    from distributed import Client, LocalCluster

    if scheduler is None:
        # No dashboard; the scheduler's HTTP endpoints (health, metrics) on a free port, so that two
        # clusters on one machine (two scans, parallel tests) never compete for 8787.
        quiet_http = {"dashboard": False, "dashboard_address": ":0"}
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.ERROR, scheduler_kwargs={**quiet_http, **(scheduler_kwargs or {})},
                          env=env or {}) as cluster, \
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
        raise QTriggerError(f"{what}: cannot connect to the Dask scheduler at {address} ({one_line(str(err))})") from None
    try:
        yield client
    finally:
        client.close()
