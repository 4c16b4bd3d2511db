#!/usr/bin/env bash
# Regenerates every table and plot of docs/RESULTS_BASELINES.md: the commands of its section
# "How the numbers were made". Run from the repository root; expects the real WITS trace at
# ../shared/traces/wits_logs.txt. Expected run time on 2 cores: about 37 minutes (cap mode 12, quick start
# 32 s, WITS 89 s, each generated trace 38-48 s, the sweep 143 s, WITS at 1 s control 273 s,
# the parameter grid and the 1-s runs on generated traces the rest).
# Each output folder gets summary.csv (the tables) and the plots; the plots in docs/img are
# copies of results/wits/*.png and results/sweep_wits/sweep_savings.png.
set -euo pipefail
W=../shared/traces/wits_logs.txt

# "Cap mode (serflow/Serflow-v2)": every trace in cap mode (the default) and, on the same
# seeds, in share mode and the sweep (about 12 minutes together)
for M in cap share; do
    python evaluate.py --scenario branchynet-resnet --trace $W --random-start --seeds 10 \
        --set routing.mode=$M --out results/wits_$M
    python evaluate.py --set routing.mode=$M --out results/quickstart_$M
    for T in diurnal_2h sine_1h square_1h flash_crowd_1h bursty_mmpp_1h; do
        python evaluate.py --scenario branchynet-resnet --trace traces/$T.txt --seeds 5 \
            --set routing.mode=$M --out results/gen_${M}_$T
    done
    python evaluate.py --scenario branchynet-resnet --seeds 5 --set routing.mode=$M \
        --out results/mmpp_$M
    python evaluate.py --sweep --scenario branchynet-resnet --trace $W --random-start --seeds 3 \
        --set routing.mode=$M --out results/sweep_wits_$M
done
cp results/sweep_wits_cap/sweep_savings.png docs/img/baselines_sweep_wits_savings_cap.png

# the share-mode sections (measured on env v0; these commands now run in v2's default cap mode,
# add --set routing.mode=share for share mode, which reproduces v1, not v0)
python evaluate.py --out results/quickstart
python evaluate.py --scenario branchynet-resnet --trace $W --random-start --seeds 10 --out results/wits
for T in diurnal_2h sine_1h square_1h flash_crowd_1h bursty_mmpp_1h; do
    python evaluate.py --scenario branchynet-resnet --trace traces/$T.txt --seeds 5 --out results/gen_$T
done
python evaluate.py --scenario branchynet-resnet --seeds 5 --out results/mmpp
python evaluate.py --sweep --scenario branchynet-resnet --trace $W --random-start --seeds 3 \
    --out results/sweep_wits
python evaluate.py --scenario branchynet-resnet --trace $W --random-start --seeds 10 \
    --out results/wits_params --policies serflow,serflow:utilisation=0.6,serflow:utilisation=0.5,serflow:burst_z=2,serflow:burst_z=3,libra,libra:vm_fraction=0.6,faas-only
python evaluate.py --scenario branchynet-resnet --trace $W --random-start --seeds 5 \
    --policies serflow,libra,faas-only --set control_interval_s=1 --episode-steps 3600 \
    --out results/wits_1s
for T in square_1h flash_crowd_1h bursty_mmpp_1h; do
    python evaluate.py --scenario branchynet-resnet --trace traces/$T.txt --seeds 3 \
        --policies serflow,libra,faas-only --set control_interval_s=1 --episode-steps 3600 \
        --out results/gen1s_$T
done
# the 10-s rows of the routing-granularity table: the same seeds at the default 10-s control
python evaluate.py --scenario branchynet-resnet --trace $W --random-start --seeds 5 \
    --policies serflow,libra,faas-only --out results/wits_10s
for T in square_1h flash_crowd_1h bursty_mmpp_1h; do
    python evaluate.py --scenario branchynet-resnet --trace traces/$T.txt --seeds 3 \
        --policies serflow,libra,faas-only --out results/gen10s_$T
done
