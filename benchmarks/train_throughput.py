"""Training throughput: baas's prompt-pair training step vs PEFT prompt tuning on the same frozen backbone.

    python benchmarks/train_throughput.py --quick           # a few minutes on 2 cores
    python benchmarks/train_throughput.py --json            # the full run; JSON as the last stdout line

Three sides, each in its own process, run interleaved rounds of `--steps` training steps on the same
real questions (default: arc_easy, commonsense_qa, medqa, dream; 3 to 5 options, short and long
inputs), batch size 4 questions (baas's default), 10 virtual tokens in all (baas: prefix 5 + suffix 5;
PEFT: num_virtual_tokens=10), AdamW with baas's two learning rates, clipping 1.0, constant learning
rates on every side (the trainer's warm-up schedule is left out everywhere):

- baas: the library itself, as `train_task` runs it: `encode` once, `batch_indices` (length buckets,
  shuffled), `collate` per batch, `make_trainable` and `train_step`.
- PEFT as a user would run it: `get_peft_model(AutoModel, PromptTuningConfig(FEATURE_EXTRACTION))`,
  the tokenizer's pair call, a random order, `DataCollatorWithPadding` (pads to the longest row of
  the batch), mean pooling of the input's tokens, the same linear head and loss (throughput.py).
- PEFT on baas's batches: the same PEFT model fed the very token ids and batches baas uses, so its
  ratio to baas isolates what baas's own model code (injection, pooling, scoring) costs or saves.

Only training steps are timed (batch building included, as it is part of every step); tokenisation
is reported once. Achieved GFLOP/s use the FLOP model in throughput.py:
per row 4*P*S + 12*L*S^2*d for a step (forward 2*P*S + 4*L*S^2*d; backward input gradients only,
attention's backward 2x its forward), S = padded width + 10 virtual tokens, compared with the best
fp32 2048x2048 torch.mm of the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from itertools import count
from pathlib import Path

import torch
import torch.nn.functional as F
from baas.training.batching import batch_indices, collate
from baas.training.config import TrainConfig
from baas.training.model import score
from baas.training.trainer import make_trainable, train_step
from throughput import (
    RESULTS,
    BaasTokens,
    BenchError,
    PeftMultipleChoice,
    PeftUserSide,
    SideSpec,
    add_common_args,
    compare,
    environment_lines,
    fill_defaults,
    load_questions,
    log,
    main_guard,
    measured,
    random_batches,
    resolve_data_dir,
    results_table,
    report_path,
    write_report,
)

QUICK = {"questions": 12, "rounds": 2, "steps": 3, "warmup": 1}
FULL = {"questions": 100, "rounds": 5, "steps": 20, "warmup": 2}


def baas_order(encoded, batch_size: int, seed: int):
    """The trainer's batch order, epoch after epoch: length buckets, shuffled with seed*1000 + epoch."""
    for epoch in count():
        yield from batch_indices(encoded, batch_size, shuffle=True, seed=seed * 1000 + epoch)


class BaasEncoded(BaasTokens):
    """The questions tokenised as `train_task` does, served in the trainer's batch order."""

    def __init__(self, examples, backbone_spec, batch_size: int):
        # depth 1: the shallow pair, like for like with PEFT prompt tuning's input-level virtual tokens
        super().__init__(examples, backbone_spec, TrainConfig(batch_size=batch_size, depth=1))
        self.order = baas_order(self.encoded, batch_size, self.config.seed)

    def batch(self, idx):
        return collate([self.encoded[i] for i in idx], self.backbone.pad_id)


class BaasTrain(BaasEncoded):
    def __init__(self, examples, backbone_spec, batch_size: int):
        super().__init__(examples, backbone_spec, batch_size)
        self.module, self.optimizer = make_trainable(self.backbone, self.encoded, self.config)
        self.pooling = self.config.pooling or self.backbone.default_pooling

    def check(self) -> dict:
        batch = self.batch(range(self.config.batch_size))
        with torch.no_grad():
            logits = score(self.backbone, batch, *self.module(), self.pooling)
        return {"shape": list(logits.shape), "loss": F.cross_entropy(logits, batch.labels).item()}

    def run(self, steps: int) -> dict:
        return timed_steps(self, steps, lambda b: train_step(self.backbone, self.module, self.optimizer, b,
                                                             self.pooling, self.config.clip))


class PeftTrainSameBatches(BaasEncoded):
    """PEFT prompt tuning fed baas's own token ids and batch composition."""

    def __init__(self, examples, backbone_spec, batch_size: int):
        super().__init__(examples, backbone_spec, batch_size)
        self.model = PeftMultipleChoice(self.backbone.model, self.virtual)
        self.optimizer = self.model.optimizer(self.config.lr, self.config.head_lr)

    def check(self) -> dict:
        return self.model.check(self.batch(range(self.config.batch_size)))

    def run(self, steps: int) -> dict:
        return timed_steps(self, steps, lambda b: self.model.train_step(self.optimizer, b, self.config.clip))


class PeftTrainUser(PeftUserSide):
    """PEFT prompt tuning as a user would run it: pair tokenisation, random order, DataCollatorWithPadding."""

    def __init__(self, examples, backbone_spec, batch_size: int):
        super().__init__(examples, backbone_spec, TrainConfig(batch_size=batch_size, depth=1))
        self.optimizer = self.model.optimizer(self.config.lr, self.config.head_lr)
        self.order = random_batches(len(self.data), batch_size, self.config.seed)

    def check(self) -> dict:
        return self.model.check(self.batch(range(self.config.batch_size)))

    def run(self, steps: int) -> dict:
        return timed_steps(self, steps, lambda b: self.model.train_step(self.optimizer, b, self.config.clip))


def timed_steps(side, steps: int, step) -> dict:
    """`steps` training steps of a side (its `order` of batches, its `batch(idx)`, then `step(batch)`),
    batch building included in the time."""
    shapes, questions = [], 0
    started = time.perf_counter()
    for _ in range(steps):
        idx = next(side.order)
        batch = side.batch(idx)
        step(batch)
        shapes.append(tuple(batch.input_ids.shape))
        questions += len(idx)
    return measured(time.perf_counter() - started, questions, shapes, side.flop_model.train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, batch_size=TrainConfig().batch_size)
    args = parser.parse_args()
    fill_defaults(args, QUICK, FULL)
    examples = load_questions(args.datasets, resolve_data_dir(args.data_dir), "train", args.questions)
    if len(examples) < args.batch_size:
        raise BenchError(f"{len(examples)} questions, fewer than one batch of {args.batch_size}")
    common = {"examples": examples, "backbone_spec": args.backbone, "batch_size": args.batch_size}
    specs = [
        SideSpec("baas", "baas", "its trainer's path: encode once, length-bucketed batches, prefix 5 + suffix 5", BaasTrain, common),
        SideSpec("peft_user", "PEFT prompt tuning, as a user runs it",
                 "pair tokenisation, random order, DataCollatorWithPadding, 10 virtual tokens", PeftTrainUser, common),
        SideSpec("peft_same", "PEFT prompt tuning, baas's batches",
                 "baas's token ids and batches, 10 virtual tokens", PeftTrainSameBatches, common),
    ]
    log(f"{len(examples)} training questions from {args.datasets}; batch {args.batch_size}; "
        f"{args.rounds} rounds x {args.steps} steps per side; {args.threads} thread(s)")
    result = compare(specs, args.rounds, args.steps, args.warmup, args.threads)
    sides, peak = result["sides"], result["matmul_peak_gflops"]
    baas, user, same = sides["baas"], sides["peft_user"], sides["peft_same"]
    summary = {
        "speedup_vs_peft": baas["questions_per_s"] / user["questions_per_s"],
        "speedup_vs_peft_same_batches": baas["questions_per_s"] / same["questions_per_s"],
        "fraction_of_matmul_peak": baas["gflops"] / peak,
        "baas_questions_per_s": baas["questions_per_s"],
        "peft_questions_per_s": user["questions_per_s"],
        "peft_same_batches_questions_per_s": same["questions_per_s"],
        "baas_peak_rss_mb": baas["peak_rss_mb"],
        "peft_peak_rss_mb": user["peak_rss_mb"],
        "peft_same_batches_peak_rss_mb": same["peak_rss_mb"],
        "baas_gflops": baas["gflops"],
        "matmul_peak_gflops": peak,
        "threads": args.threads,
        "questions": len(examples), "batch_size": args.batch_size, "rounds": args.rounds, "steps": args.steps,
    }
    table = results_table(specs, result, "baas", gflops=True)
    lines = [
        "# Training throughput: baas vs PEFT prompt tuning", "",
        (f"Frozen {args.backbone or 'all-MiniLM-L6-v2 (offline)'}; {len(examples)} training questions "
         f"({args.questions} from each of {args.datasets}), {args.batch_size} questions per step, 10 virtual "
         f"tokens per row on every side; {args.rounds} interleaved rounds of {args.steps} steps per side "
         f"after {args.warmup} untimed warm-up step(s). Questions/s: median of the per-round rates."), "",
        *table, "",
        (f"baas trains {summary['speedup_vs_peft']:.2f}x as many questions/s as PEFT run as a user would, and "
         f"{summary['speedup_vs_peft_same_batches']:.2f}x as many as PEFT on baas's own batches; baas reaches "
         f"{summary['fraction_of_matmul_peak']:.0%} of the matmul peak."), "",
        ("- Timed: training steps only (building each batch included). Tokenisation, once: "
         + ", ".join(f"{k} {s['tokenise_s']:.2f} s" for k, s in sides.items()) + "."),
        ("- Peak RSS: VmHWM of each side's own process (model load + tokenisation + training); in brackets "
         "its RSS after set-up, before the first step."),
        ("- positions/row: the padded input width plus the 10 virtual tokens, averaged over rows: what was "
         "computed (padding included, so a side that pads more shows more GFLOP/s for less useful work)."),
        ("- GFLOP/s estimate per row and step: 4*P*S + 12*L*S^2*d (forward 2*P*S + 4*L*S^2*d; backward "
         "through the frozen model: input gradients only, attention's backward twice its forward), "
         "P = weights of the blocks' linear layers, L layers, hidden size d, S = padded width + 10 of each batch."),
        ("- Same step on every side: AdamW (prompts lr 1e-2, no weight decay; head lr 3e-2, weight decay 0.01), "
         "clipping 1.0, constant learning rates, backbone in eval mode (no dropout)."),
        *environment_lines(args, "train_throughput.py", result),
    ]
    write_report(report_path(args, "train_throughput"), lines)
    print("\n".join(table))
    print(f"speedup vs PEFT (user-style): {summary['speedup_vs_peft']:.2f}x; vs PEFT on baas's batches: "
          f"{summary['speedup_vs_peft_same_batches']:.2f}x; baas at {summary['fraction_of_matmul_peak']:.0%} "
          f"of the {peak:.0f} GFLOP/s matmul peak")
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main_guard(main)
