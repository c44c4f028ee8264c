"""The Slurm recipe (scripts/slurm) against a real Slurm: munged, slurmctld and slurmd started
here as background processes, one node on localhost, configured in a temporary directory.

The sweep is tiny (2 configurations x 2 seeds, 1,000 steps of batch 16, narrow networks), in
a checkout with a slow module load; the last task, which holds the array's own job id, gets
the time limit's warning while it loads; while the others train, one is requeued as a
preemption would be, one gets the warning, one is cancelled and submitted again. Every run
directory must end bit for bit as an uninterrupted run, no task run more often than it was
stopped, and the dependent evaluation write its report with the sweep's flags. Without Slurm
(or root) these tests skip, saying why; with CI=true they fail instead. The grid's own tests
need no Slurm."""
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from test_train import NARROW, ROOT, assert_same_params, params, run

SLURM = os.path.join(ROOT, "scripts", "slurm")
PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])   # the daemons
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
STEPS = 1000
TRAIN_FLAGS = f"--steps {STEPS} --batch-size 16 {' '.join(NARROW)} --checkpoint-every 500"
TINY_GRID = "grouped  --model grouped\nbeta5    --model beta --beta 5   # 2 x SEEDS=2: 4 tasks\n"
# What works without cgroups or systemd (Debian 12's Slurm 22.05). cred_expire: a requeued
# task waits it out before it starts again (120 s by default).
CONF = """\
ClusterName=tinyvae-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={home}/munge.socket,cred_expire=10
StateSaveLocation={home}/state
SlurmdSpoolDir={home}/spool
SlurmctldPidFile={home}/slurmctld.pid
SlurmdPidFile={home}/slurmd.pid
SlurmctldLogFile={home}/slurmctld.log
SlurmdLogFile={home}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
NodeName={host} NodeAddr=127.0.0.1 CPUs=4 RealMemory=4000 State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def why_not():
    missing = [p for p in PROGRAMS if shutil.which(p, path=PATH) is None]
    if missing:
        return (f"no Slurm here ({', '.join(missing)} not found); on Debian: apt-get install "
                "slurmctld slurmd slurm-client munge, as .ci/run does")
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs, and these tests do not"
    return None


def wait(condition, what, timeout, report=lambda: ""):
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}\n{report()}")
        time.sleep(0.05)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slurm:
    """The daemons, started in the foreground so that their PIDs are ours to stop."""

    def __init__(self):
        self.home = tempfile.mkdtemp(prefix="slurm-")   # short: socket paths are limited
        for d in ("state", "spool"):
            os.mkdir(os.path.join(self.home, d))
        conf = os.path.join(self.home, "slurm.conf")
        with open(conf, "w") as f:
            f.write(CONF.format(host=socket.gethostname().split(".")[0], home=self.home,
                                ports=(free_port(), free_port())))
        key = os.path.join(self.home, "munge.key")
        with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o400), "wb") as f:
            f.write(os.urandom(1024))
        self.env = {**os.environ, "SLURM_CONF": conf, "PATH": PATH}
        self.daemons = []
        try:
            self._start_all(key)
        except BaseException:
            self._terminate()           # a start that failed leaves no daemon behind
            raise

    def _start_all(self, key):
        self.daemons += [self.start("munged", "-F", "--force", f"--key-file={key}",
                                   f"--socket={self.home}/munge.socket",
                                   f"--pid-file={self.home}/munged.pid",
                                   f"--seed-file={self.home}/munged.seed",
                                   f"--log-file={self.home}/munged.log")]
        wait(lambda: os.path.exists(f"{self.home}/munge.socket"), "munged", 20, self.logs)
        self.daemons += [self.start("slurmctld", "-D"), self.start("slurmd", "-D")]
        wait(lambda: self.out("sinfo", "-h", "-o", "%t").strip() == "idle", "an idle node",
             30, self.logs)

    def start(self, *command):
        with open(os.path.join(self.home, f"{command[0]}.out"), "w") as log:
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env)

    def out(self, *command):
        return subprocess.run(command, capture_output=True, text=True, env=self.env,
                              timeout=30).stdout

    def queue(self):
        return self.out("squeue", "-h", "-o", "%i %T").split("\n")[:-1]

    def logs(self):
        return "\n".join(f"--- {n}\n{open(os.path.join(self.home, n)).read()[-3000:]}"
                         for n in sorted(os.listdir(self.home)) if n.endswith((".log", ".out")))

    def stop(self):
        # Stopping slurmd does not end the jobs it started: cancel them and let them go first.
        ids = [line.split()[0] for line in self.queue()]
        if ids:
            self.out("scancel", *ids)
        try:
            wait(lambda: not self.queue(), "the queue to empty", 60)
        finally:
            self._terminate()

    def _terminate(self):
        for proc in reversed(self.daemons):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture(scope="module")
def slurm():
    why = why_not()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: the Slurm tests must run here, but {why}")
        pytest.skip(why)
    cluster = Slurm()
    try:
        yield cluster
    finally:
        cluster.stop()


def grid(*args, env=None):
    return subprocess.run([sys.executable, os.path.join(SLURM, "grid.py"), *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=60, cwd=ROOT)


def text(path):
    return path.read_text() if path.exists() else ""


MODULES = "# Your cluster's module loads (module load ..., conda activate ...) go here"


def slow_module_loads(checkout):
    """A checkout at `checkout` whose train.sbatch loads modules slowly where the script says
    they go (a slow shared file system's `module load`): links to this one's files, that
    script a copy. Returns its scripts/slurm. The load is the last task's, at its first
    start: a load of short sleeps that lasts until the warning has been noted (at most 30 s),
    so that it comes during the load however slowly Slurm passes it on."""
    slurm = checkout / "scripts" / "slurm"
    slurm.mkdir(parents=True)
    for name in ("train.py", "evaluate.py", "tinyvae"):
        os.symlink(os.path.join(ROOT, name), checkout / name)
    for name in os.listdir(SLURM):
        os.symlink(os.path.join(SLURM, name), slurm / name)
    script = pathlib.Path(SLURM, "train.sbatch").read_text()
    assert MODULES in script
    (slurm / "train.sbatch").unlink()
    (slurm / "train.sbatch").write_text(script.replace(MODULES, SLOW_LOAD + MODULES))
    return slurm


SLOW_LOAD = """\
if [ "$SLURM_ARRAY_TASK_ID" = 3 ] && [ "${SLURM_RESTART_COUNT:-0}" = 0 ]; then
    echo "loading modules"
    for _ in $(seq 300); do [ -z "${requeue:-}" ] || break; sleep 0.1; done
fi
"""


def test_the_sweep_survives_preemption_the_time_limit_and_a_cancel(slurm, tmp_path):
    (tmp_path / "tiny.grid").write_text(TINY_GRID)
    sweep, straight = tmp_path / "sweep", tmp_path / "straight"
    scripts = slow_module_loads(tmp_path / "checkout")
    env = {**slurm.env, "SWEEP": str(sweep), "GRID": str(tmp_path / "tiny.grid"), "SEEDS": "2",
           "TRAIN_FLAGS": TRAIN_FLAGS, "PYTHON": sys.executable}

    def submit(*args, **more):
        proc = subprocess.run([os.path.join(scripts, "submit.sh"), *args, "--cpus-per-task=1",
                               "--mem=500M"], capture_output=True, text=True,
                              env={**env, **more}, timeout=60, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return re.match(r"submitted array (\d+) ", proc.stdout).group(1)

    def report():
        return "\n".join(slurm.queue()) + "".join(
            f"\n--- {p.name}\n{p.read_text()}" for p in sorted((sweep / "logs").glob("*")))

    first = submit(EVALUATE_FLAGS="--test-size 100 --scores mig,mic")
    # The same runs, straight through, beside the sweep: one BLAS thread as in its tasks.
    runs = [pathlib.Path(out) for out in grid("runs", env=env).stdout.split()]
    references = [subprocess.Popen(
        [sys.executable, "train.py", *grid("flags", str(t), env={**env, "SWEEP": str(straight)})
         .stdout.split(), "--no-progress"], env={**os.environ, "OPENBLAS_NUM_THREADS": "1",
                                                  "OMP_NUM_THREADS": "1"},
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for t in range(len(runs))]
    try:
        log = [sweep / "logs" / f"train_{first}_{t}.out" for t in range(len(runs))]

        def training(t):
            return len(text(runs[t] / "log.csv").splitlines()) >= 2    # a row past the header

        # The time limit's warning to the last task while it loads its modules: requeuing its
        # job id, the array's own, brought every other task back; a load before the traps
        # ended it FAILED, unrequeued.
        wait(lambda: "loading modules" in text(log[3]), "task 3 to start", 60, report)
        slurm.out("scancel", "--batch", "--signal=USR1", f"{first}_3")
        for t, command in ((0, ["scontrol", "requeue"]),            # as a preemption would
                           (1, ["scancel", "--batch", "--signal=USR1"]),   # time limit near
                           (2, ["scancel"])):                       # then submitted again
            wait(lambda: training(t), f"task {t} to train", 60, report)
            slurm.out(*command, f"{first}_{t}")
        wait(lambda: f"{first}_2" not in [line.split()[0] for line in slurm.queue()],
             "the cancelled task to end", 60, report)
        again = submit("--tasks", "2")             # EVALUATE_FLAGS: the sweep's
        wait(lambda: (sweep / "report" / "table1.md").exists() and not slurm.queue(),
             "the evaluation", 150, report)

        for proc in references:
            assert proc.communicate(timeout=120)[1] == "" and proc.returncode == 0
    finally:
        for proc in references:         # a failed wait leaves no straight run behind
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for out in runs:
        assert_same_params(params(out), params(straight / "runs" / out.name))
        assert text(out / "log.csv") == text(straight / "runs" / out.name / "log.csv")
    stopped = [re.search(r"interrupted by SIGTERM: checkpoint saved at step (\d+) in ", text(p))
               for p in log[:3]]
    assert all(stopped), report()
    for t, k in enumerate(int(s.group(1)) for s in stopped):
        assert 0 < k < STEPS
        resumed = text(log[t]) if t < 2 else text(sweep / "logs" / f"train_{again}_2.out")
        assert f"resuming {runs[t]} at step {k}\n" in resumed, report()
    assert "DUE TO JOB REQUEUE" in text(log[0]) and "start 2 on" in text(log[0])
    assert "time limit near: requeued" in text(log[1]) and "start 2 on" in text(log[1])
    # Warned before train.py began, requeued alone, begun at its second start.
    assert f"task 3, job {first}, start 1 on" in text(log[3]), report()   # the array's id
    assert "time limit near: requeued" in text(log[3]) and "start 2 on" in text(log[3])
    assert "interrupted" not in text(log[3]) and "resuming" not in text(log[3])
    assert f"done: {STEPS} steps" in text(log[3])
    # No task ran more often than it was stopped.
    assert all("start 3 on" not in text(p) for p in log) and "start 2" not in text(log[2])
    evaluations = sorted((sweep / "logs").glob("evaluate_*.out"))
    assert len(evaluations) == 1, report()             # the first one, cancelled, never ran
    assert evaluations[0].read_text().startswith("all 4 runs have finished\n")
    assert "| trials (seeds) | 2 | 2 |" in (sweep / "report" / "table1.md").read_text()
    assert json.loads(text(runs[0] / "metrics.json"))["protocol"]["n_images"] == 100


def test_the_grid_is_configurations_times_seeds():
    count = grid("count", env={"SWEEP": "/s"})
    assert count.returncode == 0 and count.stdout == "50\n"           # the paper's, 10 seeds
    flags = grid("flags", "11", env={"SWEEP": "/s"}).stdout.split("\n")[:-1]
    assert flags == ["--model", "grouped", "--routing", "none", "--steps", "10000", "--seed",
                     "1", "--seeds", "1", "--out", "/s/runs/grouped-none-s1"]
    gpu = grid("runs", env={"SWEEP": "/s", "SEEDS_PER_TASK": "4"}).stdout.split()
    assert len(gpu) == 15 and gpu[:3] == ["/s/runs/grouped-s0-3", "/s/runs/grouped-s4-7",
                                          "/s/runs/grouped-s8-9"]
    assert grid("flags", "2", env={"SWEEP": "/s", "SEEDS_PER_TASK": "4"}).stdout.split()[-5:] \
        == ["8", "--seeds", "2", "--out", "/s/runs/grouped-s8-9"]


@pytest.mark.parametrize("args, env, message", [
    (["flags", "50"], {}, "no task 50: the grid has tasks 0 to 49"),
    (["count"], {"SEEDS": "x"}, "SEEDS must be a whole number, got 'x'"),
    (["count"], {"SEEDS_PER_TASK": "0"}, "SEEDS_PER_TASK must be at least 1, got 0"),
    (["count"], {"GRID": "/nonexistent"}, "GRID /nonexistent: cannot read it"),
    (["count"], {"SWEEP": None}, "SWEEP is not set"),
    (["sideways"], {}, "usage: grid.py count | flags TASK | runs | check"),
    (["evaluate-args"], {"EVALUATE_FLAGS": '--scores "mig'}, 'EVALUATE_FLAGS=--scores "mig: '
     "cannot split it into flags (No closing quotation); close the quote"),
    (["count"], {"TRAIN_FLAGS": "--steps '5"}, "TRAIN_FLAGS=--steps '5: cannot split it"),
    (["count"], {"TRAIN_FLAGS": "--overwrite"}, "TRAIN_FLAGS sets --overwrite, which each "
     "task sets itself; remove it"),
    (["array"], {"TRAIN_FLAGS": "--steps x"}, "task 0 (grouped-s0): train.py refuses its "
     "flags, from GRID and TRAIN_FLAGS: argument --steps: invalid int value: 'x'"),
])
def test_grid_errors_are_one_line(tmp_path, args, env, message):
    env = {"SWEEP": "/s", **env}
    proc = subprocess.run([sys.executable, os.path.join(SLURM, "grid.py"), *args],
                          capture_output=True, text=True, timeout=60, env={
                              **{k: v for k, v in os.environ.items() if k != "SWEEP"},
                              **{k: v for k, v in env.items() if v is not None}})
    assert proc.returncode == 2 and proc.stderr.startswith("grid.py: error: ")
    assert message in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr


def test_a_grid_may_not_set_what_each_task_sets(tmp_path):
    (tmp_path / "g").write_text("mine --model beta --seeds 3\n")
    proc = grid("count", env={"SWEEP": "/s", "GRID": str(tmp_path / "g")})
    assert proc.returncode == 2 and "configuration mine sets --seeds" in proc.stderr


def test_check_names_every_run_that_has_not_finished(tmp_path):
    (tmp_path / "g").write_text("beta --model beta\n")
    env = {"SWEEP": str(tmp_path), "GRID": str(tmp_path / "g"), "SEEDS": "3",
           "TRAIN_FLAGS": f"--steps 2 --batch-size 4 {' '.join(NARROW)}"}
    runs = grid("runs", env=env).stdout.split()
    run(*grid("flags", "0", env=env).stdout.split(), "--no-progress", check=0)
    run(*grid("flags", "1", env=env).stdout.split(), "--steps", "1", "--no-progress", check=0)
    config = os.path.join(runs[1], "config.json")
    with open(config) as f:
        stopped = json.load(f)
    with open(config, "w") as f:                 # as if stopped at step 1 of the grid's 2
        json.dump({**stopped, "steps": 2}, f)
    proc = grid("check", env=env)
    assert proc.returncode == 1 and proc.stderr == (
        f"grid.py: 2 of 3 runs have not finished: {runs[1]}: step 1 of 2; {runs[2]}: not "
        "started\n")
    run(*grid("flags", "1", env=env).stdout.split(), "--no-progress", "--resume", check=0)
    run(*grid("flags", "2", env=env).stdout.split(), "--no-progress", check=0)
    assert grid("check", env=env).stdout == "all 3 runs have finished\n"


@pytest.mark.parametrize("ci", ["", "true"], ids=["no CI", "CI=true"])
def test_without_slurm_the_sweep_skips_saying_why_but_fails_under_ci(ci):
    """A PATH without the Slurm commands (sbatch and the rest live in /usr/bin)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         f"{__file__}::test_the_sweep_survives_preemption_the_time_limit_and_a_cancel"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "PATH": "/nonexistent", "CI": ci})
    # the programs missing depend on where the daemons live here (/usr/sbin, or nowhere)
    why = re.compile(r"no Slurm here \(([a-z]+, )*sinfo not found\); on Debian")
    if ci:
        assert proc.returncode == 1 and "1 error" in proc.stdout, proc.stdout
        assert re.search("CI=true: the Slurm tests must run here, but " + why.pattern,
                         proc.stdout), proc.stdout
    else:
        assert proc.returncode == 0 and "1 skipped" in proc.stdout, proc.stdout
        assert "SKIPPED [1] tests/test_slurm.py" in proc.stdout and why.search(proc.stdout)


def test_the_gpu_variant_asks_for_a_gpu_and_trains_every_seed_of_a_configuration_at_once(
        tmp_path):
    """What submit.sh --gpu hands sbatch, seen through a stand-in sbatch (no GPU needed)."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "sbatch").write_text('#!/bin/sh\necho "$* | $SEEDS_PER_TASK | $TRAIN_FLAGS" >> '
                                 f'{tmp_path}/calls\necho 42\n')
    (bin_ / "sbatch").chmod(0o755)
    proc = subprocess.run([os.path.join(SLURM, "submit.sh"), "--gpu", "--partition=gpu"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}",
                               "SWEEP": str(tmp_path / "sweep"), "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr
    train, evaluation = (tmp_path / "calls").read_text().splitlines()
    assert train.startswith("--parsable --export=ALL --gres=gpu:1 --cpus-per-task=4 --mem=16G "
                            "--partition=gpu --array=0-4 ")
    assert train.endswith("/scripts/slurm/train.sbatch | 10 | --steps 10000 --gpu")
    assert evaluation.startswith("--parsable --export=ALL --partition=gpu --dependency=afterok:42 ")
    assert "--gres" not in evaluation                    # the report is computed on CPUs
    assert (tmp_path / "sweep" / "jobs").read_text() == "array 42\nevaluate 42\n"
    # A GPU type of the cluster's goes to the training tasks only; a relative GRID is made
    # absolute, since the tasks start in the checkout. (Another sweep: a sweep's grid is the
    # one it was submitted with.)
    (tmp_path / "one.grid").write_text("grouped --model grouped\n")
    proc = subprocess.run([os.path.join(SLURM, "submit.sh"), "--gpu"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}",
                               "SWEEP": "sweep-one", "PYTHON": sys.executable,
                               "GPU_GRES": "gpu:a100:1", "GRID": "one.grid"})
    assert proc.returncode == 0, proc.stderr
    train, evaluation = (tmp_path / "calls").read_text().splitlines()[2:]
    assert train.startswith("--parsable --export=ALL --gres=gpu:a100:1 --cpus-per-task=4 ")
    assert "--array=0-0 " in train and "--gres" not in evaluation


def stand_in(bin_, name, body):
    """A program `name` on bin_ that runs the shell `body` (what a test needs of sbatch,
    scontrol or python)."""
    bin_.mkdir(exist_ok=True)
    (bin_ / name).write_text("#!/bin/sh\n" + body)
    (bin_ / name).chmod(0o755)


def test_a_warning_in_a_tasks_first_second_requeues_it(tmp_path):
    """The time limit's USR1 can reach the batch shell before train.py runs (here: while it
    asks grid.py for its flags). The shell must survive it and requeue the task; without its
    traps set yet, USR1 ended it unrequeued, and the evaluation waited for it forever."""
    bin_ = tmp_path / "bin"
    stand_in(bin_, "scontrol", f'echo "$*" >> {tmp_path}/scontrol\n')
    stand_in(bin_, "python", f'case "$1" in */grid.py) kill -USR1 "$BATCH_SHELL";; esac\n'
                             f'exec {sys.executable} "$@"\n')
    (tmp_path / "g").write_text("beta --model beta\n")
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "TINYVAE": ROOT,
           "PYTHON": str(bin_ / "python"), "SWEEP": str(tmp_path / "sweep"),
           "GRID": str(tmp_path / "g"), "SEEDS": "1", "SLURM_ARRAY_TASK_ID": "0",
           "SLURM_ARRAY_JOB_ID": "70", "SLURM_JOB_ID": "77",
           "TRAIN_FLAGS": f"--steps 2 --batch-size 4 {' '.join(NARROW)}"}
    proc = subprocess.run(["bash", "-c", 'export BATCH_SHELL=$$; exec bash "$0"',
                           os.path.join(SLURM, "train.sbatch")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 143, proc.stdout + proc.stderr
    assert text(tmp_path / "scontrol") == "requeue 70_0\n"          # this task of the array
    assert "time limit near: requeued" in proc.stdout
    assert not (tmp_path / "sweep" / "runs" / "beta-s0").exists()   # begun at the next start


LOADS = "#   set +u; module load python/3.11; conda activate tinyvae; set -u\n"


@pytest.mark.parametrize("script", ["train.sbatch", "evaluate.sbatch"])
def test_the_module_loads_as_the_scripts_show_them_survive_a_conda_that_reads_unset_variables(
        tmp_path, script):
    """conda activate reads PS1 (some module files PROJ_LIB), unset in a batch shell: a load
    under the scripts' set -u ended the shell, and the task FAILED, not requeued. The script up
    to its loads, the example line made a command, with a conda that reads PS1."""
    head, marker, _ = pathlib.Path(SLURM, script).read_text().partition(LOADS)
    assert marker, f"{script} shows no module loads between set +u and set -u"
    env = {k: v for k, v in os.environ.items() if k not in ("PS1", "PROJ_LIB")}
    env.update({"TINYVAE": ROOT, "BASH_FUNC_module%%": "() { :; }",
                "BASH_FUNC_conda%%": '() { : "$PS1"; }'})
    # The loads as shown, then the negative control: conda activate under set -u.
    for loads, ok in ((LOADS[1:].lstrip(), True), ("conda activate tinyvae\n", False)):
        (tmp_path / script).write_text(head + loads + 'echo "loaded: $TINYVAE"\n')
        proc = subprocess.run(["bash", tmp_path / script], capture_output=True, text=True,
                              timeout=60, env=env)
        if ok:
            assert (proc.returncode, proc.stdout) == (0, f"loaded: {ROOT}\n"), proc.stderr
        else:
            assert proc.returncode != 0 and "PS1: unbound variable" in proc.stderr, proc.stderr


def test_check_and_tasks_use_the_settings_the_sweep_was_submitted_with(tmp_path):
    """`SWEEP=… grid.py check` with nothing else set checks the sweep that was submitted (its
    GRID, SEEDS, SEEDS_PER_TASK, TRAIN_FLAGS, recorded in SWEEP), not the default grid; so do
    `submit.sh --tasks` and its tasks. A setting given again that differs is refused."""
    bin_ = tmp_path / "bin"
    stand_in(bin_, "sbatch", f'echo "$* | $GRID | $SEEDS | $TRAIN_FLAGS" >> {tmp_path}/calls\n'
                             "echo 42\n")
    stand_in(bin_, "squeue", "")
    stand_in(bin_, "scancel", "")
    (tmp_path / "tiny.grid").write_text("beta --model beta\n")
    sweep = tmp_path / "sweep"
    base = {k: v for k, v in os.environ.items()
            if k not in ("GRID", "SEEDS", "SEEDS_PER_TASK", "TRAIN_FLAGS")}
    base.update(PATH=f"{bin_}:{os.environ['PATH']}", SWEEP=str(sweep), PYTHON=sys.executable)

    submit = submitter(tmp_path, base)

    proc = submit(GRID="tiny.grid", SEEDS="4", SEEDS_PER_TASK="2", TRAIN_FLAGS="--steps 30")
    assert proc.returncode == 0, proc.stderr
    check = grid("check", env={"SWEEP": str(sweep)})
    assert check.returncode == 1 and check.stderr.startswith(
        "grid.py: 2 of 2 runs have not finished: "), check.stderr
    assert grid("flags", "1", env={"SWEEP": str(sweep)}).stdout.split() == [
        "--model", "beta", "--steps", "30", "--seed", "2", "--seeds", "2", "--out",
        str(sweep / "runs" / "beta-s2-3")]
    proc = submit("--tasks", "1")
    assert proc.returncode == 0, proc.stderr
    assert "--array=1 " in text(tmp_path / "calls").splitlines()[2]
    proc = submit("--tasks", "1", SEEDS="10")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert ("SEEDS=10 differs from SEEDS=4, what the sweep in " in proc.stderr
            and "leave SEEDS unset" in proc.stderr), proc.stderr
    proc = submit("--tasks", "1", "--gpu")                # a CPU sweep: its tasks on a GPU?
    assert proc.returncode == 2 and "GPU=yes differs from GPU=no" in proc.stderr, proc.stderr
    assert len(text(tmp_path / "calls").splitlines()) == 4        # nothing more submitted


def test_max_running_throttles_the_array(tmp_path):
    bin_ = tmp_path / "bin"
    stand_in(bin_, "sbatch", f'echo "$*" >> {tmp_path}/calls\necho 42\n')
    stand_in(bin_, "squeue", "")
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "SWEEP": str(tmp_path / "s"),
           "PYTHON": sys.executable}
    env.pop("MAX_RUNNING", None)

    submit = submitter(tmp_path, env)
    proc = submit(MAX_RUNNING="five", SWEEP=str(tmp_path / "other"))
    assert proc.returncode == 2 and proc.stderr == (
        "grid.py: error: MAX_RUNNING must be a whole number of tasks, at least 1, got 'five'\n")
    proc = submit(MAX_RUNNING="5")
    assert proc.returncode == 0, proc.stderr
    assert "--array=0-49%5 " in text(tmp_path / "calls").splitlines()[0]
    proc = submit("--tasks", "3,17")        # kept in SWEEP/grid.json: no need to say it again
    assert proc.returncode == 0, proc.stderr
    assert "--array=3,17%5 " in text(tmp_path / "calls").splitlines()[2]


def tiny_sweep(tmp_path):
    """A sweep of one configuration x 2 seeds in tmp_path/sweep, submitted with the stand-ins
    of tmp_path/bin: (sweep, its environment, submit(*args, **more environment) -> the
    finished submit.sh)."""
    (tmp_path / "tiny.grid").write_text("beta --model beta\n")
    sweep = tmp_path / "sweep"
    env = {k: v for k, v in os.environ.items() if k not in ("EVALUATE_FLAGS", "MAX_RUNNING")}
    env.update(PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}", SWEEP=str(sweep),
               PYTHON=sys.executable, GRID=str(tmp_path / "tiny.grid"), SEEDS="2")

    return sweep, env, submitter(tmp_path, env)


def submitter(tmp_path, env):
    """submit(*args, **more): scripts/slurm/submit.sh run from tmp_path with env updated by
    `more`; the finished process."""
    def submit(*args, **more):
        return subprocess.run([os.path.join(SLURM, "submit.sh"), *args], capture_output=True,
                              text=True, timeout=60, cwd=tmp_path, env={**env, **more})
    return submit


def test_flags_are_checked_at_submission_and_a_resubmission_may_replace_the_evaluations(
        tmp_path):
    """A bad EVALUATE_FLAGS (`--test-size 5`, an unclosed quote) was accepted and kept in
    grid.json, and failed only in the evaluation job, once the whole sweep had trained (the
    quote as a traceback); the corrected value was then refused as differing, and so was a new
    MAX_RUNNING. They change no run: a resubmission replaces them, and says so."""
    bin_ = tmp_path / "bin"
    stand_in(bin_, "sbatch", f'echo "$*" >> {tmp_path}/calls\necho 42\n')
    stand_in(bin_, "squeue", "")
    sweep, env, submit = tiny_sweep(tmp_path)
    for flags, line in (("--test-size 5", "evaluate.py refuses it: --test-size must be at "
                         "least 100 and at most 10000, got 5"),
                        ('--scores "mig', "cannot split it into flags (No closing quotation); "
                         "close the quote")):
        proc = submit(EVALUATE_FLAGS=flags)
        assert proc.returncode == 2 and proc.stderr == (
            f"grid.py: error: EVALUATE_FLAGS={flags}: {line}\n"), proc.stderr
    assert not (tmp_path / "calls").exists() and not (sweep / "grid.json").exists()
    proc = submit(EVALUATE_FLAGS="--test-size 2000", MAX_RUNNING="5")
    assert proc.returncode == 0 and "from now on" not in proc.stdout, proc.stderr
    proc = submit("--tasks", "0", EVALUATE_FLAGS="--test-size 100", MAX_RUNNING="3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == (
        "EVALUATE_FLAGS='--test-size 100' from now on (was '--test-size 2000'); "
        f"MAX_RUNNING='3' from now on (was '5'), kept in {sweep}/grid.json; arrays already "
        "submitted keep their throttle")
    kept = json.loads((sweep / "grid.json").read_text())
    assert (kept["EVALUATE_FLAGS"], kept["MAX_RUNNING"], kept["SEEDS"]) == ("--test-size 100",
                                                                           "3", 2)
    proc = submit("--tasks", "1")                       # the new values, without a word
    assert proc.returncode == 0 and "from now on" not in proc.stdout, proc.stderr
    arrays = text(tmp_path / "calls").splitlines()[::2]
    assert [re.search("--array=[^ ]+", a)[0] for a in arrays] == [
        "--array=0-1%5", "--array=0%3", "--array=1%3"]
    args = grid("evaluate-args", env={"SWEEP": str(sweep)}).stdout.split()
    assert args[-2:] == ["--test-size", "100"]


def test_a_resubmission_keeps_the_evaluations_flags_and_leaves_a_running_evaluation_alone(
        tmp_path):
    """EVALUATE_FLAGS was not kept: after --tasks, the new evaluation scored 10,000 test images
    where the sweep had --test-size 2000. And --tasks cancelled every evaluation in SWEEP/jobs,
    also one running with every run finished; now only those still waiting."""
    bin_ = tmp_path / "bin"
    stand_in(bin_, "sbatch", f'n=$(cat {tmp_path}/id 2>/dev/null || echo 41); n=$((n + 1))\n'
                             f'echo $n > {tmp_path}/id; echo "$*" >> {tmp_path}/calls; echo $n\n')
    # squeue -h -j ID -o %T: the state written in states/ID (none: no longer queued)
    stand_in(bin_, "squeue", f'cat {tmp_path}/states/$3 2>/dev/null\n')
    stand_in(bin_, "scancel", f'echo "$*" >> {tmp_path}/cancelled\n')
    (tmp_path / "states").mkdir()
    sweep, env, submitted = tiny_sweep(tmp_path)

    def submit(*args, **more):
        proc = submitted(*args, **more)
        assert proc.returncode == 0, proc.stderr
    submit(EVALUATE_FLAGS="--test-size 2000 --scores mig,mic")     # array 42, evaluation 43
    (tmp_path / "states" / "43").write_text("RUNNING\n")
    submit("--tasks", "1")                                          # 44, 45
    assert not (tmp_path / "cancelled").exists()                    # 43 runs on
    (tmp_path / "states" / "45").write_text("PENDING\n")
    submit("--tasks", "0")                                          # 46, 47
    assert text(tmp_path / "cancelled") == "45\n"                   # it waited: replaced
    assert text(sweep / "jobs") == "array 42\nevaluate 43\narray 44\nevaluate 45\n" \
        "array 46\nevaluate 47\n"
    # The evaluation job runs evaluate.py (a stand-in here) with the sweep's flags.
    stand_in(bin_, "python", f'case "$1" in evaluate.py) echo "$*" > {tmp_path}/evaluate;;\n'
                             '*/grid.py) [ "$2" = check ] || exec ' + sys.executable + ' "$@";;\n'
                             'esac\n')
    proc = subprocess.run(["bash", os.path.join(SLURM, "evaluate.sbatch")], capture_output=True,
                          text=True, timeout=60, env={**env, "TINYVAE": ROOT,
                                                      "PYTHON": str(bin_ / "python")})
    assert proc.returncode == 0, proc.stderr
    runs = " ".join(str(sweep / "runs" / f"beta-s{seed}") for seed in (0, 1))
    assert text(tmp_path / "evaluate") == (f"evaluate.py {runs} --report {sweep}/report "
                                           "--test-size 2000 --scores mig,mic --no-progress\n")
