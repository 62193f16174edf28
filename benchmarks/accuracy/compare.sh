#!/usr/bin/env bash
# Head-only vs every pair recipe in benchmarks/results/recipe_chosen.json on arc_easy, commonsense_qa and
# cosmos_qa, seeds 0-2: one `recipe.py compare` call per (dataset, seed, method), two at a time with one
# thread each, then core_results.md from the log.
#
#   benchmarks/accuracy/compare.sh DATA_DIR [METHODS]     # METHODS: comma list, default every method in the file
set -euo pipefail
data_dir=${1:?usage: benchmarks/accuracy/compare.sh DATA_DIR [METHODS]}
here=$(cd "$(dirname "$0")" && pwd)
methods=${2:-$(python -c 'import json,sys; print(",".join(k for k in json.load(open(sys.argv[1])) if k != "chosen_by"))' "$here/../results/recipe_chosen.json")}
for ds in cosmos_qa arc_easy commonsense_qa; do  # longest contexts first, so the pool drains evenly
  for seed in 0 1 2; do
    for method in ${methods//,/ }; do echo "$ds $seed $method"; done
  done
done | OMP_NUM_THREADS=1 xargs -P 2 -L 1 sh -c \
  'python "$0/recipe.py" compare --data-dir "$1" --datasets "$2" --seeds "$3" --methods "$4"' "$here" "$data_dir"
python "$here/recipe.py" compare-report
