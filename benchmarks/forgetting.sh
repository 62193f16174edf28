#!/usr/bin/env bash
# The committed ten-dataset continual-learning run (benchmarks/results/forgetting/): every method of
# `baas eval-forgetting`, the shared datasets in their default order, offline MiniLM, one order.
# Resumable: rerun the same command after any stop; finished cells and states are never redone.
# The run in results/forgetting/ was started with --methods baas,multitask,naive,ewc (issue 10's
# methods first); rerunning this script resumes it and adds the PEFT baselines to the same folder.
# Usage, from the repository root: benchmarks/forgetting.sh DATA_DIR STORE [extra eval-forgetting options]
# (e.g. ../shared/data/mcq ../stores/forgetting; relative paths keep this machine's out of the report).
set -euo pipefail
data=${1:?usage: benchmarks/forgetting.sh DATA_DIR STORE}
store=${2:?usage: benchmarks/forgetting.sh DATA_DIR STORE}
shift 2
cd "$(dirname "$0")/.."
exec .venv/bin/baas eval-forgetting --data-dir "$data" --store "$store" \
  --methods all --max-train 600 --epochs 2 --max-eval 200 \
  --out benchmarks/results/forgetting "$@"
