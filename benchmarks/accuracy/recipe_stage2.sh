#!/usr/bin/env bash
# Recipe search, stage 2: validation of 500 questions (stage 1's 300 could not separate the settings),
# batch sizes 8 and 4, short pairs, head learning rates. Each line of benchmarks/results/recipe_stage2.jsonl is the
# `--json` output of one `baas train-task` run, tagged with its label. Usage: benchmarks/accuracy/recipe_stage2.sh DATA_DIR
set -euo pipefail
DATA_DIR=${1:?usage: $0 DATA_DIR}
OUT=$(dirname "$0")/../results/recipe_stage2.jsonl
common=(--data-dir "$DATA_DIR" --max-train 600 --epochs 2 --max-eval 500 --json)
run() {
  local label=$1; shift
  local store; store=$(mktemp -d)
  baas train-task arc_easy "${common[@]}" --store "$store" "$@" 2>/dev/null | tail -1 |
    python -c "import json,sys; d=json.load(sys.stdin); d['label']=sys.argv[1]; d.pop('bank_file'); print(json.dumps(d))" "$label" >> "$OUT"
  rm -rf "$store"
}
run "head-only bs8 head_lr=1e-2"            --head-lr 1e-2 --prefix-len 0 --suffix-len 0
run "pair 20+20 bs8 lr=3e-3 head_lr=1e-2"   --head-lr 1e-2 --lr 3e-3
run "pair 5+5 bs4 lr=3e-3 head_lr=1e-2"     --head-lr 1e-2 --lr 3e-3 --prefix-len 5 --suffix-len 5 --batch-size 4
run "head-only bs4 head_lr=1e-2"            --head-lr 1e-2 --prefix-len 0 --suffix-len 0 --batch-size 4
run "pair 5+5 bs4 lr=1e-2 head_lr=1e-2"     --head-lr 1e-2 --lr 1e-2 --prefix-len 5 --suffix-len 5 --batch-size 4
run "pair 10+10 bs4 lr=3e-3 head_lr=1e-2"   --head-lr 1e-2 --lr 3e-3 --prefix-len 10 --suffix-len 10 --batch-size 4
run "head-only bs4 head_lr=3e-2"            --head-lr 3e-2 --prefix-len 0 --suffix-len 0 --batch-size 4
run "pair 5+5 bs4 lr=3e-3 head_lr=3e-2"     --head-lr 3e-2 --lr 3e-3 --prefix-len 5 --suffix-len 5 --batch-size 4
run "pair 5+5 bs4 lr=1e-2 head_lr=3e-2"     --head-lr 3e-2 --lr 1e-2 --prefix-len 5 --suffix-len 5 --batch-size 4
