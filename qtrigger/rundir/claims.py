"""Outputs that appear only when complete: atomic files, locked and staged run directories, provenance.

A run claims its outputs before any work: ``fcntl.flock`` on ``<tree>/.<name>.lock`` in
both output trees (the kernel drops the lock when the process dies), staging directories
``.<name>.partial-<host>-<pid>`` next to the final ones, and on success the run
directory and the HLS project are replaced together, each stamped with the same run id.
Other output folders (an RTL project, an evaluation) are claimed the same way with
:func:`claimed_folder`, each stamped with its own kind's file (:data:`KINDS`): ``--overwrite``
replaces only a folder stamped as the same kind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from qtrigger.errors import QTriggerError
from qtrigger.rundir.files import _host, atomic_write_text
from qtrigger.runtime import register_forced_cleanup

log = logging.getLogger("qtrigger")

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
NAME_RULE = "letters, digits, '_', '-' or '.', starting with a letter or digit (it names one directory)"
RUN_ID_FILE = "run_id"


@dataclass(frozen=True)
class Kind:
    """A kind of output folder qtrigger writes, and the file whose id stamps it as complete."""

    name: str
    stamp: str


RUN = Kind("run", RUN_ID_FILE)  # run directories and their HLS projects
RTL_PROJECT = Kind("RTL project", "rtl_id")
EVALUATION = Kind("evaluation", "evaluation_id")
KINDS = (RUN, RTL_PROJECT, EVALUATION)


# ----------------------------------------------------------------------------------------
# Names and output trees


def check_name(name: object, key: str = "name") -> str:
    """``name`` as a single safe path component, else a one-line error naming ``key``."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise QTriggerError(f"key {key}: must be {NAME_RULE} (got {name!r})")
    return name


def overlapping(first: Path, second: Path) -> bool:
    """The two folders are one, or one lies inside the other."""
    a, b = Path(first).resolve(), Path(second).resolve()
    return a == b or a in b.parents or b in a.parents


def check_distinct(run_dir: Path, hls_dir: Path) -> None:
    """The run directory and the HLS project must be different folders, neither inside the other."""
    a, b = Path(run_dir).resolve(), Path(hls_dir).resolve()
    if overlapping(a, b):
        raise QTriggerError(f"output_dir and hls.output_dir give overlapping outputs ({a} and {b}); "
                            "use two separate folders, e.g. runs and hls_projects")


# ----------------------------------------------------------------------------------------
# Locks and staging


class OutputLock:
    """An exclusive ``flock`` on ``<tree>/.<name>.lock``, held until :meth:`release` (or process death)."""

    def __init__(self, tree: Path, name: str):
        self.path = Path(tree) / f".{name}.lock"
        self.fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False if another process holds it."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return False
                raise
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:  # else the holder removed it while we waited: lock the new file
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()}:{os.getpid()}\n".encode())
        self.fd = fd
        _active_locks.add(self.path)
        return True

    def holder(self) -> str:
        """``host:pid`` written by the process holding the lock."""
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def release(self) -> None:
        """Remove the lock file and drop the lock (a process that opened the old file re-checks its inode)."""
        if self.fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = None
            _active_locks.discard(self.path)


def remove_stale_staging(tree: Path, held: str | None = None) -> list[Path]:
    """Remove ``.<name>.partial-*`` / ``.<name>.old-*`` folders whose run's lock is free; return them.

    ``held``: a name whose lock this process holds (its leftovers are stale by definition).
    """
    removed = []
    for stale in sorted(Path(tree).glob(".*.partial-*")) + sorted(Path(tree).glob(".*.old-*")):
        match = re.match(r"^\.(.+)\.(partial|old)-", stale.name)
        if not match or not stale.is_dir():
            continue
        if match.group(1) == held:
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
            log.warning("removed %s, left by a run that was killed", stale)
            continue
        lock = OutputLock(tree, match.group(1))
        if lock.acquire():
            try:
                shutil.rmtree(stale, ignore_errors=True)
                removed.append(stale)
                log.warning("removed %s, left by a run that was killed (its lock is free)", stale)
            finally:
                lock.release()
    return removed


_active_staging: set[Path] = set()
_active_locks: set[Path] = set()


def _remove_active_staging() -> None:
    """Forced exit after SIGTERM: remove this process's staging folders and lock files."""
    for temp in list(_active_staging):
        shutil.rmtree(temp, ignore_errors=True)
    for lock in list(_active_locks):
        lock.unlink(missing_ok=True)


register_forced_cleanup(_remove_active_staging)


@dataclass
class StagedRun:
    """Where a run writes while it works, and the id stamped into both outputs."""

    run_dir: Path
    hls_dir: Path
    run_id: str


@contextlib.contextmanager
def claimed_outputs(run_dir: Path, hls_dir: Path, overwrite: bool):
    """Lock, stage and on success install a run directory and its HLS project together.

    Yields a :class:`StagedRun`. On any exception (SIGINT/SIGTERM included) the staging
    directories are removed and the previous outputs are untouched. Existing outputs are
    replaced only when ``overwrite`` is true.
    """
    finals = [Path(run_dir), Path(hls_dir)]
    name = check_name(finals[0].name)
    check_distinct(*finals)
    with _claimed(finals, name, overwrite, RUN) as (staged, run_id):
        yield StagedRun(staged[0], staged[1], run_id)


@contextlib.contextmanager
def claimed_folder(final: Path, overwrite: bool, kind: Kind, empty_ok: bool = False):
    """Lock, stage and on success install one output folder of ``kind`` (an RTL project, an evaluation).

    Yields ``(staging folder, id)``; the folder appears at ``final`` only when the body
    succeeds, stamped with ``kind.stamp``. An existing ``final`` is replaced only with
    ``overwrite`` and only when it is stamped as the same kind (``empty_ok``: an empty
    folder is replaced without ``overwrite``); everything is checked before the body runs.
    """
    final = Path(final).absolute()
    with _claimed([final], final.name, overwrite, kind, empty_ok) as (staged, stamp_id):
        yield staged[0], stamp_id


def new_id() -> str:
    """A fresh run or artefact id: the local time and 8 random hex digits."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def _claimed(finals: list[Path], name: str, overwrite: bool, kind: Kind, empty_ok: bool = False):
    """Lock ``finals``, check they may be replaced, yield ``(staging folders, id)``, install them together.

    The stamp (``kind.stamp`` holding the id) is written into every staging folder once the body
    has succeeded, just before the install. Folders this call created are removed when it fails.
    """
    locks, created = [], []
    try:
        for final in finals:
            created.extend(_missing_ancestors(final.parent))
            final.parent.mkdir(parents=True, exist_ok=True)
            lock = OutputLock(final.parent, name)
            if not lock.acquire():
                raise QTriggerError(f"{final} is locked by {lock.holder()} (another qtrigger run of {name!r} is running)")
            locks.append(lock)
        for final in finals:
            check_replaceable(final, overwrite, kind, empty_ok)
        for final in finals:
            remove_stale_staging(final.parent, held=name)
        tag = f"{_host()}-{os.getpid()}"
        staged = [final.parent / f".{name}.partial-{tag}" for final in finals]
        stamp_id = new_id()
        _active_staging.update(staged)
        try:
            for temp in staged:
                temp.mkdir()
            yield staged, stamp_id
            for temp in staged:
                write_stamp(temp, kind, stamp_id)
            _install_together(staged, finals, tag)
        finally:
            for temp in staged:
                shutil.rmtree(temp, ignore_errors=True)
            _active_staging.difference_update(staged)
    except BaseException:
        for lock in locks:
            lock.release()
        locks = []
        _remove_if_empty(created)
        raise
    finally:
        for lock in locks:
            lock.release()


@contextlib.contextmanager
def locked_folder(folder: Path, what: str):
    """Hold ``folder``'s lock (``<parent>/.<name>.lock``, the lock a run takes) for the block.

    Another process holding it is refused in one line naming the holder (``what``: e.g.
    "qtrigger scan"); the lock goes with the block, or with the process if it dies.
    """
    folder = Path(folder)
    created = _missing_ancestors(folder.parent)
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = OutputLock(folder.parent, check_name(folder.name))
    if not lock.acquire():
        _remove_if_empty(created)
        raise QTriggerError(f"{folder} is locked by {lock.holder()} (another {what} of {folder.name!r} is running)")
    try:
        yield folder
    except BaseException:
        lock.release()
        _remove_if_empty(created)  # folders made only for the lock go with a failure
        raise
    lock.release()


def write_stamp(folder: Path, kind: Kind, stamp_id: str | None = None) -> str:
    """Stamp a complete ``folder`` as qtrigger's ``kind`` (``--overwrite`` may then replace it); returns the id."""
    stamp_id = stamp_id or new_id()
    (Path(folder) / kind.stamp).write_text(stamp_id + "\n")
    return stamp_id


def read_stamp(folder: Path, kind: Kind) -> str | None:
    """The id stamped into ``folder`` as ``kind`` (None when it is not stamped so)."""
    try:
        return (Path(folder) / kind.stamp).read_text().strip() or None
    except OSError:
        return None


def check_replaceable(final: Path, overwrite: bool, kind: Kind = RUN, empty_ok: bool = False) -> None:
    """An existing ``final`` may be replaced only with ``overwrite`` and only when it is qtrigger's ``kind``.

    A qtrigger run (finished, or one whose results were kept after a failed stage) carries the
    run-id stamp (``run_id`` file), other kinds their own stamp (:data:`KINDS`); a plain file,
    a folder without the stamp or a folder of another kind is never replaced.
    """
    if not os.path.lexists(final):
        return
    is_folder = final.is_dir() and not final.is_symlink()
    if empty_ok and is_folder and not any(final.iterdir()):
        return
    if not overwrite:
        raise QTriggerError(f"output directory {final} already exists; pass --overwrite to replace it")
    if is_folder and read_stamp(final, kind) is None:
        other = next((k for k in KINDS if k != kind and read_stamp(final, k) is not None), None)
        if other is not None:
            raise QTriggerError(f"--overwrite refused: {final} is a qtrigger {other.name} ({other.stamp} file), "
                                f"not a qtrigger {kind.name}; move it away or choose another name")
    if not is_folder or read_stamp(final, kind) is None:
        what = "a folder" if is_folder else "a file"
        raise QTriggerError(f"--overwrite refused: {final} is {what} without a qtrigger {kind.name} id "
                            f"({kind.stamp} file), not a qtrigger {kind.name}; move it away or choose another name")


def _missing_ancestors(folder: Path) -> list[Path]:
    """``folder`` and its parents that do not exist yet, deepest first (what ``mkdir(parents=True)`` creates)."""
    missing = []
    folder = Path(folder).absolute()
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove folders this run created, deepest first, as long as they are empty (a failed run leaves none)."""
    for folder in sorted(set(folders), key=lambda path: len(path.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _install_together(staged: list[Path], finals: list[Path], tag: str) -> None:
    """Move the old outputs aside, move both new ones in, then delete the old (rolled back on failure)."""
    aside = [final.parent / f".{final.name}.old-{tag}" for final in finals]
    moved_aside, installed = [], []
    try:
        for final, old in zip(finals, aside):
            if final.exists():
                final.rename(old)
                moved_aside.append((old, final))
        for temp, final in zip(staged, finals):
            temp.rename(final)
            installed.append((final, temp))
    except BaseException:
        for final, temp in reversed(installed):
            final.rename(temp)
        for old, final in reversed(moved_aside):
            old.rename(final)
        raise
    for temp, final in zip(staged, finals):
        _rewrite_staging_paths(final, temp)
    for old, _ in moved_aside:
        shutil.rmtree(old, ignore_errors=True)


def _rewrite_staging_paths(final: Path, temp: Path) -> None:
    """hls4ml records its output folder in hls4ml_config.yml: point it at the installed folder."""
    for config in final.glob("**/hls4ml_config.yml"):
        text = config.read_text()
        if str(temp) in text:
            atomic_write_text(config, text.replace(str(temp), str(final)))


def read_run_id(directory: Path) -> str | None:
    """The run id stamped into a run directory or HLS project (None for runs older than run ids)."""
    return read_stamp(directory, RUN)


