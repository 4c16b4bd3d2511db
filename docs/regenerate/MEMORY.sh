#!/usr/bin/env bash
# Regenerates the "Memory and context" section of docs/RESULTS_RL.md: trains the five variants
# (same traffic, budget and seed each) and scores their best models beside serflow and load-map
# on the validation traffic. Run from the repository root; expects ../shared/traces/.
# RUNS (default /work/runs-mem) holds the runs, SEEDS (default "0 1") the seeds, STEPS the
# budget (default 300000 env steps); TRAIN=0 only evaluates, EVAL=0 only trains.
set -euo pipefail
RUNS=${RUNS:-/work/runs-mem}
SEEDS=${SEEDS:-"0 1"}
STEPS=${STEPS:-300000}
W=../shared/traces/wits_logs.txt
export OMP_NUM_THREADS=1
COMMON=(--trace $W@0:27000 --trace diurnal_2h.txt --trace bursty_mmpp_1h.txt
        --eval-trace $W@27000:30600 --timesteps "$STEPS" --eval-freq 100000
        --torch-threads 1 --no-progress-bar --no-tensorboard)

variant() {  # NAME SEED ARGS...: one run, skipped if it is there already; wall time logged
    local name=$1 seed=$2; shift 2
    local out=$RUNS/${name}_s$seed
    [[ -f $out/final_model.zip ]] && return 0
    local t0=$SECONDS
    python train.py --out "$out" --seed "$seed" "${COMMON[@]}" "$@" > "$out.log" 2>&1
    echo "$name seed $seed: $((SECONDS - t0)) s" | tee -a "$RUNS/wall.txt"
}

if [[ "${TRAIN:-1}" == 1 ]]; then
    for seed in $SEEDS; do
        variant ppo_fs4 "$seed" --algo ppo                                  # the default
        variant ppo_fs1 "$seed" --algo ppo --hyperparams frame_stack:1
        variant ppo_forecast "$seed" --algo ppo --hyperparams context:forecast
        variant ppo_time "$seed" --algo ppo --hyperparams context:time
        variant rppo "$seed" --algo recurrentppo
    done
fi

[[ "${EVAL:-1}" == 1 ]] || exit 0
# validation traffic only: the suite's default-preset validation tasks (WITS 27000-30600 s
# among them), 2 seeds each
POLICIES=serflow,load-map
for seed in $SEEDS; do
    for name in ppo_fs4 ppo_fs1 ppo_forecast ppo_time; do
        [[ -f $RUNS/${name}_s$seed/best_model.zip ]] && POLICIES+=,ppo:$RUNS/${name}_s$seed/best_model.zip
    done
    [[ -f $RUNS/rppo_s$seed/best_model.zip ]] && POLICIES+=,recurrentppo:$RUNS/rppo_s$seed/best_model.zip
done
python evaluate.py --suite v1 --split validation \
    --tasks diurnal-b,mmpp-b,wits-27000,drift-mmpp,sine-gen --seeds 2 \
    --policies "$POLICIES" --out "$RUNS/validation" --no-progress
