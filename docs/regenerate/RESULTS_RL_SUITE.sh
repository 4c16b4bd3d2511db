#!/usr/bin/env bash
# Regenerates docs/RESULTS_RL.md's section "Suite v1: one agent per preset": PPO (one agent per
# preset of suite v1, trained on the preset's train tasks, checkpoints selected on its
# validation tasks) against serflow and load-map on the test and validation splits, 3 seeds.
#   RUNS=runs/v1-ppo bash docs/regenerate/RESULTS_RL_SUITE.sh           # evaluations, ~10 min
#   TRAIN=1 RUNS=runs/v1-ppo bash docs/regenerate/RESULTS_RL_SUITE.sh   # train first, ~60 min
# (2 shared cores; the presets train one after another, 1M steps each.) TRAIN=1 LAG=1 also
# trains the constrained variant of the default preset (--slo-target heuristic) into
# $RUNS-lag/default and evaluates it on the default preset's test tasks.
# MAP=serflow trains and scores the residual agents on the heuristic (action map `serflow`,
# whose ablation is `serflow` itself) instead of the `load` map (docs/RESULTS_RL.md section
# "Suite v1: residual agents on the heuristic"):
#   TRAIN=1 MAP=serflow RUNS=runs/v1-ppo-serflow bash docs/regenerate/RESULTS_RL_SUITE.sh
set -euo pipefail
RUNS=${RUNS:-runs/v1-ppo}
MAP=${MAP:-load}
case "$MAP" in
  load) POLICIES="serflow,load-map"; ABLATION=load-map ;;
  serflow) POLICIES="serflow"; ABLATION=serflow ;;
  *) echo "MAP=$MAP; allowed load, serflow" >&2; exit 2 ;;
esac
export OMP_NUM_THREADS=1
TRAIN_ARGS=(--algo ppo --timesteps 1000000 --eval-freq 150000 --eval-episodes 4
            --checkpoint-freq 250000 --seed 0 --torch-threads 1 --no-progress-bar
            --action-map "$MAP")
if [ "${TRAIN:-0}" = 1 ]; then
  for preset in default branchynet-resnet transformer-8; do
    python train.py --suite "v1:$preset" --out "$RUNS/$preset" "${TRAIN_ARGS[@]}"
  done
  if [ "${LAG:-0}" = 1 ]; then
    python train.py --suite v1:default --slo-target heuristic --out "$RUNS-lag/default" \
      "${TRAIN_ARGS[@]}"
  fi
fi
SPEC="ppo-suite:$RUNS"
for split in test validation; do
  python evaluate.py --suite v1 --split "$split" --policies "$POLICIES,$SPEC" --seeds 3 \
    --out "results/suite_rl_$split" --no-progress
  python -m serflow_eval.suite_goals "results/suite_rl_$split/per_seed.csv" --policy "$SPEC" \
    --ablation "$ABLATION"
done
if [ -d "$RUNS-lag/default" ]; then
  DEFAULT_TEST=flash-crowd,azure-weekday,square-load,wits-30600,drift-schedule
  python evaluate.py --suite v1 --split test --tasks "$DEFAULT_TEST" --seeds 3 \
    --policies "$POLICIES,$SPEC,ppo-suite:$RUNS-lag" --out results/suite_rl_lag_test \
    --no-progress
  python -m serflow_eval.suite_goals results/suite_rl_lag_test/per_seed.csv \
    --policy "ppo-suite:$RUNS-lag" --ablation "$ABLATION"
fi
