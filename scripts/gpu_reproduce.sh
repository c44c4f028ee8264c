#!/usr/bin/env bash
# The paper's protocol (§5) on one GPU, all 40 models at once: Grouped-VAE (groups 3,3, β=1)
# x SEEDS seeds in one process, β-VAE with β = 1, 5, 10 x SEEDS seeds in a second process
# beside it; then evaluate.py scores every model and writes Table 1 and Figures 1-2.
#
#   STEPS=10000 SEEDS=10 LIMIT=0 bash scripts/gpu_reproduce.sh results/gpu
#
# LIMIT (seconds, 0 = none) is a wall-clock guard for machines lent by the minute: when it
# runs out, training gets Ctrl-C, saves its checkpoint and stops, and the runs are scored at
# the step they reached (their metrics.json says which). DEST receives the small files only
# (configs, logs, metrics, figures, the report), never checkpoints or snapshots.
#
# CURVE_STEPS=N (0 = none) also trains, beside them, one learning-curve run per configuration
# (grouped x 2 seeds, β = 1, 5, 10 x 1 seed) for N steps with a snapshot every CURVE_EVERY
# steps (default N/10), and writes their curves (evaluate.py --curves) to DEST/curves.
set -u
DEST=${1:?usage: gpu_reproduce.sh DEST}
STEPS=${STEPS:-10000}
SEEDS=${SEEDS:-10}
LIMIT=${LIMIT:-0}
RUNS=${RUNS:-runs/gpu}
PY=${PYTHON:-python3}
GPU=${GPU---gpu}            # GPU= (empty) runs the same recipe on the CPU, for a dry run
EVAL_ARGS=${EVAL_ARGS:-}    # e.g. "--test-size 500" for a dry run
CURVE_STEPS=${CURVE_STEPS:-0}
CURVE_EVERY=${CURVE_EVERY:-$(( CURVE_STEPS / 10 > 0 ? CURVE_STEPS / 10 : 1 ))}
guard() { if [ "$LIMIT" -gt 0 ]; then timeout -s INT "$LIMIT" "$@"; else "$@"; fi; }

mkdir -p "$RUNS"
common=($GPU --seeds "$SEEDS" --steps "$STEPS" --checkpoint-every "$STEPS" --log-every 100
        --no-progress --overwrite)
start=$(date +%s)
guard $PY train.py --model grouped "${common[@]}" --out "$RUNS/grouped" > "$RUNS.grouped.log" 2>&1 &
guard $PY train.py --model beta --beta 1,5,10 "${common[@]}" --out "$RUNS/beta" > "$RUNS.beta.log" 2>&1 &
if [ "$CURVE_STEPS" -gt 0 ]; then
    curve=($GPU --steps "$CURVE_STEPS" --checkpoint-every "$CURVE_STEPS" --log-every 100
           --snapshot-every "$CURVE_EVERY" --no-progress --overwrite)
    guard $PY train.py --model grouped --seeds 2 "${curve[@]}" --out "$RUNS/curves/grouped" \
        > "$RUNS.curves_grouped.log" 2>&1 &
    guard $PY train.py --model beta --beta 1,5,10 "${curve[@]}" --out "$RUNS/curves/beta" \
        > "$RUNS.curves_beta.log" 2>&1 &
fi
wait
echo "training: $(( $(date +%s) - start )) s"; tail -n 2 "$RUNS.grouped.log" "$RUNS.beta.log"
$PY evaluate.py $GPU $EVAL_ARGS --allow-unfinished --no-progress "$RUNS/grouped" "$RUNS/beta" \
    --report "$DEST/report"
if [ "$CURVE_STEPS" -gt 0 ]; then
    $PY evaluate.py --curves $GPU $EVAL_ARGS --no-progress "$RUNS/curves/grouped" \
        "$RUNS/curves/beta" --report "$DEST/curves"
    for run in grouped beta; do
        mkdir -p "$DEST/curves/runs/$run"
        cp "$RUNS/curves/$run"/{config.json,log.csv,curve.json} "$DEST/curves/runs/$run/" 2>/dev/null
    done
fi
echo "training + evaluation: $(( $(date +%s) - start )) s"
for run in grouped beta; do
    mkdir -p "$DEST/runs/$run"
    cp "$RUNS/$run"/{config.json,log.csv,metrics.json} "$DEST/runs/$run/" 2>/dev/null
    cp -r "$RUNS/$run/figures" "$DEST/runs/$run/" 2>/dev/null
done
