#!/usr/bin/env bash
# The three-task acceptance run of `baas eval-forgetting` (benchmarks/results/forgetting_three/): arc_easy,
# commonsense_qa and cosmos_qa in turn, the do-nothing row (zero_shot), baas, naive and multitask, 200 training
# questions, 2 epochs, 200 evaluation questions per task, seed 0, the default scoring. Its plots are the ones
# docs/continual.md shows. Resumable: rerun the same command after any stop.
# Usage, from the repository root: benchmarks/continual/three_tasks.sh DATA_DIR STORE [extra options]
# (e.g. ../shared/data/mcq ../stores/three; relative paths keep this machine's out of the report).
set -euo pipefail
data=${1:?usage: benchmarks/continual/three_tasks.sh DATA_DIR STORE}
store=${2:?usage: benchmarks/continual/three_tasks.sh DATA_DIR STORE}
shift 2
cd "$(dirname "$0")/../.."
exec .venv/bin/baas eval-forgetting --data-dir "$data" --store "$store" --yes \
  --tasks arc_easy,commonsense_qa,cosmos_qa --methods zero_shot,baas,naive,multitask \
  --max-train 200 --epochs 2 --max-eval 200 --seed 0 --precision fp32 --out benchmarks/results/forgetting_three "$@"
