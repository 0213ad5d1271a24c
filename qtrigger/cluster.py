"""The one way qtrigger gets a dask.distributed Client (scans and sample generation)."""

from __future__ import annotations

import contextlib
import logging

from qtrigger.errors import QTriggerError, one_line


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
