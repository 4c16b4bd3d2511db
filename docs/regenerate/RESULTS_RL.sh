#!/usr/bin/env bash
# Regenerates the tables and the plot of docs/RESULTS_RL.md: the commands named in it, in its
# order. Run from the repository root; expects the real traces in ../shared/traces/.
# With TRAIN=1 it first trains the runs the tables evaluate (about 90 minutes on 2 cores:
# 2M PPO steps take about 6 minutes, the 6M-step run 17, SAC's 300k steps 20); without it,
# it evaluates the runs already in runs/. Evaluation and analyses: about 30 minutes on 2 cores
# (the test table 161 s; the reference-simulator runs and the foresight grid most of the rest).
# The overflow-to-functions table came from a prototype that was not kept and is not rerun.
set -euo pipefail
# Seeds not stated in RESULTS_RL.md (w_slo 20 and 5, SAC) are taken as 0.
W=../shared/traces/wits_logs.txt
TRAIN_ARGS=(--trace $W@0:9000 --trace $W@9000:18000 --trace $W@18000:27000
            --trace-scales 0.8 1.0 1.25 --eval-trace $W@27000:30600)

if [[ "${TRAIN:-0}" == 1 ]]; then
    python train.py --algo ppo --out runs/ppo_smooth_w10 "${TRAIN_ARGS[@]}" \
        --set reward.w_slo=10 --timesteps 2000000 --seed 0
    python train.py --algo ppo --out runs/ppo_smooth_w15 "${TRAIN_ARGS[@]}" \
        --set reward.w_slo=15 --timesteps 2000000 --seed 1
    python train.py --algo ppo --out runs/ppo_smooth "${TRAIN_ARGS[@]}" \
        --set reward.w_slo=20 --timesteps 2000000 --seed 0
    python train.py --algo ppo --out runs/ppo_smooth_w5 "${TRAIN_ARGS[@]}" \
        --set reward.w_slo=5 --timesteps 2000000 --seed 0
    python train.py --algo ppo --out runs/ppo_smooth_w10_6m "${TRAIN_ARGS[@]}" \
        --set reward.w_slo=10 --timesteps 6000000 --seed 3
    python train.py --algo ppo --out runs/ppo_fs16_w10 "${TRAIN_ARGS[@]}" \
        --set reward.w_slo=10 --timesteps 2000000 --seed 0 --hyperparams frame_stack:16
    python train.py --algo ppo --out runs/ppo_w10_v2 "${TRAIN_ARGS[@]}" \
        --set reward.w_slo=10 --timesteps 2000000 --seed 0
    python train.py --algo sac --out runs/sac_smooth "${TRAIN_ARGS[@]}" \
        --set reward.w_slo=10 --timesteps 300000 --seed 0
fi

# "Test results": every model in one run
python evaluate.py --trace $W --start-s 30600 --episode-steps 1440 --seeds 4 --first-seed 1000 \
    --out results/rl_test_wits_all --policies ppo:runs/ppo_smooth_w10/best_model.zip,serflow,ppo:runs/ppo_smooth_w15/best_model.zip,ppo:runs/ppo_smooth/best_model.zip,ppo:runs/ppo_smooth_w5/best_model.zip,ppo:runs/ppo_smooth_w5/final_model.zip,ppo:runs/ppo_smooth_w10_6m/best_model.zip,ppo:runs/ppo_fs16_w10/best_model.zip,ppo:runs/ppo_w10_v2/best_model.zip,ppo:runs/ppo_w10_v2/final_model.zip,load-map,sac:runs/sac_smooth/best_model.zip,libra,faas-only
# other held-out traces, whole trace
python evaluate.py --trace ../shared/traces/sin_logs.txt --episode-steps 1000 --seeds 4 \
    --first-seed 1000 --policies ppo:runs/ppo_smooth_w10/best_model.zip,serflow,load-map \
    --out results/rl_test_sin_logs
python evaluate.py --trace ../shared/traces/square_load.txt --episode-steps 111 --seeds 4 \
    --first-seed 1000 --policies ppo:runs/ppo_smooth_w10/best_model.zip,serflow,load-map \
    --out results/rl_test_square_load
# the reference simulator, same test window
python evaluate.py --simulator reference --trace $W --start-s 30600 --episode-steps 1440 \
    --seeds 2 --first-seed 1000 --policies ppo:runs/ppo_smooth_w10/best_model.zip,serflow,load-map \
    --out results/rl_test_wits_reference
# learning curves
python -m agents.rl_plots runs/ppo_wits runs/ppo_smooth runs/ppo_smooth_w10 runs/sac_smooth \
    --labels "PPO w20 (no smoothing)" "PPO w20" "PPO w10" "SAC w10" \
    --out docs/img/rl_learning_curves.png
# "Why 10 % is not reached" (share mode, env v0). `analysis` has no --set: on v2 these run in
# cap mode unless --scenario names a copy of serflow_env/scenarios/default.yaml with
# "routing: {mode: share}" added (share mode reproduces v1, not v0).
python -m serflow_eval.analysis bound --trace $W --start-s 30600 --duration-s 14400
python -m serflow_eval.analysis foresight --trace $W@30600:45000 --seed 1000 --fit-trace $W@0:27000 \
    --margin 1.1 1.2 --utilisation 0.8 0.85 0.9 1.0 --route 0.7 0.8 0.9 --route-ahead
python -m serflow_eval.analysis foresight --trace $W@27000:30600 --seed 100 --fit-trace $W@0:27000 \
    --margin 1.1 1.2 --utilisation 0.8 0.85 0.9 1.0 --route 0.7 0.8 0.9 --route-ahead
python -m serflow_eval.analysis foresight --trace $W@30600:45000 --seed 1000 --fit-trace $W@0:27000 \
    --margin 1.1 1.2 --utilisation 0.8 0.85 0.9 --route 0.7 0.9 --route-ahead \
    --simulator reference --episodes 2
python -m serflow_eval.analysis map-grid --trace $W@27000:30600
# "Foresight in cap mode" (v2's default routing; --route-ahead makes no difference in cap mode)
python -m serflow_eval.analysis foresight --trace $W@30600:45000 --seed 1000 --fit-trace $W@0:27000 \
    --margin 1.1 1.2 --utilisation 0.8 0.85 0.9 1.0 --route 0.7 0.8 0.9
for M in cap share; do
    python evaluate.py --trace $W --start-s 30600 --episode-steps 1440 --seeds 4 --first-seed 1000 \
        --policies serflow,libra,faas-only --set routing.mode=$M --out results/rl_test_wits_heur_$M
done
# Issue 14 (env v2, cap mode): PPO end to end against CartPole, the action modes after 200k
# steps and constrained PPO (benchmarks and scoring about 10 minutes on 2 cores; TRAIN=1
# trains the four runs first, 3-5 minutes each)
python benchmarks/bench_sb3.py --num-envs 16 64 256 --rollouts 10
python benchmarks/bench_sb3.py --num-envs 64 --rollouts 3 --profile
if [[ "${TRAIN:-0}" == 1 ]]; then
    for MAP in raw delta load; do
        python train.py --algo ppo --out runs/cmp_$MAP --action-map $MAP --timesteps 200000 \
            --seed 0
    done
    python train.py --algo ppo --out runs/cmp_load_slo --action-map load --slo-target 0.0005 \
        --timesteps 200000 --seed 0
fi
python -m serflow_eval.scoring --trace diurnal_2h.txt --episodes 4 --seed 100 \
    --set reward.reference_rate=100 --policies serflow load-map faas-only \
    ppo:runs/cmp_raw/final_model.zip ppo:runs/cmp_delta/final_model.zip \
    ppo:runs/cmp_load/final_model.zip ppo:runs/cmp_load_slo/final_model.zip \
    ppo:runs/cmp_load/best_model.zip
