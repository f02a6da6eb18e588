"""One run per output folder: a lock file in ``OUT/.inpaint_aug/`` naming its host and pid.

:func:`claimed` wraps a whole run. It checks OUT, creates ``OUT/.inpaint_aug/`` and the lock
atomically (``os.open`` with ``O_CREAT | O_EXCL``, atomic on local file systems and on NFSv3 and
later), before the model loads and before anything else is written; at exit, also after an error
or a signal, it removes the lock and the folders it made if they are still empty (a run that
failed before writing anything leaves no trace).

A second run on the same OUT stops at once with one line naming the holder. A lock left by a run
that died on this host (its pid is gone) is taken over, with one log line. A lock from another
host is never taken over: this host cannot tell whether that run is alive; the message says to
delete the lock file if it surely is not.

Example:
    >>> with claimed(Path("augmented")):  # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from inpaint_aug.errors import OutputError
from inpaint_aug.files import dumps_json, make_dirs, output_errors
from inpaint_aug.pipeline.journal import STATE_DIR, check_output_folder

try:  # a guard for taking over a stale lock; Unix only (elsewhere none is taken)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
LOCK_FILE = "run.lock"
JOB_VARIABLES = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID")  # shown, never trusted
READ_TRIES = 40  # a lock just created is filled within microseconds: wait up to ~2 s for it


@dataclass(frozen=True)
class RunLock:
    """The lock this run holds.

    Attributes:
        path: the lock file.
        owner: what was written into it (host, pid, start time, scheduler job id).
    """

    path: Path
    owner: dict[str, Any]

    def release(self) -> None:
        """Remove the lock file if it is still this run's (never another run's)."""
        if _holder(self.path, tries=1) == self.owner:
            with suppress(FileNotFoundError):
                self.path.unlink()


@contextmanager
def claimed(out: Path) -> Iterator[RunLock]:
    """Hold ``out`` for one run; see the module docstring.

    Raises:
        OutputError: ``out`` is unusable (see :func:`check_output_folder`), another run holds
            it, or the lock cannot be written.
    """
    check_output_folder(out)
    made = [p for p in (out, out / STATE_DIR) if not p.exists()]
    lock = None
    try:
        make_dirs(out / STATE_DIR)
        lock = acquire(out)
        yield lock
    finally:
        if lock is not None:
            lock.release()
        for folder in reversed(made):  # only if still empty: rmdir never removes content
            with suppress(OSError):
                folder.rmdir()


def acquire(out: Path) -> RunLock:
    """Create the lock file of ``out``, or take over a stale one left on this host.

    Raises:
        OutputError: another run holds the lock (the message names it), or it cannot be written.
    """
    path = out / STATE_DIR / LOCK_FILE
    owner = _owner()
    holder: dict[str, Any] | None = None
    for _attempt in range(3):  # the holder may let go or die while we look
        if _create(path, owner):
            return RunLock(path, owner)
        holder = _holder(path)
        if holder is None:
            continue
        if not _stale(holder):
            break
        if _take_over(path, holder, owner):
            return RunLock(path, owner)
    raise OutputError(_busy(out, path, holder or {}))


def _owner() -> dict[str, Any]:
    """What this run writes into its lock."""
    owner: dict[str, Any] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    job = next((os.environ[v] for v in JOB_VARIABLES if os.environ.get(v)), None)
    if job:
        owner["job"] = job
        owner["restart"] = _restart_count()
    return owner


def _restart_count() -> int:
    """SLURM's count of this job's requeues (0 for a first start or another scheduler)."""
    value = os.environ.get("SLURM_RESTART_COUNT", "0")
    return int(value) if value.isdigit() else 0


def _requeued_from(holder: dict[str, Any]) -> bool:
    """The lock is this very scheduler job's, from an earlier start: the scheduler requeued it.

    A scheduler runs one start of a job at a time, so a later start (a higher
    ``SLURM_RESTART_COUNT``) of the same job id may take over the lock from any host.
    """
    job = next((os.environ[v] for v in JOB_VARIABLES if os.environ.get(v)), None)
    restart = holder.get("restart")
    if not job or holder.get("job") != job or not isinstance(restart, int):
        return False
    return _restart_count() > restart


def _create(path: Path, owner: dict[str, Any]) -> bool:
    """Create the lock atomically; ``False`` if a lock exists (or its folder just vanished).

    Raises:
        OutputError: the lock cannot be created or written (nothing is left behind).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    except FileNotFoundError:  # removed by a run that just gave OUT up: make it again
        make_dirs(path.parent)
        return False
    except OSError as err:
        raise OutputError(f"cannot create the lock file {path}: {err.strerror or err}") from None
    try:
        with open(fd, "w", encoding="utf-8") as fh:
            fh.write(dumps_json(owner) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        path.unlink(missing_ok=True)
        raise OutputError(f"cannot write the lock file {path}: {err.strerror or err}") from None
    return True


def _holder(path: Path, tries: int = READ_TRIES) -> dict[str, Any] | None:
    """The lock's content; ``None`` when there is no lock, ``{}`` when it stays unreadable."""
    for attempt in range(tries):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):  # being written right now, or damaged
            data = None
        if isinstance(data, dict):
            return data
        if attempt + 1 < tries:
            time.sleep(0.05)
    return {}


def _stale(holder: dict[str, Any]) -> bool:
    """A lock whose run is surely over.

    That is this host's lock with its process gone (a run that crashed or was killed), or an
    earlier start of this scheduler job (requeued after a node failure).
    """
    if _requeued_from(holder):
        return True
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    return not _alive(pid)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie, killed but not reaped, does not)."""
    if os.name == "nt":  # os.kill would end the process there: never judge a lock stale
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, and belongs to another user
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS): trust kill
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _take_over(path: Path, stale: dict[str, Any], owner: dict[str, Any]) -> bool:
    """Replace a stale lock by ours, unless another run took it over first.

    Runs taking over at once queue on an ``flock`` of a guard file (released by the kernel even
    if a run dies holding it); each looks again before replacing the lock.
    """
    guard_path = path.with_name(LOCK_FILE + ".guard")
    with output_errors(guard_path), open(guard_path, "a") as guard:
        if fcntl is not None:
            fcntl.flock(guard.fileno(), fcntl.LOCK_EX)
        if _holder(path) != stale:
            return False
        path.unlink(missing_ok=True)
        if not _create(path, owner):
            return False
    log.warning(
        "%s: taking over the lock of pid %s (started %s), which is no longer running on %s",
        path,
        stale.get("pid"),
        stale.get("started", "?"),
        stale.get("host"),
    )
    return True


def _busy(out: Path, path: Path, holder: dict[str, Any]) -> str:
    """The one-line refusal: who holds OUT and what to do about it."""
    if not holder:
        return (
            f"{out}: the lock file {path} cannot be read; if no other run uses this folder, "
            "delete it and rerun"
        )
    who = f"pid {holder.get('pid')} on host {holder.get('host')}"
    who += f", scheduler job {holder['job']}" if holder.get("job") else ""
    who += f", started {holder.get('started', '?')}"
    if holder.get("host") == socket.gethostname():
        return (
            f"{out}: another run is using this output folder ({who}); wait for it or choose "
            f"another --out (if that run is surely dead, delete {path})"
        )
    return (
        f"{out}: a run on another host holds this output folder ({who}); a lock from another "
        f"host is never taken over: if that run is surely dead, delete {path} and rerun"
    )
