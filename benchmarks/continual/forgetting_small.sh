#!/usr/bin/env bash
# The committed ten-dataset continual-learning run (benchmarks/results/forgetting_small/, the second, smaller-budget table): every method of
# `baas eval-forgetting`, the shared datasets in their default order, offline MiniLM, one order.
# Resumable: rerun the same command after any stop; finished cells and states are never redone.
# Budget: 200 training questions per task, 1 epoch, up to 100 evaluation questions per task, so that every
# method of both issues fits in hours on 2 cores (a 600-question, 2-epoch run took 139 min for baas's first 9
# tasks alone). Methods are not part of the run's identity: a run started with --methods A,B can be resumed
# with --methods all, which adds the rest to the same folder.
# Usage, from the repository root: benchmarks/continual/forgetting_small.sh DATA_DIR STORE [extra eval-forgetting options]
# (e.g. ../shared/data/mcq ../stores/forgetting; relative paths keep this machine's out of the report).
set -euo pipefail
data=${1:?usage: benchmarks/continual/forgetting_small.sh DATA_DIR STORE}
store=${2:?usage: benchmarks/continual/forgetting_small.sh DATA_DIR STORE}
shift 2
cd "$(dirname "$0")/../.."
exec .venv/bin/baas eval-forgetting --data-dir "$data" --store "$store" \
  --methods all --max-train 200 --epochs 1 --max-eval 100 --precision fp32 \
  --out benchmarks/results/forgetting_small "$@"
