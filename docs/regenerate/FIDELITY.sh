#!/usr/bin/env bash
# Regenerates the tables of docs/FIDELITY.md: the commands named with each of its tables, in
# its order. Run from the repository root; the foresight rows expect the real WITS trace at
# ../shared/traces/wits_logs.txt. Expected run time on 2 cores: about 10 minutes (the named
# cases about 90 s, the speed benchmark at ten times the load about 2 minutes).
set -euo pipefail

# "Results on the named cases": the whole section, Markdown
python -m serflow_eval.fidelity --cases
# "Queueing checks"
python -m serflow_eval.fidelity --queueing
# "Policies in closed loop"
for P in serflow libra faas-only vm-threshold vm-peak; do
    python -m serflow_eval.fidelity --scenario branchynet-resnet --policy $P --seeds 3 --steps 180
done
# item 7: a downstream stage behind a draining upstream one
python -m serflow_eval.fidelity --scenario default --policy fixed:5/3/2,0 --trace '{"generator":
    "square", "duration_s": 7200, "low_rate": 170.0, "high_rate": 300.0, "period_s": 60.0,
    "duty": 0.0666667}' --steps 120 --set routing.mode=share exit_drift.volatility=0 stages.0.initial_vms=5 \
    stages.1.initial_vms=3 stages.2.initial_vms=2
# item 7: VM pools sized at 90 % utilisation by the foresight rule, on both simulators
for S in fast reference; do
    python -m serflow_eval.analysis foresight --trace ../shared/traces/wits_logs.txt@30600:45000 \
        --seed 1000 --episodes 1 --utilisation 0.9 --route 0.9 --simulator $S
done
# "Speed"
python benchmarks/bench_reference.py --repeat 5
python benchmarks/bench_reference.py --scale 10 --repeat 2 --customers 50000
