#!/usr/bin/env bash
# The CuPy path, checked in one prepared run of about 5 minutes on a machine with a CUDA GPU
# and only the NVIDIA driver (docs/speed.md, "The GPU check"):
#   nvidia-smi; a clean venv with `pip install -e ".[gpu]"` (CuPy and the CUDA libraries it
#   loads); get_xp's proof that the device works; the tests that run on CuPy (pytest -m gpu,
#   with the stand-in's tests, -m standin, beside them); the benchmark at M = 1 and M = 40;
#   a short `train.py --gpu` and `evaluate.py --gpu`; then one summary file, summary.txt.
#
#   bash scripts/gpu_check.sh                     # from the repository root
#   GPU_CHECK_PIP="--no-index --find-links WHEELS" bash scripts/gpu_check.sh   # offline
#   GPU_CHECK_STANDIN=1 PYTHON=.venv/bin/python bash scripts/gpu_check.sh    # rehearsal, no GPU
#   GPU_CHECK_STAGES="install probe" ...           # only these stages (the names of their logs)
#
# PYTHON (default python3, 3.10 or later) makes the venv. The rehearsal runs every stage on
# the CuPy stand-in of the tests (tests/cupy_standin/) at small sizes, offline: its venv sees
# PYTHON's packages (a .pth file), and pip installs the project into it without an index,
# dependencies or build isolation (PYTHON needs setuptools 77 or later). It checks the
# script, not the device.
# Logs go to $OUT (default: a new temporary folder), one per stage, and summary.txt. Each
# stage has its own time limit; the limits add up to 9 minutes, so a run fits one 10-minute
# command even when every stage times out. The script goes on after a failing stage; the
# summary gives each stage's exit status (124: timed out) and time.
set -u

OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
WORK=$(mktemp -d)                      # the venv and train.py's run (they stay out of $OUT)
declare -a ROWS=()
export PYTHON=${PYTHON:-python3} WORK PY=$WORK/venv/bin/python
if [ "${GPU_CHECK_STANDIN:-0}" = 1 ]; then
    export PYTHONPATH="$PWD/tests/cupy_standin${PYTHONPATH:+:$PYTHONPATH}"
    export GPU_CHECK_PIP="--no-index --no-deps --no-build-isolation ${GPU_CHECK_PIP:-}"
    VENV_ARGS="--without-pip" MANY=2 BENCH="--steps 2 --warmup 1" TRAIN_STEPS=10
    MARKS="standin" EVAL_ARGS="--test-size 500 --score-points 100"
else
    VENV_ARGS="" MANY=40 BENCH="--steps 10" TRAIN_STEPS=200 EVAL_ARGS="" MARKS="gpu or standin"
fi
export VENV_ARGS

# stage NAME LOG LIMIT_S COMMAND...: run it with a time limit, log to $OUT/LOG, keep the row.
# COMMAND is a program: `timeout` cannot run a shell function (given `install`, it would run
# coreutils' install), so a function runs as `bash -c NAME`, exported with `export -f`.
# GPU_CHECK_STAGES, where set, names the stages (their logs, without .txt) that run.
stage() {
    local name=$1 log=$OUT/$2 limit=$3 key=${2%.txt}; shift 3
    case " ${GPU_CHECK_STAGES:-$key} " in *" $key "*) ;; *) return ;; esac
    echo "=== $name: $*" | tee -a "$log"
    local start=$SECONDS
    timeout -k 10 "$limit" "$@" >>"$log" 2>&1
    local rc=$?
    tail -n 15 "$log"
    ROWS+=("$(printf '%-26s %4s %5ss %5ss' "$name" "$rc" "$((SECONDS - start))" "$limit")")
}

# The venv, with the project and the tests' needs; it says where its tinyvae comes from.
install() {
    "$PYTHON" -m venv $VENV_ARGS "$WORK/venv" || return
    if [ "${GPU_CHECK_STANDIN:-0}" = 1 ]; then      # offline: the venv sees PYTHON's packages
        "$PYTHON" -c "import site; print('\n'.join(site.getsitepackages()))" \
            >"$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/rehearsal.pth"
    fi
    "$PY" -m pip install -q ${GPU_CHECK_PIP:-} -e ".[gpu]" &&
        "$PY" -m pip install -q ${GPU_CHECK_PIP:-} -r requirements.txt &&
        "$PY" -m pip list 2>/dev/null | grep -i -E "^(cupy|cuda|nvidia|numpy) " &&
        (cd / && "$PY" -c "import tinyvae; print('tinyvae from', tinyvae.__path__[0])")
}
export -f install

for log in device install probe pytest bench_m1 bench_m40 train evaluate; do
    : >"$OUT/$log.txt"                 # stages append to their log: start each one empty
done
stage "nvidia-smi" device.txt 15 nvidia-smi
stage "venv with .[gpu]" install.txt 150 bash -c install
# get_xp: CuPy imports (warnings are errors, as in pytest), a device, cuBLAS, NVRTC.
stage "get_xp proves the device" probe.txt 40 "$PY" -W error -c \
    "from tinyvae.backend import get_xp, device_name; xp = get_xp(gpu=True); \
print('cupy', xp.__version__, device_name(xp))"
stage "pytest -m '$MARKS'" pytest.txt 120 "$PY" -m pytest -q -rs -p no:cacheprovider \
    -m "$MARKS"
stage "bench M=1" bench_m1.txt 50 "$PY" -m tinyvae.experiment.tools.bench --gpu --models 1 $BENCH \
    --no-memory
stage "bench M=$MANY" bench_m40.txt 80 "$PY" -m tinyvae.experiment.tools.bench --gpu --models "$MANY" \
    $BENCH --no-memory
stage "train.py --gpu $TRAIN_STEPS steps" train.txt 40 "$PY" train.py --gpu --steps "$TRAIN_STEPS" \
    --log-every 50 --checkpoint-every 100 --no-progress --out "$WORK/run"
stage "evaluate.py --gpu" evaluate.txt 45 "$PY" evaluate.py "$WORK/run" --gpu --no-progress \
    --report "$WORK/report" $EVAL_ARGS
cp "$WORK/run/log.csv" "$OUT/train_log.csv" 2>/dev/null

# The summary, last: each stage's status, then the numbers that matter from the logs.
{
    echo "scripts/gpu_check.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null)"
    echo
    echo "stage                        rc   time  limit"
    printf '%s\n' "${ROWS[@]}"
    echo
    grep -h -E "^(cupy |tinyvae.bench|ms per step|β-VAE|Grouped-VAE|data:|evaluation:)" \
        "$OUT/probe.txt" "$OUT/bench_m1.txt" "$OUT/bench_m40.txt" 2>/dev/null
    echo "pytest: $(grep -E '(passed|failed|error)' "$OUT/pytest.txt" | tail -n 1)"
    echo "pytest skips: $(grep -c '^SKIPPED' "$OUT/pytest.txt")"
    echo "train.py: $(tail -n 1 "$OUT/train.txt")"
    echo "train.py last log row: $(tail -n 1 "$OUT/train_log.csv" 2>/dev/null | cut -c1-100)"
    echo "evaluate.py: $(grep -E 'model\(s\), MIG' "$OUT/evaluate.txt" | tail -n 1)"
} | tee "$OUT/summary.txt"
rm -rf "$WORK"
