"""Evaluation throughput: baas's forward-only evaluation path vs the same PEFT model forward-only.

    python benchmarks/perf/eval_throughput.py --quick           # a few minutes on 2 cores
    python benchmarks/perf/eval_throughput.py --json            # the full run; JSON as the last stdout line

Each round, every side answers the same slice of `--steps` x `--batch-size` evaluation questions (test
split, else validation, of the default mix arc_easy, commonsense_qa, medqa, dream), each in its own
process, interleaved as in train_throughput.py:

- baas: the library's one evaluator, `loop.evaluate` (inference mode; questions sorted by length, then
  batched) with the frozen pair and head of a `TrainablePromptPair` (prefix 5 + suffix 5) turned into a
  bank entry (`scoring.prompt_scorer`).
- PEFT as a user would run it: eval-forgetting's prompt-tuning learner (throughput.py `peft_learner`,
  10 virtual tokens), its `logits` under `torch.inference_mode`, batches of the slice in its order
  through `DataCollatorWithPadding`.
- PEFT on baas's batches: the same learner through `loop.evaluate` (`loop.learner_scorer`), on baas's
  token ids and baas's sorted batches.

Only the forward passes and the batch building are timed; tokenisation is reported once. GFLOP/s use
the forward FLOPs per row of throughput.py: 2*P*S + 4*L*S^2*d, S = padded width + 10 virtual tokens.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from baas.training.batching import batch_indices, collate
from baas.training.config import TrainConfig
from baas.training.loop import evaluate, learner_scorer
from baas.training.scoring import prompt_scorer
from baas.training.trainer import make_trainable
from throughput import (
    BaasTokens,
    BenchError,
    Chunks,
    PeftUserSide,
    SCORING,
    SideSpec,
    add_common_args,
    check_logits,
    compare,
    environment_lines,
    fill_defaults,
    load_questions,
    log,
    main_guard,
    measured,
    peft_learner,
    peft_summary,
    resolve_data_dir,
    results_table,
    report_path,
    write_report,
)

QUICK = {"questions": 16, "rounds": 2, "steps": 1, "warmup": 1}
FULL = {"questions": 200, "rounds": 5, "steps": 5, "warmup": 1}


class BaasEncodedEval(BaasTokens):
    """The evaluation questions tokenised as baas does, served in consecutive slices, answered by `loop.evaluate`."""

    def __init__(self, examples, backbone_spec, batch_size: int):
        # depth 1: the shallow pair, like for like with PEFT prompt tuning's input-level virtual tokens
        super().__init__(examples, backbone_spec, TrainConfig(eval_batch_size=batch_size, depth=1, scoring=SCORING))
        self.batch_size = batch_size
        self.chunks = Chunks(len(self.encoded))

    def check(self) -> dict:
        batch = collate(self.encoded[: self.batch_size], self.backbone.pad_id)
        with torch.inference_mode():
            logits = self.scorer(batch, list(range(self.batch_size)))
        return {"shape": list(logits.shape), "loss": torch.nn.functional.cross_entropy(logits, batch.labels).item()}

    def run(self, steps: int) -> dict:
        chunk = [self.encoded[i] for i in self.chunks.take(steps * self.batch_size)]
        started = time.perf_counter()
        evaluate(self.scorer, chunk, self.backbone.pad_id, self.batch_size)
        seconds = time.perf_counter() - started
        # The shapes the evaluator computed: the same sorted batches, rebuilt outside the timing.
        shapes = [(sum(len(chunk[i].options) for i in idx), max(len(o) for i in idx for o in chunk[i].options))
                  for idx in batch_indices(chunk, self.batch_size, shuffle=False)]
        return measured(seconds, len(chunk), shapes, self.flop_model.forward)


class BaasEval(BaasEncodedEval):
    def __init__(self, examples, backbone_spec, batch_size: int):
        super().__init__(examples, backbone_spec, batch_size)
        module, _ = make_trainable(self.backbone, self.encoded, self.config)
        entry = module.to_entry("throughput", torch.zeros(self.backbone.hidden_size), {})
        self.scorer = prompt_scorer(self.backbone, entry.prompt(), self.config.pooling or self.backbone.default_pooling)


class PeftEvalSameBatches(BaasEncodedEval):
    def __init__(self, examples, backbone_spec, batch_size: int):
        super().__init__(examples, backbone_spec, batch_size)
        self.scorer = learner_scorer(peft_learner(self.backbone, self.config))


class PeftEvalUser(PeftUserSide):
    def __init__(self, examples, backbone_spec, batch_size: int):
        # depth 1: the shallow pair, like for like with PEFT prompt tuning's input-level virtual tokens
        super().__init__(examples, backbone_spec, TrainConfig(eval_batch_size=batch_size, depth=1, scoring=SCORING))
        self.batch_size = batch_size
        self.chunks = Chunks(len(self.data))

    def check(self) -> dict:
        return check_logits(self.learner, self.data.batch(list(range(self.batch_size))))

    @torch.inference_mode()
    def run(self, steps: int) -> dict:
        chunk = self.chunks.take(steps * self.batch_size)
        shapes = []
        started = time.perf_counter()
        for start in range(0, len(chunk), self.batch_size):
            batch = self.data.batch(chunk[start: start + self.batch_size])
            self.learner.logits(batch).argmax(-1).tolist()
            shapes.append(tuple(batch.input_ids.shape))
        return measured(time.perf_counter() - started, len(chunk), shapes, self.flop_model.forward)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, batch_size=TrainConfig().eval_batch_size)
    args = parser.parse_args()
    fill_defaults(args, QUICK, FULL)
    examples = load_questions(args.datasets, resolve_data_dir(args.data_dir), "eval", args.questions)
    if len(examples) < args.batch_size:
        raise BenchError(f"{len(examples)} questions, fewer than one batch of {args.batch_size}")
    common = {"examples": examples, "backbone_spec": args.backbone, "batch_size": args.batch_size}
    specs = [
        SideSpec("baas", "baas", "`loop.evaluate`: length-sorted batches, frozen prefix 5 + suffix 5 from a bank entry",
                 BaasEval, common),
        SideSpec("peft_user", "PEFT prompt tuning, as a user runs it",
                 "pair tokenisation, batches in order, DataCollatorWithPadding, 10 virtual tokens", PeftEvalUser, common),
        SideSpec("peft_same", "PEFT prompt tuning, baas's batches",
                 "baas's token ids and sorted batches, 10 virtual tokens", PeftEvalSameBatches, common),
    ]
    per_round = args.steps * args.batch_size
    log(f"{len(examples)} evaluation questions from {args.datasets}; batch {args.batch_size}; "
        f"{args.rounds} rounds x {per_round} questions per side; {args.threads} thread(s)")
    result = compare(specs, args.rounds, args.steps, args.warmup, args.threads)
    sides = result["sides"]
    summary = dict(peft_summary(result, args, len(examples)), questions_per_round=per_round)
    table = results_table(specs, result, "baas", gflops=True)
    lines = [
        "# Evaluation throughput (forward only): baas vs PEFT prompt tuning", "",
        (f"Frozen {args.backbone or 'all-MiniLM-L6-v2 (offline)'}; {len(examples)} evaluation questions "
         f"({args.questions} from each of {args.datasets}), batches of {args.batch_size} questions, 10 virtual "
         f"tokens per row on every side; {args.rounds} interleaved rounds in which every side answers the same "
         f"{per_round} questions, after {args.warmup} untimed warm-up round(s) of {args.warmup * per_round}. "
         "Questions/s: median of the per-round rates."), "",
        *table, "",
        (f"baas answers {summary['speedup_vs_peft']:.2f}x as many questions/s as PEFT run as a user would, and "
         f"{summary['speedup_vs_peft_same_batches']:.2f}x as many as PEFT on baas's own batches."), "",
        ("- Timed: batch building and the forward passes (inference mode). Tokenisation, once: "
         + ", ".join(f"{k} {s['tokenise_s']:.2f} s" for k, s in sides.items()) + "."),
        ("- baas sorts each round's questions by length before batching (what `loop.evaluate` does with the whole "
         "evaluation set); a round holds only its own questions, so longer rounds pack better."),
        ("- Peak RSS: VmHWM of each side's own process (model load + tokenisation + evaluation); in brackets "
         "its RSS after set-up."),
        "- GFLOP/s estimate per row: 2*P*S + 4*L*S^2*d, P = weights of the blocks' linear layers, S = positions/row.",
        *environment_lines(args, "eval_throughput.py", result),
    ]
    write_report(report_path(args, "eval_throughput"), lines)
    print("\n".join(table))
    print(f"speedup vs PEFT (user-style): {summary['speedup_vs_peft']:.2f}x; vs PEFT on baas's batches: "
          f"{summary['speedup_vs_peft_same_batches']:.2f}x")
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main_guard(main)
