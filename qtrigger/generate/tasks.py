"""Running generation tasks (chunks of events, chunks of a pileup library): in this process or on dask."""

from __future__ import annotations

import os
import sys

from qtrigger.runtime import dask_client


def run_tasks(task, specs: list[dict], workers: int | None, scheduler, progress: bool,
              desc: str = "generate", unit: str = "ev") -> list[dict]:
    """``task(spec)`` for every spec (in this process when ``workers == 0`` and no scheduler); results in spec
    order. In this process each spec gets ``bar`` (a tqdm bar the task updates); on dask the bar advances by
    each result's ``events`` as it arrives."""
    from tqdm import tqdm

    total = sum(s["n_events"] for s in specs)
    with tqdm(total=total, unit=unit, disable=not progress, desc=desc, file=sys.stderr) as bar:
        if workers == 0 and scheduler is None:
            return [task({**spec, "bar": bar}) for spec in specs]
        from distributed import as_completed

        with dask_client(workers, scheduler, desc) as client:
            futures = [client.submit(task, spec, key=f"{desc}-{os.getpid()}-{i}", pure=False)
                       for i, spec in enumerate(specs)]
            try:
                for future in as_completed(futures):
                    result = future.result()  # re-raises a worker's error here
                    bar.update(result["events"])
                return [f.result() for f in futures]
            finally:
                for future in futures:
                    future.cancel()
