#!/usr/bin/env bash
# The CuPy path, checked in one run of a few minutes on a machine with a CUDA GPU:
#   nvidia-smi; the test suite (the `xp` fixture adds the CuPy variants); the benchmark for
#   M = 1 and M = 40 models; a short `train.py --gpu` run; the NumPy benchmark on two cores;
#   then a short table, printed last.
#
#   bash scripts/gpu_check.sh                      # from the repository root
#   GPU_CHECK_CPU=1 PYTHON=.venv/bin/python bash scripts/gpu_check.sh   # dry run, no GPU
#
# Logs go to $OUT (default: a new temporary folder): eight files. Every stage has its
# own time limit and the script goes on after a failing stage; the table gives each stage's
# exit status (124: timed out).
set -u

PY=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
for log in device pytest bench_m1 bench_m40 train bench_cpu2 summary; do
    : >"$OUT/$log.txt"                 # stages append to their log: start each one empty
done
RUN_DIR=$(mktemp -d)                   # train.py's run directory (its files stay out of $OUT)
if [ "${GPU_CHECK_CPU:-0}" = 1 ]; then
    GPU="" MANY=2 TRAIN_STEPS=10 TEST_ARGS="tests/test_speed_paths.py tests/test_optim.py"
else
    GPU="--gpu" MANY=40 TRAIN_STEPS=200 TEST_ARGS=""
fi
# GPU_CHECK_TESTS="-k ..." narrows the tests; GPU_CHECK_TRAIN_STEPS=0 skips the train.py stage
# (for a machine lent by the minute, where a longer train.py --gpu run follows anyway).
TEST_ARGS=${GPU_CHECK_TESTS-$TEST_ARGS}
TRAIN_STEPS=${GPU_CHECK_TRAIN_STEPS-$TRAIN_STEPS}
declare -a ROWS=()

# stage NAME LOG LIMIT_S COMMAND...: run it with a time limit, log to $OUT/LOG, keep the row.
stage() {
    local name=$1 log=$OUT/$2 limit=$3; shift 3
    echo "=== $name: $*" | tee -a "$log"
    local start=$SECONDS
    timeout -k 10 "$limit" "$@" >>"$log" 2>&1
    local rc=$?
    tail -n 25 "$log"
    ROWS+=("$(printf '%-20s %4s %6ss' "$name" "$rc" "$((SECONDS - start))")")
}

# The stages' limits add up to 8.7 minutes; a healthy run takes about 4.
stage "nvidia-smi"       device.txt      20 nvidia-smi
# pytest turns warnings into errors: a warning that CuPy gives on import shows here first.
stage "import cupy"      device.txt      40 "$PY" -W error -c \
    "import cupy; print('cupy', cupy.__version__, 'devices', cupy.cuda.runtime.getDeviceCount())"
stage "pytest"           pytest.txt     150 "$PY" -m pytest -q -rs -p no:cacheprovider $TEST_ARGS
stage "bench M=1"        bench_m1.txt    90 "$PY" -m tinyvae.experiment.tools.bench $GPU --models 1
# --no-memory: a train.py run of 40 models would spend its time writing a 7 GB checkpoint
stage "bench M=$MANY"    bench_m40.txt  100 "$PY" -m tinyvae.experiment.tools.bench $GPU --models "$MANY" --steps 10 \
    --no-memory
if [ "$TRAIN_STEPS" -gt 0 ]; then
    stage "train.py $TRAIN_STEPS steps" train.txt 50 "$PY" train.py $GPU --steps "$TRAIN_STEPS" \
        --log-every 50 --no-progress --out "$RUN_DIR/run"
fi
cp "$RUN_DIR/run/log.csv" "$OUT/train_log.csv" 2>/dev/null
# The NumPy path on two cores of this (quiet) machine: the CPU targets are for 2 cores.
stage "CPU bench, 2 cores" bench_cpu2.txt 70 env OPENBLAS_NUM_THREADS=2 taskset -c 0,1 \
    "$PY" -m tinyvae.experiment.tools.bench --steps 10 --no-memory

# The table, last: each stage's status, then the numbers that matter from the logs.
{
    echo
    echo "stage                  rc   time"
    printf '%s\n' "${ROWS[@]}"
    echo
    grep -h -E "^(tinyvae.experiment.tools.bench|ms per step|β-VAE|Grouped-VAE|Adam|data:|evaluation:|peak)" \
        "$OUT/bench_m1.txt" "$OUT/bench_m40.txt" "$OUT/bench_cpu2.txt" 2>/dev/null
    echo "pytest: $(grep -E '(passed|failed|error)' "$OUT/pytest.txt" | tail -n 1)"
    echo "pytest CuPy skips: $(grep -c -i 'SKIPPED.*cupy' "$OUT/pytest.txt")"
    echo "train.py: $(tail -n 1 "$OUT/train.txt")"
    echo "train.py last log row: $(tail -n 1 "$OUT/train_log.csv" 2>/dev/null | cut -c1-100)"
} | tee "$OUT/summary.txt"
rm -rf "$RUN_DIR"
