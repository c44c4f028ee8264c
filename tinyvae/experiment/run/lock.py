"""One writer per run directory: train.py holds an exclusive flock on runs/NAME/.lock from
before it reads the directory until it ends, and evaluate.py asks, without waiting, who holds it.

The OS drops a flock when its process dies, so a kill -9 leaves no lock behind; the pid and
time written in the file only name the holder for whoever is refused.

Shapes: none (files only).
"""
import json
import os
import time

try:
    import fcntl
except ImportError:         # not a POSIX system: no locks, as on a file system without them
    fcntl = None

from .storage import LOCK, RunError

LOCK_TRIES = 5              # 20 ms apart: a training_holder() probe holds its lock for microseconds


class RunBusy(RunError):
    """Another process holds the run directory; `holder` is its dict(pid=..., since=...)."""

    def __init__(self, run_dir, holder):
        pid, since = holder["pid"] or "unknown", holder["since"] or "unknown"
        super().__init__(f"{run_dir} is held by another training process (pid {pid}, "
                         f"since {since})")
        self.holder = holder


class NoLocks(Exception):
    """The file system (or system) cannot lock files: nothing keeps a second writer out."""


def lock_run_dir(run_dir):
    """Take run_dir for this process alone: an exclusive flock on run_dir/.lock (both made if
    needed), then this process's pid and the time written in the file for whoever is refused.
    Returns the open lock file: the lock lasts until it is closed or the process ends. A flock
    belongs to the open file, so a second lock_run_dir in the same process is refused too.
    Raises RunBusy when another holds it, NoLocks where locks cannot be taken."""
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, LOCK)
    while True:
        f = open(path, "a+")
        try:
            _lock_exclusive(f, run_dir)
        except BaseException:
            f.close()
            raise
        if _same_file(f, path):
            break
        f.close()           # locked a file release_run_dir had just removed: take the new one
    f.seek(0)
    f.truncate()
    f.write(json.dumps({"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
    f.flush()
    return f


def release_run_dir(lock, run_dir):
    """Let go of lock_run_dir's lock. A lock file alone in its directory (a refused start, a
    failed --resume of an empty directory) goes first, so that nothing is left behind."""
    try:
        if os.listdir(run_dir) == [LOCK] and _same_file(lock, os.path.join(run_dir, LOCK)):
            os.remove(os.path.join(run_dir, LOCK))
    except OSError:
        pass                # it stays: a lock file only names a holder, it never blocks
    lock.close()


def _same_file(f, path):
    try:
        return os.path.samestat(os.fstat(f.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def _lock_exclusive(f, run_dir):
    if fcntl is None:
        raise NoLocks(f"cannot lock {run_dir} (no fcntl on this system)")
    for _ in range(LOCK_TRIES):
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(0.02)
        except OSError as err:          # ENOLCK, EOPNOTSUPP and the like: no locks here
            raise NoLocks(f"cannot lock {run_dir} ({err})") from None
    raise RunBusy(run_dir, _holder(f))


def training_holder(run_dir):
    """dict(pid=..., since=...) of the training process that holds run_dir now, else None.
    It never blocks and changes nothing, so evaluate.py asks it to skip, as "still being
    trained", a run whose checkpoint is still moving. None also where locks cannot be taken
    (nobody can tell there) and for runs never trained by a locking train.py."""
    try:
        f = open(os.path.join(run_dir, LOCK))
    except OSError:
        return None
    with f:                             # closing drops the shared lock, if it was taken
        try:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(f)
        except OSError:                 # no locks on this file system
            pass
    return None


def _holder(f):
    """The pid and time the holder wrote in the lock file (None for each if not yet written)."""
    f.seek(0)
    try:
        found = json.loads(f.read())
    except ValueError:
        found = {}
    return {"pid": found.get("pid"), "since": found.get("since")}
