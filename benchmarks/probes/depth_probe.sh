#!/usr/bin/env bash
# Prompt depth probe on arc_easy: each setting once (seed 0), 600 training questions, 2 epochs,
# 500 validation / 500 test questions, two runs side by side with one thread each. Choices are made
# on validation accuracy only; test is printed for reference. Depth 1 is the shallow pair of
# recipe_search.md (its stage 2 gave validation 0.392 / 0.434 and test 0.426; the rerun here checks
# that the depth code leaves it unchanged).
#
#   benchmarks/probes/depth_probe.sh DATA_DIR      # appends to benchmarks/results/depth_probe.jsonl
#   python benchmarks/probes/depth_probe.py        # renders benchmarks/results/depth_probe.md
set -euo pipefail
data_dir=${1:?usage: benchmarks/probes/depth_probe.sh DATA_DIR}
here=$(cd "$(dirname "$0")" && pwd)
log=$here/../results/depth_probe.jsonl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() {  # LABEL OPTIONS...
  local label=$1; shift
  OMP_NUM_THREADS=1 baas train-task arc_easy --data-dir "$data_dir" --max-train 600 --max-eval 500 --epochs 2 \
    --store "$work/$label" "$@" --json >"$work/$label.out"
  python -c 'import json,sys; print(json.dumps({"label": sys.argv[1], "options": sys.argv[2], "result": json.loads(open(sys.argv[3]).read().splitlines()[-1])}))' \
    "$label" "$*" "$work/$label.out" >>"$log"
}

run "depth 6, lr 1e-2" --depth 6 --lr 1e-2 & run "depth 6, lr 3e-3" --depth 6 --lr 3e-3 & wait
run "depth 6, lr 3e-2" --depth 6 --lr 3e-2 & run "depth 6, 10+10" --depth 6 --prefix-len 10 --suffix-len 10 & wait
run "depth 6, suffix pooling" --depth 6 --pooling suffix & run "depth 1 (shallow, rerun)" --depth 1 & wait
run "depth 3" --depth 3 & run "depth 6, head lr 1e-2" --depth 6 --head-lr 1e-2 & wait
