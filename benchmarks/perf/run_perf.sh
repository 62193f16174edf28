#!/usr/bin/env bash
# The performance results in benchmarks/results/ (issue: training and inference vs PEFT), one after another
# on an otherwise idle machine. Usage: benchmarks/perf/run_perf.sh [DATA_DIR]  (default: ../shared/data/mcq)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA="${1:-../shared/data/mcq}"
PY=.venv/bin/python
$PY benchmarks/perf/train_throughput.py --data-dir "$DATA" --json | tail -1 > benchmarks/results/train_throughput.json
$PY benchmarks/perf/eval_throughput.py --data-dir "$DATA" --json | tail -1 > benchmarks/results/eval_throughput.json
$PY benchmarks/perf/train_effects.py --data-dir "$DATA" --rounds 3 --steps 10
$PY benchmarks/perf/token_cache.py --data-dir "$DATA"
$PY benchmarks/perf/scaling.py
