#!/usr/bin/env bash
# Regenerates docs/RESULTS_SUITE.md's figures: suite v1's test split, five heuristics and six
# oracle points, 3 seeds, serially (about 8.5 min on 2 cores). Results in results/bench-suite/.
set -euo pipefail
python benchmarks/bench_suite.py --seeds 3
