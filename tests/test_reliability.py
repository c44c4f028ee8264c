"""A run directory survives what happens to the processes writing it: a second train.py, a
kill -9 at any moment, a full disk, a lock left by the dead, a file system without locks.

The runs are tiny (a few steps of 4 images) but the model is full size: a checkpoint is about
170 MB. Where only the parameters and log.csv are compared, the figures are not drawn (they
come after the checkpoint and change neither), and the killed processes are forks of this
one, so that no kill pays for the imports again."""
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy
import pytest

from test_train import FAST, ROOT, assert_same_params, params, run, run_script
from tinyvae.experiment.run import lock  # noqa: E402
from tinyvae.experiment.run.checkpoint import load_checkpoint  # noqa: E402
from tinyvae.experiment.run.storage import read_log  # noqa: E402
from tinyvae.experiment.run.lock import (RunBusy, lock_run_dir, release_run_dir,  # noqa: E402
                                     training_holder)
import train  # noqa: E402

KILLS = 10                  # kill -9s of one run; every other one waits for a checkpoint write


def wait_for(condition, proc, what):
    deadline = time.time() + 120
    while not condition():
        assert proc.poll() is None, f"{what}: the first run ended: {proc.communicate()}"
        assert time.time() < deadline, what
        time.sleep(0.01)


def listing(run_dir):
    """Every file under run_dir with its size and modification time."""
    return {os.path.join(d, n): (os.stat(os.path.join(d, n)).st_size,
                                 os.stat(os.path.join(d, n)).st_mtime_ns)
            for d, _, names in os.walk(run_dir) for n in names}


def assert_one_line(proc, status, start):
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(start), proc.stderr
    return proc.stderr.strip()


def test_a_second_train_py_on_a_held_run_is_refused_and_changes_nothing(tmp_path, no_figures):
    out = tmp_path / "run"
    flags = ["--model", "beta", "--steps", "4", "--checkpoint-every", "2", "--log-every", "2",
             *FAST]
    first = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), "--out", str(out),
                              *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=ROOT)
    try:
        wait_for(lambda: (out / "checkpoint.npz").exists(), first, "a first checkpoint")
        first.send_signal(signal.SIGSTOP)       # mid-run, holding its lock, rows and checkpoint
        before = listing(out)
        assert training_holder(out)["pid"] == first.pid
        refusal = f"train.py: error: {out} is held by another training process (pid {first.pid}"
        seconds = [run("--out", out, *flags, *extra) for extra in ([], ["--resume"],
                                                                     ["--overwrite"])]
        seconds.append(run_script("--out", out, *flags, "--overwrite"))   # a real second process
        for proc in seconds:
            line = assert_one_line(proc, 2, refusal)
            assert line.endswith("wait for it to finish, or choose another --out"), line
        assert listing(out) == before
    finally:
        first.send_signal(signal.SIGCONT)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0 and "done" in stdout, stderr
    assert training_holder(out) is None
    run("--out", tmp_path / "undisturbed", *flags, check=0)
    assert_same_params(params(out), params(tmp_path / "undisturbed"))
    assert (out / "log.csv").read_text() == (tmp_path / "undisturbed" / "log.csv").read_text()


def fork_train(*args):
    """train.main(args) in a child process (a fork: no imports to pay); returns its pid."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = run(*args).returncode
        finally:
            os._exit(code)
    return pid


def kill_at_random(pid, out, in_write, rng):
    """Kill -9 the child as soon as its checkpoint's temporary file appears (in_write), or at
    a random moment after its next checkpoint, before the one after it. Returns its wait
    status. A kill costs at most one step, on any machine: the run lasts the kills."""
    path, tmp = out / "checkpoint.npz", out / f"checkpoint.npz.tmp{pid}"
    start = inode(path)
    ended = wait_child(pid, lambda: tmp.exists() if in_write else inode(path) != start)
    if ended is None and not in_write:
        until = time.time() + rng.uniform(0, 0.25)      # in the step, a log row or the write
        ended = wait_child(pid, lambda: time.time() > until or tmp.exists())
    if ended is not None:
        return ended
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


def inode(path):
    try:
        return path.stat().st_ino           # a new checkpoint is a new file renamed over it
    except FileNotFoundError:
        return None


def wait_child(pid, condition):
    """Wait for condition(); None, or the child's wait status if it ended first."""
    deadline = time.time() + 120
    while not condition():
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        assert time.time() < deadline
        time.sleep(0.002)
    return None


def test_kill_9_at_random_moments_then_resume_equals_a_straight_run(tmp_path, no_figures):
    flags = ["--model", "beta", "--steps", "8", "--log-every", "3", *FAST]
    out, rng = tmp_path / "killed", random.Random(0)
    kills = cut_writes = 0
    while kills < KILLS:                    # each time the one command a requeued job runs
        pid = fork_train("--out", out, *flags, "--checkpoint-every", "1", "--resume", "auto")
        status = kill_at_random(pid, out, kills % 2 == 0, rng)
        assert os.WIFSIGNALED(status), f"the run ended before kill {kills + 1} (status {status})"
        kills += 1
        cut_writes += (out / f"checkpoint.npz.tmp{pid}").exists()
    assert cut_writes >= 1                  # some kills did land inside a checkpoint write
    run("--out", out, *flags, "--checkpoint-every", "8", "--resume", "auto", check=0)
    assert not [n for n in os.listdir(out) if ".tmp" in n]      # the killed ones' files, gone
    run("--out", tmp_path / "straight", *flags, "--checkpoint-every", "8", check=0)
    assert_same_params(params(out), params(tmp_path / "straight"))
    assert (out / "log.csv").read_text() == (tmp_path / "straight" / "log.csv").read_text()


def test_a_full_disk_during_a_checkpoint_keeps_the_one_before(tmp_path, monkeypatch, no_figures):
    out, savez = tmp_path / "run", numpy.savez
    calls = []

    def full_on_the_second(f, **arrays):
        calls.append(1)
        if len(calls) < 2:
            return savez(f, **arrays)
        f.write(b"PK\x03\x04" + bytes(4096))            # part of the file, then no room
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    flags = ["--out", out, "--steps", "2", "--checkpoint-every", "1", "--log-every", "2", *FAST]
    with monkeypatch.context() as m:
        m.setattr(numpy, "savez", full_on_the_second)
        proc = run(*flags)
    line = assert_one_line(proc, 1, "train.py: error: cannot write the run ([Errno 28] ")
    assert f"the checkpoint of step 1 in {out} is whole" in line and "--resume" in line
    assert load_checkpoint(out)[1]["step"] == 1
    assert sorted(os.listdir(out)) == [".lock", "checkpoint.npz", "config.json", "log.csv"]
    # The row of step 2 went out before its checkpoint failed: the resumed run writes it anew,
    # and once (it used to be kept too when no row came before the checkpoint).
    run(*flags, "--resume", check=0)
    assert [r.split(",")[0] for r in (out / "log.csv").read_text().splitlines()] == ["step", "2"]


def test_a_write_refused_for_another_reason_does_not_ask_for_room(tmp_path, monkeypatch,
                                                                  no_figures):
    out = tmp_path / "run"

    def refused(f, **arrays):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    run("--out", out, "--steps", "1", *FAST, check=0)
    with monkeypatch.context() as m:
        m.setattr(numpy, "savez", refused)
        proc = run("--out", out, "--steps", "2", *FAST, "--resume")
    line = assert_one_line(proc, 1, "train.py: error: cannot write the run ([Errno 13] ")
    assert f"the checkpoint of step 1 in {out} is whole" in line and "room" not in line
    again = train.resume_command(train.parse_args(["--steps", "2", *FAST]), str(out))
    assert line.endswith(f"make {out} writable, then continue with: {again}"), line


def test_a_lock_file_removed_while_being_taken_is_taken_anew(tmp_path, monkeypatch):
    """release_run_dir removes a lock file left alone in its directory. A process that opened
    that file just before must not end up holding the removed one (the directory would then
    have two writers): it takes the new file instead."""
    out, take, removed = tmp_path / "run", lock._lock_exclusive, []
    out.mkdir()

    def removed_between_open_and_lock(f, run_dir):
        if not removed:
            removed.append(os.stat(out / ".lock"))
            os.remove(out / ".lock")
        take(f, run_dir)
    monkeypatch.setattr(lock, "_lock_exclusive", removed_between_open_and_lock)
    held = lock_run_dir(out)
    monkeypatch.undo()
    assert removed and os.path.samestat(os.fstat(held.fileno()), os.stat(out / ".lock"))
    assert training_holder(out)["pid"] == os.getpid()
    release_run_dir(held, out)
    assert os.listdir(out) == []            # alone in its directory: removed


def test_a_lock_left_by_a_killed_process_does_not_block_a_new_run(tmp_path, no_figures):
    out = tmp_path / "run"
    ready, tell = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            held = lock_run_dir(out)  # noqa: F841  (the lock lasts as long as its open file)
            os.write(tell, b"locked")
            time.sleep(60)
        finally:
            os._exit(0)
    try:
        os.read(ready, 6)
        assert training_holder(out)["pid"] == pid
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert json.loads((out / ".lock").read_text())["pid"] == pid    # the file still names it
    assert training_holder(out) is None
    run("--out", out, "--steps", "1", *FAST, check=0)


def test_the_lock_belongs_to_one_open_file_and_ends_with_main(tmp_path, no_figures):
    out = tmp_path / "run"
    held = lock_run_dir(out)
    with pytest.raises(RunBusy, match=f"pid {os.getpid()}, since "):
        lock_run_dir(out)                   # this same process, another open: refused too
    held.close()
    assert training_holder(out) is None
    run("--out", out, "--steps", "1", *FAST, check=0)
    lock_run_dir(out).close()               # main let go of it when it returned


def test_without_locks_it_says_so_in_one_line_and_trains(tmp_path, monkeypatch, no_figures):
    def no_locks(f, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
    monkeypatch.setattr(lock.fcntl, "flock", no_locks)
    out = tmp_path / "run"
    proc = run("--out", out, "--steps", "1", *FAST)
    line = assert_one_line(proc, 0, f"train.py: warning: cannot lock {out} ([Errno 37] ")
    assert "start only one" in line
    assert training_holder(out) is None


def test_a_log_row_cut_short_is_not_a_row(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,model,total\r\n3,0,12.5\r\n6,0,1")     # row 6 cut after "6,0,1"
    assert [r["step"] for r in read_log(str(path))] == ["3"]


def test_evaluate_says_a_run_is_still_being_trained(tmp_path, no_figures, capsys):
    """evaluate.py on a run whose directory a training process holds: its one-line skip says
    so, and --allow-unfinished scores the whole checkpoint it has reached and says so too."""
    import evaluate
    out = tmp_path / "run"
    run("--model", "beta", "--steps", "2", "--checkpoint-every", "1", "--out", out, *FAST,
        check=0)
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "steps": 9}))   # as if at 2 of 9
    common = [str(out), "--test-size", "100", "--no-progress", "--report", str(tmp_path / "r")]
    with lock_run_dir(out):
        assert evaluate.main(common) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"evaluate.py: skipping {out}: still being trained (pid "
                              f"{os.getpid()}, since ")
        assert "checkpoint at step 2 of 9" in err and "--allow-unfinished" in err
        assert evaluate.main(common + ["--allow-unfinished"]) == 0
        assert (f"still being trained (pid {os.getpid()}), scored at its step-2 checkpoint"
                in capsys.readouterr().out)
    assert evaluate.main(common) == 1                                       # lock released
    assert capsys.readouterr().err.startswith(f"evaluate.py: skipping {out}: unfinished")


@pytest.mark.parametrize("written", [[], ["config.json"]])
def test_evaluate_says_a_run_is_being_trained_before_its_first_checkpoint(tmp_path, capsys,
                                                                          written):
    """The lock is there from train.py's start; config.json soon after; the checkpoint only
    after --checkpoint-every steps. Until then it used to say "no checkpoint here; train
    first"."""
    import evaluate
    out = tmp_path / "run"
    with lock_run_dir(out):
        for name in written:
            (out / name).write_text("{}")
        assert evaluate.main([str(out), "--no-progress", "--report", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err == (f"evaluate.py: skipping {out}: still being trained (pid {os.getpid()}, "
                   f"since {err.split('since ')[1].split(')')[0]}), no checkpoint yet: wait "
                   "for its first one (every --checkpoint-every steps)\nevaluate.py: no run "
                   "could be evaluated\n")
