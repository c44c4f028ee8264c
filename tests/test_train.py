"""train.py end to end through its command line, on few steps and small batches.

Most runs call train.main(argv) in this process (the argv a shell would pass; main's return
value is the exit status); the tests of signals and of the script entry point start it as a
real subprocess."""
import contextlib
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--batch-size", "4", "--no-progress"]
NARROW = ["--encoder-hidden", "64,64", "--decoder-hidden", "64,64,64"]  # 6 MB checkpoints
import train  # noqa: E402  (the command itself: pytest.ini puts the repository root on sys.path)
from tinyvae.experiment.run import loop as training  # noqa: E402
from tinyvae.experiment.run.checkpoint import snapshot_path, snapshot_steps  # noqa: E402


def run(*args, check=None):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = train.main([str(a) for a in args])
    proc = SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())
    if check is not None:
        assert code == check, proc.stdout + proc.stderr
    return proc


def run_script(*args, timeout=300):
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def params(run_dir):
    with numpy.load(os.path.join(run_dir, "checkpoint.npz")) as f:
        return {k: f[k] for k in f.files if k.startswith(("param/", "adam_"))}


def snapshot(run_dir, step):
    with numpy.load(snapshot_path(run_dir, step)) as f:
        return {k: f[k] for k in f.files if k != "state"}


def assert_same_params(a, b):
    assert a.keys() == b.keys()
    for k in a:
        numpy.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_a_run_directory_explains_itself(tmp_path):
    out = tmp_path / "run"
    proc = run("--model", "grouped", "--steps", "4", "--log-every", "2", "--checkpoint-every",
               "2", "--out", str(out), "--explain", *FAST, check=0)
    assert "L_rec,2" in proc.stdout and "blocked" in proc.stdout     # the routing report
    config = json.loads((out / "config.json").read_text())
    assert config["groups"] == [3, 3] and config["model_betas"] == [1.0]
    assert config["backend"] == "numpy" and config["data_source"] == "renderer"
    assert "numpy" in config["versions"]
    log = (out / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,model,beta,seed,total,rec_1,rec_2,kl,kl_z1")
    assert log[0].endswith(",kl_z6,grad_rec_2_to_earlier,grad_rec_2_to_own,c_1,c_2")
    assert [row.split(",")[0] for row in log[1:]] == ["2", "4"]
    assert all(float(v) > 0 for row in log[1:] for v in row.split(",")[-4:-2])
    assert all(row.split(",")[-1] == "1" for row in log[1:])     # c_G = 1: only its own term
    with numpy.load(out / "checkpoint.npz") as f:
        assert f["param/encoder.0.W"].shape == (1, 4096, 1200)
        assert json.loads(str(f["state"]))["step"] == 4
    figures = sorted(os.listdir(out / "figures"))
    assert figures == ["losses.png", "reconstructions_m0.png", "routing.png", "traversals_m0.png"]


def test_resume_equals_an_uninterrupted_run(tmp_path):
    common = ["--model", "beta", "--beta", "4", "--checkpoint-every", "2", "--log-every", "3",
              "--snapshot-every", "3", *FAST, *NARROW]
    run(*common, "--steps", "6", "--out", str(tmp_path / "straight"), check=0)
    run(*common, "--steps", "3", "--out", str(tmp_path / "split"), check=0)   # cuts nothing
    proc = run(*common, "--steps", "6", "--out", str(tmp_path / "split"), "--resume", check=0)
    assert "resuming" in proc.stdout
    assert_same_params(params(tmp_path / "straight"), params(tmp_path / "split"))
    logs = [(tmp_path / d / "log.csv").read_text() for d in ("straight", "split")]
    assert logs[0] == logs[1]
    # learning-curve snapshots too: 0 and 3 from the first part, 6 from the resumed one
    for d in ("straight", "split"):
        assert snapshot_steps(tmp_path / d) == [0, 3, 6]
    for step in (0, 3, 6):
        assert_same_params(snapshot(tmp_path / "straight", step), snapshot(tmp_path / "split", step))
    final = {k: v for k, v in params(tmp_path / "split").items() if k.startswith("param/")}
    assert_same_params(snapshot(tmp_path / "split", 6), final)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143),
                                            (signal.SIGUSR1, 138)],
                         ids=["SIGINT", "SIGTERM", "SIGUSR1"])
def test_ctrl_c_sigterm_sigusr1_save_a_checkpoint_that_resumes_exactly(tmp_path, signum,
                                                                          status):
    """Ctrl-C, and the signals Slurm, docker and systemd stop a program with, to a real
    train.py mid-training: it ends its step, saves, prints the command that continues it and
    exits 128 + the signal's number. The line goes to stderr: where `train.py … | tee log` had
    its tee stopped first, the terminal still sees it (it went to stdout)."""
    out = tmp_path / "run"
    flags = ["--steps", "100000", "--checkpoint-every", "100000", "--log-every", "2", *FAST,
             *NARROW]
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), "--out", str(out),
                             *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    deadline = time.time() + 120
    while not (out / "log.csv").exists() or len((out / "log.csv").read_text().splitlines()) < 3:
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == status and "interrupted" not in stdout
    with numpy.load(out / "checkpoint.npz") as f:
        k = json.loads(str(f["state"]))["step"]
    assert k >= 2
    assert len(stderr.splitlines()) == 1, stderr
    line = stderr.strip()
    start = (f"interrupted by {signal.Signals(signum).name}: checkpoint saved at step {k} in "
             f"{out}; continue with: ")
    assert line.startswith(start), stdout
    # The whole command to paste: this interpreter, train.py, every flag given, and --resume.
    words = shlex.split(line[len(start):])
    assert os.path.samefile(os.path.join(ROOT, words[0]), sys.executable)
    assert os.path.samefile(os.path.join(ROOT, words[1]), os.path.join(ROOT, "train.py"))
    assert train.parse_args(words[2:]) == train.parse_args(["--out", str(out), *flags,
                                                            "--resume"])
    flags[1] = str(k + 3)
    run("--out", str(out), *flags, "--resume", check=0)
    run("--out", str(tmp_path / "straight"), *flags, check=0)
    assert_same_params(params(out), params(tmp_path / "straight"))
    # Rows a kill left past the checkpoint are dropped, and a log interval cut by the
    # interruption is completed from the sums the checkpoint kept.
    assert (out / "log.csv").read_text() == (tmp_path / "straight" / "log.csv").read_text()


def test_seeds_train_models_equal_to_single_runs(tmp_path):
    common = ["--model", "grouped", "--steps", "2", *FAST, *NARROW]
    run(*common, "--seeds", "3", "--seed", "5", "--out", str(tmp_path / "joint"), check=0)
    joint = params(tmp_path / "joint")
    for m, seed in ((0, 5), (2, 7)):
        run(*common, "--seed", str(seed), "--out", str(tmp_path / f"s{seed}"), check=0)
        single = params(tmp_path / f"s{seed}")
        for k in single:
            numpy.testing.assert_allclose(joint[k][m], single[k][0], rtol=1e-6, atol=1e-9,
                                          err_msg=k)
    assert not numpy.array_equal(joint["param/encoder.0.W"][0], joint["param/encoder.0.W"][1])


def test_beta_list_times_seeds_trains_every_pair(tmp_path):
    out = tmp_path / "grid"
    run("--model", "beta", "--beta", "1,5", "--seeds", "2", "--steps", "1", "--out", str(out),
        *FAST, *NARROW, check=0)
    config = json.loads((out / "config.json").read_text())
    assert config["model_betas"] == [1.0, 1.0, 5.0, 5.0]
    assert config["model_seeds"] == [0, 1, 0, 1]


@pytest.mark.parametrize("args, message", [
    (["--groups", "2,3"], "sums to 5"),
    (["--groups", "0,6"], "must be positive"),
    (["--groups", "3,x"], "comma-separated"),
    (["--steps", "0"], "--steps must be a positive integer"),
    (["--batch-size", "-1"], "--batch-size must be a positive integer"),
    (["--lr", "0"], "--lr must be a positive, finite number, got 0.0"),
    (["--beta", "-1"], "--beta values must be finite numbers >= 0"),
    (["--beta", "inf"], "--beta values must be finite numbers >= 0"),
    (["--beta", "1,nan"], "--beta values must be finite numbers >= 0"),
    (["--model", "beta", "--groups", "3,3"], "--groups 3,3 applies to --model grouped only"),
    (["--model", "beta", "--routing", "none"], "the same gradient"),
    (["--snapshot-every", "-1"], "--snapshot-every must be 0 (none) or a positive integer"),
    (["--resume", "--overwrite"], "contradict"),
    (["--data", "/nonexistent/dsprites.npz"], "/nonexistent/dsprites.npz"),
])
def test_bad_flags_give_one_clear_line(tmp_path, args, message):
    proc = run("--out", str(tmp_path / "r"), "--steps", "1", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("below", [False, True])
def test_an_out_that_is_a_file_is_bad_input(tmp_path, below):
    """--out naming a regular file (or a path through one) says so and exits 2; it used to be
    exit 1 with a hint to make room on the disk."""
    file = tmp_path / "file"
    file.write_text("not a folder")
    out = file / "r" if below else file
    proc = run("--out", str(out), "--steps", "1", *FAST)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    where = f" ({file} is in its way)" if below else ""
    assert proc.stderr == (f"train.py: error: --out {out}: {file} is a file, not a directory"
                           f"{where}; choose another --out\n")
    assert file.read_text() == "not a folder"


def test_the_script_exits_with_the_status_and_one_line(tmp_path):
    proc = run_script("--out", tmp_path / "r", "--groups", "2,3")
    assert proc.returncode == 2 and proc.stderr.startswith("train.py: error: ")
    assert "sums to 5" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = run_script("--model", "nonsense")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_malformed_data_file(tmp_path):
    bad = tmp_path / "dsprites.npz"
    bad.write_text("not an npz file")
    proc = run("--out", str(tmp_path / "r"), "--steps", "1", "--data", str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"train.py: error: {bad}: not a dSprites .npz ")
    assert "pickle" not in proc.stderr          # not NumPy's advice to load it unsafely


def test_help_gives_each_flag_one_default():
    text = " ".join(train.parser().format_help().split("options:")[1].split())
    groups = text[text.index("--groups GROUPS "):text.index("--routing {")]
    assert "None: 3,3" in groups and groups.count("default") == 1, groups


def test_resume_auto_starts_resumes_or_does_nothing(tmp_path):
    """--resume auto, the one command a requeued job runs again: a fresh start, a resume, or
    nothing and exit 0 once finished, ending as a straight run; refused, as --resume is,
    when the flags are another run's."""
    out, straight = tmp_path / "auto", tmp_path / "straight"
    flags = ["--model", "beta", "--checkpoint-every", "3", "--log-every", "3", *FAST, *NARROW]
    first = run("--out", out, "--steps", "6", *flags, "--resume", "auto", check=0)
    assert "resuming" not in first.stdout and "done: 6 steps" in first.stdout
    for _ in range(2):                              # safe to repeat: nothing more happens
        before = params(out)
        proc = run("--out", out, "--steps", "6", *flags, "--resume", "auto", check=0)
        assert proc.stdout == f"nothing to do: {out} has finished (step 6 of 6)\n"
        assert_same_params(before, params(out))
    proc = run("--out", out, "--steps", "9", *flags, "--resume", "auto", check=0)
    assert proc.stdout.startswith(f"resuming {out} at step 6")
    proc = run("--out", out, "--steps", "12", *flags, "--beta", "5", "--resume", "auto")
    assert proc.returncode == 2 and "--resume auto: the flags disagree" in proc.stderr
    assert "model_betas: run has [1.0], flags give [5.0]" in proc.stderr
    run("--out", straight, "--steps", "9", *flags, check=0)
    assert_same_params(params(out), params(straight))
    assert (out / "log.csv").read_text() == (straight / "log.csv").read_text()
    # A start killed before its first checkpoint (config.json and log rows, no checkpoint):
    # begun again.
    (out / "checkpoint.npz").unlink()
    run("--out", out, "--steps", "9", *flags, "--resume", "auto", check=0)
    assert_same_params(params(out), params(straight))
    assert (out / "log.csv").read_text() == (straight / "log.csv").read_text()
    proc = run("--out", out, "--steps", "9", *flags, "--resume", "yes")
    assert proc.returncode == 2 and "--resume takes no value, or auto; got 'yes'" in proc.stderr


def test_a_stop_during_a_checkpoint_write_saves_once(tmp_path, monkeypatch):
    """SIGTERM while a checkpoint is being written: that checkpoint is the one kept, not
    written a second time (each write is 170 MB at full size, and Slurm waits only KillWait)."""
    writes, save = [], training.save_checkpoint

    def signalled_save(out, model, opt, state):
        writes.append(state["step"])
        if len(writes) == 1:
            os.kill(os.getpid(), signal.SIGTERM)     # handled at once: it sets the stop flag
        save(out, model, opt, state)
    monkeypatch.setattr(training, "save_checkpoint", signalled_save)
    out = tmp_path / "run"
    proc = run("--out", out, "--steps", "9", "--checkpoint-every", "3", *FAST, *NARROW)
    assert proc.returncode == 143 and writes == [3], proc.stdout + proc.stderr
    assert proc.stderr.startswith("interrupted by SIGTERM: checkpoint saved at step 3 in ")
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL      # handlers given back


def test_existing_runs_are_never_overwritten_silently(tmp_path):
    out = tmp_path / "run"
    run("--out", str(out), "--steps", "2", *FAST, *NARROW, check=0)
    before = params(out)
    proc = run("--out", str(out), "--steps", "2", *FAST, *NARROW)
    assert proc.returncode == 2 and "already holds a run" in proc.stderr
    assert_same_params(before, params(out))
    proc = run("--out", str(out), "--steps", "4", "--resume", "--beta", "5", "--lr", "0.001",
               *FAST, *NARROW)
    assert proc.returncode == 2 and "model_betas" in proc.stderr and "lr" in proc.stderr
    proc = run("--out", str(out), "--steps", "2", "--resume", *FAST, *NARROW)
    assert proc.returncode == 2 and "already at step 2" in proc.stderr
    run("--out", str(out), "--steps", "1", "--overwrite", *FAST, *NARROW, check=0)


def test_resume_without_or_with_a_broken_checkpoint(tmp_path):
    proc = run("--out", str(tmp_path / "absent"), "--steps", "2", "--resume", *FAST)
    assert proc.returncode == 2 and "no checkpoint" in proc.stderr
    assert not (tmp_path / "absent").exists()
    (tmp_path / "empty").mkdir()
    proc = run("--out", str(tmp_path / "empty"), "--steps", "2", "--resume", *FAST)
    assert proc.returncode == 2 and "no checkpoint" in proc.stderr
    assert os.listdir(tmp_path / "empty") == []         # not even the lock file it took
    out = tmp_path / "run"
    run("--out", str(out), "--steps", "1", *FAST, *NARROW, check=0)
    data = (out / "checkpoint.npz").read_bytes()
    (out / "checkpoint.npz").write_bytes(data[: len(data) // 2])
    proc = run("--out", str(out), "--steps", "2", "--resume", *FAST, *NARROW)
    assert proc.returncode == 2 and "corrupt or truncated" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_gpu_without_cupy_is_a_clear_error(tmp_path):
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed here: --gpu is a valid request on this machine")
    except ImportError:
        pass
    proc = run("--out", str(tmp_path / "r"), "--steps", "1", "--gpu")
    assert proc.returncode == 2 and "CuPy" in proc.stderr and "Traceback" not in proc.stderr


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = run("--out", str(out), "--steps", "50", "--lr", "1e30", "--checkpoint-every", "1",
               *FAST, *NARROW)
    assert proc.returncode == 1 and "non-finite" in proc.stderr and "logvar range" in proc.stderr
    with numpy.load(out / "checkpoint.npz") as f:
        assert all(numpy.isfinite(f[k]).all() for k in f.files if k.startswith("param/"))


def test_a_reader_that_goes_away_stops_training_with_the_step_in_hand(tmp_path):
    """`train.py ... 2>&1 | tee log`, and the tee gone first (Ctrl-C reaches it too; kill -TERM
    it): the next write finds the pipe closed. Training stops as on a stop signal, its step
    saved, with 128 + SIGPIPE; it used to die of the write, with status 1 and no checkpoint."""
    out = tmp_path / "run"
    flags = ["--steps", "100000", "--checkpoint-every", "100000", "--log-every", "1",
             "--batch-size", "4", *NARROW]                      # with the progress bar
    read, write = os.pipe()
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), "--out", str(out),
                             *flags], stdout=write, stderr=write, cwd=ROOT)
    os.close(write)
    reader = os.fdopen(read, "rb")
    deadline = time.time() + 120
    while not (out / "log.csv").exists() or len((out / "log.csv").read_text().splitlines()) < 3:
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.1)
    reader.close()                                      # the reader goes away
    assert proc.wait(timeout=120) == 128 + signal.SIGPIPE
    with numpy.load(out / "checkpoint.npz") as f:
        k = json.loads(str(f["state"]))["step"]
    assert k >= 2
    flags[1] = str(k + 3)
    run("--out", str(out), *flags, "--no-progress", "--resume", check=0)
    run("--out", str(tmp_path / "straight"), *flags, "--no-progress", check=0)
    assert_same_params(params(out), params(tmp_path / "straight"))
    assert (out / "log.csv").read_text() == (tmp_path / "straight" / "log.csv").read_text()


def test_a_start_that_failed_before_its_first_checkpoint_says_overwrite_starts_it_afresh(
        tmp_path):
    """A run stopped before its first checkpoint (a non-finite loss at step 2) leaves its
    config.json: every way back in names the way out. And a non-finite or non-positive --lr is
    refused before anything is written."""
    for lr in ("inf", "nan", "0", "-0.5"):
        proc = run("--out", tmp_path / "never", "--steps", "1", "--lr", lr, *FAST)
        assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert f"--lr must be a positive, finite number, got {float(lr)}" in proc.stderr
        assert not (tmp_path / "never").exists()
    out = tmp_path / "run"
    flags = ["--steps", "50", "--checkpoint-every", "50", *FAST, *NARROW]
    proc = run("--out", out, *flags, "--lr", "1e30")
    assert proc.returncode == 1 and "no checkpoint had been written yet" in proc.stderr
    assert "--overwrite starts it afresh" in proc.stderr
    assert (out / "config.json").exists() and not (out / "checkpoint.npz").exists()
    for again in ([], ["--resume"], ["--resume", "auto"]):      # with a sane --lr
        proc = run("--out", out, *flags, *again)
        assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert "--overwrite starts it afresh" in proc.stderr, proc.stderr
    run("--out", out, *flags, "--overwrite", check=0)


@pytest.mark.parametrize("args, message", [
    (["--latent", "5"], "--groups 3,3 (the default) sums to 6, but --latent is 5"),
    (["--latent", "5", "--groups", "3,3"], "--groups 3,3 sums to 6, but --latent is 5"),
    (["--out", ""], "--out is empty: give a directory, or leave --out out for runs/"),
])
def test_what_the_flags_were_is_what_the_message_says(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)                 # where a default --out would go
    proc = run("--steps", "1", *FAST, *NARROW, *args)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert message in proc.stderr and "None" not in proc.stderr, proc.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args, message", [
    (["--groups", ""], "--groups must be a comma-separated list of numbers like 3,3, got ''"),
    (["--beta", "1,1"], "--beta 1,1 gives 1 more than once, which would train the same models "
                        "twice; give each β once"),
    (["--data", ROOT], f"{ROOT} is a folder: give the dSprites .npz file "),
    # argparse took -1,1 for a flag ('expected one argument'): now the value is read and judged
    (["--kl-scale", "-1,1"], "--kl-scale -1,1: give one positive, finite number per group"),
])
def test_inputs_once_taken_silently_or_misread_are_refused_in_one_line(tmp_path, args, message):
    proc = run_script("--out", tmp_path / "r", "--steps", "1", *args)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"train.py: error: {message}"), proc.stderr
    assert not (tmp_path / "r").exists()


def test_a_resume_says_when_log_csv_has_lost_the_history(tmp_path, no_figures):
    """log.csv deleted, then --resume: the resumed log would start at the checkpoint's step and
    the history before it be gone without a word."""
    out = tmp_path / "run"
    flags = ["--out", out, "--log-every", "2", "--checkpoint-every", "2", *FAST, *NARROW]
    run(*flags, "--steps", "4", check=0)
    assert run(*flags, "--steps", "6", "--resume", check=0).stderr == ""   # a whole log: quiet
    (out / "log.csv").unlink()
    proc = run(*flags, "--steps", "8", "--resume", check=0)
    assert proc.stderr == (f"train.py: warning: {out / 'log.csv'} is missing or has no rows: "
                           "the resumed log.csv has no rows before step 6; to keep them, stop "
                           "now and restore log.csv from a copy, then resume again\n")
    assert [r.split(",")[0] for r in (out / "log.csv").read_text().splitlines()[1:]] == ["8"]


def test_resume_auto_on_a_finished_run_in_a_read_only_place_has_nothing_to_do(
        tmp_path, no_figures, read_only):
    """A finished run needs nothing written: it used to fail taking the lock ('cannot write the
    run') and suggest plain --resume, which fails too."""
    out = tmp_path / "run"
    flags = ["--out", out, "--steps", "2", *FAST, *NARROW]
    run(*flags, check=0)
    read_only(tmp_path)
    proc = run(*flags, "--resume", "auto", check=0)
    assert proc.stdout == f"nothing to do: {out} has finished (step 2 of 2)\n" and not proc.stderr
    proc = run(*flags, "--steps", "3", "--resume", "auto")   # more steps: that needs writing
    assert proc.returncode == 1 and "Read-only file system" in proc.stderr


def test_one_step_is_one_step(tmp_path, no_figures):
    proc = run("--out", tmp_path / "one", "--steps", "1", *FAST, *NARROW, check=0)
    assert proc.stdout.splitlines()[-1] == f"done: 1 step; run directory {tmp_path / 'one'}"


def test_a_batch_that_cannot_fit_is_refused_before_anything_is_written(tmp_path):
    """--batch-size 100000 under `ulimit -v` 3 GiB: one model's step holds at least 15 GB, so
    it is refused at once; it used to end in NumPy's traceback, after minutes, with config.json
    and .lock left behind."""
    import resource
    limit = 3 * 2**30
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--out",
                           str(tmp_path / "r"), "--batch-size", "100000", "--no-progress"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          # one BLAS thread: each reserves its buffers' address space
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS,
                                                                (limit, limit)))
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert re.fullmatch(r"train\.py: error: --batch-size 100000 with 1 model\(s\) needs at "
                        r"least \d+\.\d GiB to train, more than the 3\.0 GiB this process may "
                        r"use \(ulimit -v\); try --batch-size \d+ at most\n", proc.stderr)
    assert not (tmp_path / "r").exists()


def test_out_of_memory_while_training_is_one_line_and_a_plain_restart_is_accepted(
        tmp_path, monkeypatch, no_figures):
    """An allocation the machine refuses mid-run (NumPy's _ArrayMemoryError is a MemoryError):
    before the first checkpoint, nothing of the start is left (it left config.json, which made
    the same command refuse until --overwrite); after one, the checkpoint is kept."""
    from tinyvae.experiment.run.trainer import Trainer
    step = Trainer.train_step

    def fails_at_3(self):
        if self.step == 2:
            raise MemoryError("Unable to allocate 15.3 GiB for an array")
        return step(self)
    monkeypatch.setattr(Trainer, "train_step", fails_at_3)
    out = tmp_path / "r"
    flags = ["--out", out, "--steps", "4", "--checkpoint-every", "3", *FAST, *NARROW]
    proc = run(*flags)
    assert proc.returncode == 1 and proc.stderr == (
        "train.py: error: out of memory (Unable to allocate 15.3 GiB for an array); this start "
        f"left nothing in {out}: use a smaller --batch-size, fewer models (--seeds, --beta) or "
        "narrower networks, then run the same command again\n")
    assert os.listdir(out) == []
    flags[flags.index("--checkpoint-every") + 1] = "2"
    proc = run(*flags)                            # the same command, accepted: now past step 2
    assert proc.returncode == 1 and f"the checkpoint of step 2 in {out} is whole and kept" \
        in proc.stderr and proc.stderr.endswith(f"--out {out} --resume\n"), proc.stderr
    monkeypatch.setattr(Trainer, "train_step", step)
    run(*flags, "--resume", check=0)


def test_a_seeds_random_streams_are_distinct():
    """Initial weights, noise, the --explain report's noise and the batches each draw from a
    stream of their own, numpy.random.default_rng((seed, stream)): none shifts another."""
    from tinyvae.data.dataset import SAMPLER_STREAM
    from tinyvae.experiment.run.trainer import EXPLAIN_STREAM, NOISE_STREAM
    from tinyvae.vae import INIT_STREAM
    assert len({INIT_STREAM, NOISE_STREAM, EXPLAIN_STREAM, SAMPLER_STREAM}) == 4
