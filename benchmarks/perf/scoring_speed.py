"""Evaluation speed of the scoring modes, in one run: questions per second of the deep pair (every layer, gated,
untrained: speed does not depend on the weights) scoring 200 questions of each dataset in joint, dual and both
mode, through the library's evaluator. dual reads a long passage once per question instead of once per
option, so it should gain most on cosmos_qa and dream.

    python benchmarks/perf/scoring_speed.py --data-dir DIR [--questions 200] [--threads 1] [--repeats 2]

Modes are interleaved per repeat (joint, dual, both, joint, ...) and the best repeat of each is kept, so a noisy
machine shows in every mode alike. Writes benchmarks/results/scoring_speed.md and .json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"
DATASETS = ("arc_easy", "cosmos_qa", "dream")
MODES = ("joint", "dual", "both")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import torch

    from baas.training.backbone import load_backbone
    from baas.training.batching import encode
    from baas.training.config import TrainConfig
    from baas.training.data import load_task_data
    from baas.training.loop import PairLearner, evaluate, learner_scorer
    from baas.training.trainer import make_trainable

    torch.set_num_threads(args.threads)
    backbone = load_backbone(None)
    rows = []
    for name in DATASETS:
        data = load_task_data(name, args.data_dir, max_train=50, max_eval=args.questions)
        encoded = encode(data.eval.examples, backbone.tokenizer, 256)
        learners = {}
        for mode in MODES:
            torch.manual_seed(0)
            module, _ = make_trainable(backbone, encoded, TrainConfig(scoring=mode))
            learners[mode] = PairLearner(backbone, module, "mean_input")
        best = {mode: float("inf") for mode in MODES}
        for _ in range(args.repeats):
            for mode in MODES:
                started = time.perf_counter()
                evaluate(learner_scorer(learners[mode]), encoded, backbone.pad_id, 32)
                best[mode] = min(best[mode], time.perf_counter() - started)
        tokens = {"joint": sum(len(r) for e in encoded for r in e.options),
                  "dual": sum(len(e.question) + sum(len(a) for a in e.answers) for e in encoded)}
        tokens["both"] = tokens["joint"] + tokens["dual"]
        for mode in MODES:
            rows.append(dict(dataset=name, mode=mode, questions=len(encoded), seconds=round(best[mode], 2),
                             questions_per_second=round(len(encoded) / best[mode], 1), input_tokens=tokens[mode],
                             speedup_over_joint=round(best["joint"] / best[mode], 2), threads=args.threads))
            print(json.dumps(rows[-1]), flush=True)
    (RESULTS / "scoring_speed.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# Scoring modes: evaluation speed", "",
             f"`python benchmarks/perf/scoring_speed.py --data-dir DIR --threads {args.threads}`. MiniLM, the deep pair (every "
             f"layer, gated; 5 + 5 vectors), {args.questions} evaluation questions per dataset, batches of 32 questions, "
             f"best of {args.repeats} interleaved repeats, {args.threads} thread(s). Input tokens: the rows the backbone "
             "reads, before the 10 prompt positions each row gets.", "",
             "| dataset | mode | questions/s | x joint | input tokens |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['mode']} | {r['questions_per_second']} | {r['speedup_over_joint']} | {r['input_tokens']} |")
    (RESULTS / "scoring_speed.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
