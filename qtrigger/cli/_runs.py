"""Run directories opened by the CLI before its heavy imports: a missing or broken run fails in a second."""

from __future__ import annotations

from qtrigger.runs.finished import FinishedRun


def check_run_first(directory) -> None:
    """Open ``directory`` as a finished run (a one-line error if it is not) before TensorFlow and hls4ml load;
    the command opens it again, which costs milliseconds."""
    if directory:
        FinishedRun.load(directory)
