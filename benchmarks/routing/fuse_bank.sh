#!/usr/bin/env bash
# The fuse benchmark on the ten-dataset bank (benchmarks/routing/train_bank.py).
# Usage: benchmarks/routing/fuse_bank.sh DATA_DIR STORE [MAX_EVAL=100] [MAX_VALIDATION=50]
#   1. evaluation splits: every strategy in both fusion spaces, the defaults (lda rule, temperature 1)
#   2. validation splits, output space: every rule x temperature x strategy (choices are made here)
#   3. evaluation splits, output space, with the rule and temperature chosen on validation
# Entries' answers are cached in STORE, so runs after the first of each split rerun no entry.
# Writes benchmarks/results/fuse/*.json and benchmarks/results/fuse.md; a stopped run resumes.
set -euo pipefail
data=$1 store=$2 max_eval=${3:-100} max_val=${4:-50}
here=$(cd "$(dirname "$0")" && pwd)
results=$here/../results
out=$results/fuse
mkdir -p "$out"
# fuse FILE ARGS...: one `baas fuse --json` run into FILE, skipped when FILE exists
fuse() { local file=$1; shift; [ -s "$file" ] && return; baas fuse --data-dir "$data" --store "$store" --json "$@" > "$file.tmp"; mv "$file.tmp" "$file"; }
fuse "$out/eval_lda_t1.json" --max-eval "$max_eval" --strategy all --space both
for rule in lda qda aoa cosine; do
  for t in 1 4; do
    fuse "$out/validation_${rule}_t${t}_output.json" --split validation --max-eval "$max_val" --strategy all \
      --space output --rule "$rule" --temperature "$t"
  done
done
python "$here/fuse_choice.py" "$out" > "$out/choice.json"
rule=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['rule'])" "$out/choice.json")
temp=$(python -c "import json,sys; print('%g' % json.load(open(sys.argv[1]))['temperature'])" "$out/choice.json")
fuse "$out/eval_${rule}_t${temp}_output.json" --max-eval "$max_eval" --strategy all --space output --rule "$rule" --temperature "$temp"
python "$here/fuse_report.py" "$out/eval_lda_t1.json" --chosen "$out/eval_${rule}_t${temp}_output.json" \
  --choice "$out/choice.json" > "$results/fuse.md"
