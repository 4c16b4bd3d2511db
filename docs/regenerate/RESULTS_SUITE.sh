#!/usr/bin/env bash
# Regenerates docs/RESULTS_SUITE.md's figures. Step 1 picks the oracle points on the validation
# split: of the 16 candidates oracle:u={0.8,0.85,0.9,0.95}:faas_weight={1,3,10,30}, those that
# are some validation task's oracle point (cheapest at no more violations than serflow; 2
# seeds; 26 min on a 2-core machine shared with three other jobs), and always the safest
# candidate, oracle:u=0.8:faas_weight=30. Step 2 runs the test split with the five heuristics,
# those points and $AGENTS (comma-separated agent specs; the measured tables used
# AGENTS=load-map,ppo-suite:runs/v1-ppo), 3 seeds. Results in results/oracle-grid-validation/
# and results/bench-suite/.
set -euo pipefail
AGENTS=${AGENTS:-}
GRID=$(python -c "print(','.join(f'oracle:u={u}:faas_weight={w}' for w in (1, 3, 10, 30) for u in (0.8, 0.85, 0.9, 0.95)))")
python evaluate.py --suite v1 --split validation --policies "serflow,$GRID" --seeds 2 \
    --out results/oracle-grid-validation --no-progress
python benchmarks/bench_suite.py --seeds 3 --oracle-grid-from results/oracle-grid-validation \
    ${AGENTS:+--agents "$AGENTS"}
