"""A run directory's life: --out checked, taken (its lock) before anything there is read, made
or cleared (--overwrite), or checked against the run it holds and its checkpoint read back
(--resume); how far a run has come, the one answer to "has it finished?" for train.py,
evaluate.py and scripts/slurm/grid.py; and what is kept when a write fails.

Every refusal is a RunError whose message says what was wrong and what to do; a refused start
changes nothing in the directory.

Shapes: none (files only).
"""
import errno
import os
import re
import shutil
from collections import namedtuple

from .checkpoint import checkpoint_step, load_checkpoint
from .configuration import differences
from .storage import CHECKPOINT, CONFIG, LOCK, SNAPSHOTS, RunError, read_json
from .lock import RunBusy, lock_run_dir, training_holder

AFRESH = "--overwrite starts it afresh"


class Progress(namedtuple("Progress", "step steps holder", defaults=(None,))):
    """How far a run has come: the step of its checkpoint (None: no checkpoint that opens),
    the steps it is to reach (None: no config.json that says), and the training process that
    holds it now (None: none)."""
    __slots__ = ()

    @property
    def finished(self):
        return self.step is not None and self.steps is not None and self.step >= self.steps

    def __str__(self):
        if self.steps is None:
            return "not started"
        if self.step is None:
            return "no checkpoint yet"
        return "finished" if self.finished else f"step {self.step} of {self.steps}"


def progress(run_dir):
    """The Progress of the run in run_dir, from its files; it changes nothing and never waits."""
    try:
        steps = read_json(os.path.join(run_dir, CONFIG))["steps"]
    except (RunError, KeyError):
        steps = None
    return Progress(checkpoint_step(run_dir), steps, training_holder(run_dir))


def finished_step(out, config):
    """The step of the checkpoint in `out` when it has reached config's --steps, else None;
    flags that would make another run are refused (RunError), as --resume auto refuses them.
    It reads, never writes or locks: a finished run needs nothing written, also where nothing
    can be (--resume auto on a copy of a sweep in a read-only place)."""
    step = checkpoint_step(out)
    if step is None or not Progress(step, config["steps"]).finished:
        return None
    same_run(out, config, "--resume auto")
    return step


def nearest_existing(path):
    """The absolute `path` itself where it exists, else the nearest folder above it that
    does: where anything made at `path` would be made."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def check_out(out):
    """--out must be a directory, or a path that can become one."""
    path = nearest_existing(out)
    if not os.path.isdir(path):
        where = "" if path == os.path.abspath(out) else f" ({path} is in its way)"
        raise RunError(f"--out {out}: {path} is a file, not a directory{where}; choose "
                       "another --out")


def claim(out, resume):
    """The run directory's lock (lock.lock_run_dir), to hold until training ends; None when
    there is nothing to guard. It comes before anything there is read or removed, so a refused
    train.py changes nothing. Raises lock.NoLocks where locks cannot be taken."""
    if resume is True and not os.path.isdir(out):
        return None                 # nothing to guard: prepare_out says there is no run
    try:
        return lock_run_dir(out)
    except RunBusy as err:
        raise RunError(f"{err}; nothing there was changed: wait for it to finish, or choose "
                       "another --out") from None


def prepare_out(out, config, resume, overwrite, locked):
    """Make or check the run directory; when resuming, the checkpoint to continue from (with
    --resume auto, also one that has reached --steps: nothing is left to do)."""
    has_config, has_checkpoint = (os.path.exists(os.path.join(out, name))
                                  for name in (CONFIG, CHECKPOINT))
    exists = has_config or has_checkpoint
    # A run stopped before its first checkpoint (killed, or a non-finite loss) has nothing to
    # continue from: starting it afresh is the way on, and every refusal says so.
    afresh = has_config and not has_checkpoint
    if resume == "auto" and not has_checkpoint:
        if afresh:                  # a start killed before its first checkpoint: start again
            same_run(out, config, "--resume auto", afresh)
        resume, overwrite = False, has_config
    if resume is True and afresh:
        raise RunError(f"--resume: the run in {out} stopped before its first checkpoint, so "
                       f"there is nothing to continue; {AFRESH}")
    if resume:
        if locked:                  # no other writer: any temporary file is a killed one's
            remove_leftovers(out)
        arrays, state = load_checkpoint(out)
        same_run(out, config, "--resume" if resume is True else "--resume auto")
        if Progress(state["step"], config["steps"]).finished and resume is True:
            raise RunError(f"--resume: the run in {out} is already at step {state['step']}; "
                           f"ask for more --steps to continue it")
        return arrays, state
    if afresh and not overwrite:
        raise RunError(f"{out} holds a run that stopped before its first checkpoint; "
                       f"{AFRESH}, or choose another --out")
    if exists and not overwrite:
        raise RunError(f"{out} already holds a run; add --resume to continue it, "
                       f"--overwrite to replace it, or choose another --out")
    if exists:
        clear_run_dir(out)          # not the directory itself: the lock inside stays held
    os.makedirs(out, exist_ok=True)
    return None, None


def same_run(out, config, flag, afresh=False):
    """Refuse flags that would make the run in `out` another run than the one begun there
    (`afresh`: one with no checkpoint, which --overwrite may start again with other flags)."""
    diffs = differences(read_json(os.path.join(out, CONFIG)), config)
    if diffs:
        raise RunError(f"{flag}: the flags disagree with the run in {out} ("
                       + "; ".join(diffs) + "); repeat the run's flags, or use another --out"
                       + (f"; it has no checkpoint: {AFRESH} with these flags" if afresh
                          else ""))


def clear_run_dir(run_dir):
    """Remove everything in run_dir but its lock file (--overwrite): the lock stays held."""
    for name in os.listdir(run_dir):
        path = os.path.join(run_dir, name)
        if name == LOCK:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def remove_leftovers(run_dir):
    """Delete the temporary files a killed writer left (NAME.tmp or NAME.tmpPID, up to a
    checkpoint's size each). Only for the lock's holder: no other writer can be using them."""
    for folder in (run_dir, os.path.join(run_dir, SNAPSHOTS)):
        names = os.listdir(folder) if os.path.isdir(folder) else []
        for name in names:
            if re.fullmatch(r".+\.tmp\d*", name):
                os.remove(os.path.join(folder, name))


def write_fix(out, err):
    """What to do about a failed write (OSError `err`) in `out`."""
    return "make room" if err.errno in (errno.ENOSPC, errno.EDQUOT) else f"make {out} writable"


def what_is_kept(out, fix, again):
    """What a failed start left in `out`, and the way on once `fix` is done: the command
    `again` continues from the checkpoint on disk."""
    # Checkpoints are written to a temporary file and renamed, so a failed write leaves the
    # one before it: read back the step of what is on disk rather than assume.
    step = checkpoint_step(out) if out else None
    if step is None:
        return (f"there is no checkpoint to continue from: {fix} or choose another --out, "
                f"then start again ({AFRESH})")
    return (f"the checkpoint of step {step} in {out} is whole and kept (a checkpoint is written "
            f"to a temporary file first): {fix}, then continue with: {again}")


def forget_start(out):
    """After a start that failed before its first checkpoint (out of memory): remove what it
    wrote (config.json, log rows, figures), so that the same command is accepted again and not
    refused as a run that needs --overwrite. Returns whether there was no checkpoint."""
    if checkpoint_step(out) is not None:
        return False
    clear_run_dir(out)              # the lock file goes when it is let go (release_run_dir)
    return True
