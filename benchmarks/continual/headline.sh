#!/usr/bin/env bash
# The ten-dataset comparison that can rank methods (issue 26): every method at 600 training questions, 2 epochs
# and 200 evaluation questions per task, seed 0, the shared datasets in the default order, offline MiniLM, one
# order, every method scored the same way (--scoring). Resumable: rerun the same command after any stop;
# finished cells and states are never redone. Run it from a fixed commit in its own worktree, so code landing
# meanwhile cannot change a half-finished run:
#   git worktree add ../baas-headline <commit> && cd ../baas-headline && make setup
#   nohup benchmarks/continual/headline.sh ../shared/data/mcq ../stores/headline both > headline.log 2>&1 &
# METHODS (default: all of them, in the order below) runs a share of the methods, so that two streams can use
# two cores; give each stream its own folder and store (OUT, STORE), e.g.
#   METHODS=st_ft,prefix_tuning OUT=benchmarks/results/forgetting_b benchmarks/continual/headline.sh DIR ../stores/headline_b both
# and merge their cells in the main checkout (benchmarks/continual/merge_cells.py), then refresh the report
# with `baas eval-forgetting --config benchmarks/results/forgetting/run.toml --report-only`.
# Cells keep each question's correctness, so the report's intervals are exact.
# On a new machine (the store is gone): copy the merged cells.jsonl into OUT and the carried states into the
# stream's store (benchmarks/continual/carry_states.py load benchmarks/results/headline_states STORE); a
# baseline then resumes after its last carried task. Before a machine goes: carry_states.py save STORE
# benchmarks/results/headline_states, and commit it with the merged cells.
# The run was made with hard first (the default then): keep that order here, or the protocol refuses to resume
# it; its report names cluster, the default now, as `baas` (run.toml: strategies = "cluster,hard,topk2").
# Methods in the order they run: the references and the cheap ones first, then the PEFT rows.
set -euo pipefail
data=${1:?usage: benchmarks/continual/headline.sh DATA_DIR STORE SCORING [extra eval-forgetting options]}
store=${2:?usage: benchmarks/continual/headline.sh DATA_DIR STORE SCORING}
scoring=${3:?usage: benchmarks/continual/headline.sh DATA_DIR STORE SCORING}
shift 3
methods=${METHODS:-baas,zero_shot,naive,ewc,multitask,st_ft,prefix_tuning,lora,olora,full_ft}
out=${OUT:-benchmarks/results/forgetting}
cd "$(dirname "$0")/../.."
for method in ${methods//,/ }; do
  .venv/bin/baas eval-forgetting --data-dir "$data" --store "$store" --methods "$method" --scoring "$scoring" \
    --strategies hard,cluster,topk2 --max-train 600 --epochs 2 --max-eval 200 --seed 0 --precision fp32 \
    --out "$out" "$@"
done
