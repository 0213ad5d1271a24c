"""``qtrigger`` command line: argument parsing only; each command calls one library verb.

Exit status: 0 success; 1 a check that ran and failed (not bit-exact, failed scan trials);
2 a user error (:class:`~qtrigger.errors.QTriggerError`, or a file the system refused:
permission, disk full), one ``qtrigger: error:`` line; 3 a bug, one line saying where the
full traceback was written; 130 interrupted (SIGINT or SIGTERM), nothing partial kept.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import tempfile
import time
import traceback

from qtrigger.cli import compare, data, evaluate, hls, run, scan
from qtrigger.errors import QTriggerError, one_line

COMMANDS = (run, evaluate, compare, hls, scan, data)
DESCRIPTION = "qtrigger: from NanoAOD jets to a bit-exact, quantization-aware L1 trigger network."
# OSErrors that are the environment's answer about a named file, not a bug in qtrigger.
USER_ERRNOS = {errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
               errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device",
               errno.EDQUOT: "disk quota exceeded"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="qtrigger", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qtrigger`` console script."""
    from qtrigger.runtime import Terminated, quiet_tensorflow, sigterm_as_interrupt, terminating

    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    if os.environ.get("QTRIGGER_NATIVE_LOGS") != "1":
        from qtrigger.cli._stderr import _NativeStderrFilter

        _NativeStderrFilter()
    logging.basicConfig(level=logging.WARNING, format="qtrigger: %(message)s")
    try:
        with sigterm_as_interrupt():
            return args.handler(args)
    except QTriggerError as err:
        return _error(one_line(err))
    except KeyboardInterrupt as err:
        return _stopped(args.command, "terminated" if isinstance(err, Terminated) else "interrupted")
    except Exception as err:  # noqa: BLE001 - anything else is a bug: say so, keep the traceback
        if terminating():  # SIGTERM, re-raised by a library as its own error: outputs were unwound all the same
            return _stopped(args.command, "terminated")
        if isinstance(err, OSError) and err.errno in USER_ERRNOS:
            where = err.filename or "an output file"
            return _error(f"cannot write {where}: {USER_ERRNOS[err.errno]}; no partial outputs were kept")
        return _bug(err)


def _stopped(command: str, what: str) -> int:
    """The one line of a run stopped by SIGINT or SIGTERM (exit 130)."""
    if command == "scan":
        print(f"qtrigger: {what}; finished trials are kept, continue with --resume", file=sys.stderr)
    else:
        print(f"qtrigger: {what}; no partial outputs were kept", file=sys.stderr)
    return 130


def _error(message: str) -> int:
    print(f"qtrigger: error: {message}", file=sys.stderr)
    return 2


def _bug(err: BaseException) -> int:
    """Write the traceback to a file and say, in one line, that this is a bug."""
    path = os.path.join(tempfile.gettempdir(), f"qtrigger-crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.txt")
    try:
        with open(path, "w") as handle:
            handle.write(f"qtrigger {' '.join(sys.argv[1:])}\n\n")
            traceback.print_exception(err, file=handle)
    except OSError:
        path = "(could not be written)"
    print(f"qtrigger: internal error (a bug, please report it): {type(err).__name__}: {one_line(err)}; "
          f"full traceback: {path}", file=sys.stderr)
    return 3
