"""Evaluation speed of the scoring modes, in one run: questions per second of the deep pair (every layer, gated,
untrained: speed does not depend on the weights) scoring 200 questions of each dataset in joint, dual and both
mode, through the library's evaluator. dual reads a long passage once per question instead of once per
option, so it should gain most on cosmos_qa and dream.

    python benchmarks/perf/scoring_speed.py --data-dir DIR [--questions 200] [--threads 1] [--repeats 2]
    python benchmarks/perf/scoring_speed.py --data-dir DIR --modes both --precisions fp32,bf16   # bf16 autocast

Modes (and precisions) are interleaved per repeat (joint, dual, both, joint, ...) and the best repeat of each is
kept, so a noisy machine shows in every side alike. Writes benchmarks/results/scoring_speed.md and .json (fp32
only), or scoring_speed_precision.md and .json when --precisions names more than fp32.
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
    ap.add_argument("--modes", default=",".join(MODES), help="scoring modes, comma-separated (joint first for the x joint column)")
    ap.add_argument("--precisions", default="fp32", help="the backbone forward's precisions, comma-separated (fp32, bf16, fp16)")
    args = ap.parse_args()
    modes, precisions = args.modes.split(","), args.precisions.split(",")
    sides = [(mode, precision) for precision in precisions for mode in modes]

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
        for mode, precision in sides:
            torch.manual_seed(0)
            module, _ = make_trainable(backbone, encoded, TrainConfig(scoring=mode))
            learners[mode, precision] = PairLearner(backbone, module, "mean_input", precision)
        best = {side: float("inf") for side in sides}
        for _ in range(args.repeats):
            for side in sides:
                started = time.perf_counter()
                evaluate(learner_scorer(learners[side]), encoded, backbone.pad_id, 32)
                best[side] = min(best[side], time.perf_counter() - started)
        tokens = {"joint": sum(len(r) for e in encoded for r in e.options),
                  "dual": sum(len(e.question) + sum(len(a) for a in e.answers) for e in encoded)}
        tokens["both"] = tokens["joint"] + tokens["dual"]
        for mode, precision in sides:
            seconds = best[mode, precision]
            rows.append(dict(dataset=name, mode=mode, precision=precision, questions=len(encoded), seconds=round(seconds, 2),
                             questions_per_second=round(len(encoded) / seconds, 1), input_tokens=tokens[mode],
                             speedup_over_joint=round(best[modes[0], precision] / seconds, 2) if modes[0] == "joint" else None,
                             speedup_over_fp32=round(best[mode, precisions[0]] / seconds, 2), threads=args.threads))
            print(json.dumps(rows[-1]), flush=True)
    name = "scoring_speed" if precisions == ["fp32"] else "scoring_speed_precision"
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# Scoring modes: evaluation speed", "",
             f"`python benchmarks/perf/scoring_speed.py --data-dir DIR --threads {args.threads} --modes {args.modes} "
             f"--precisions {args.precisions}`. MiniLM, the deep pair (every "
             f"layer, gated; 5 + 5 vectors), {args.questions} evaluation questions per dataset, batches of 32 questions, "
             f"best of {args.repeats} interleaved repeats, {args.threads} thread(s). Input tokens: the rows the backbone "
             "reads, before the 10 prompt positions each row gets.", "",
             f"| dataset | mode | precision | questions/s | x joint | x {precisions[0]} | input tokens |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['mode']} | {r['precision']} | {r['questions_per_second']} | "
                     f"{r['speedup_over_joint'] or '–'} | {r['speedup_over_fp32']} | {r['input_tokens']} |")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
