"""Training throughput: baas's prompt-pair training step vs PEFT prompt tuning on the same frozen backbone.

    python benchmarks/perf/train_throughput.py --quick           # a few minutes on 2 cores
    python benchmarks/perf/train_throughput.py --json            # the full run; JSON as the last stdout line

Three sides, each in its own process, run interleaved rounds of `--steps` training steps on the same
real questions (default: arc_easy, commonsense_qa, medqa, dream; 3 to 5 options, short and long
inputs), batch size 4 questions (baas's default), 10 virtual tokens in all (baas: prefix 5 + suffix 5;
PEFT: num_virtual_tokens=10), AdamW with baas's two learning rates, clipping 1.0, constant learning
rates on every side (the trainer's warm-up schedule is left out everywhere):

- baas: the library itself, as `train_task` runs it: `encode` once, `batch_indices` (length buckets,
  shuffled), `make_trainable`, a `loop.PairLearner`, and `loop.train_step` (which collates each batch).
- PEFT as a user would run it: eval-forgetting's prompt-tuning learner (`peft.PeftLearner`:
  `get_peft_model(AutoModel, PromptTuningConfig(FEATURE_EXTRACTION))`, mean pooling of the input's
  tokens, baas's head and loss; throughput.py `peft_learner`) on the tokenizer's pair call and a random
  order, each batch padded to its longest row.
- PEFT on baas's batches: the same PEFT learner fed the very token ids and batches baas uses, so its
  ratio to baas isolates what baas's own model code (injection, pooling, scoring) costs or saves.

Every side's step is the library's one training step, `loop.train_step` (the step `loop.fit` takes), so
the sides differ only in their tokenisation, batch order and model. Only training steps are timed
(batch building included, as it is part of every step); tokenisation
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

from baas.training.batching import batch_indices, collate
from baas.training.config import TrainConfig
from baas.training.loop import PairLearner, train_step
from baas.training.trainer import make_trainable
from throughput import (
    BaasTokens,
    BenchError,
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


class TrainSide:
    """A training side: its `learner` and `optimizer` take library training steps (`loop.train_step`) on its
    `questions` (encoded, padded with `pad_id`) in its `order` of batches."""

    def check(self) -> dict:
        return check_logits(self.learner, collate(self.questions[: self.config.batch_size], self.pad_id))

    def run(self, steps: int) -> dict:
        return timed_steps(self, steps)

    def shape(self, idx: list[int]) -> tuple[int, int]:
        """(rows, padded width) of the batch these questions make."""
        return padded_shape([self.questions[i] for i in idx])


class BaasEncoded(TrainSide, BaasTokens):
    """The questions tokenised as `train_task` does, served in the trainer's batch order."""

    def __init__(self, examples, backbone_spec, batch_size: int, pair: str = "shallow"):
        # shallow: depth 1 and joint, like for like with PEFT prompt tuning's input-level virtual tokens;
        # default: what `baas train-task` trains (TrainConfig's defaults: every layer, both scoring)
        config = (TrainConfig(batch_size=batch_size, depth=1, scoring=SCORING) if pair == "shallow"
                  else TrainConfig(batch_size=batch_size))
        super().__init__(examples, backbone_spec, config)
        self.questions, self.pad_id = self.encoded, self.backbone.pad_id
        self.order = baas_order(self.encoded, batch_size, self.config.seed)


class BaasTrain(BaasEncoded):
    def __init__(self, examples, backbone_spec, batch_size: int, pair: str = "shallow"):
        super().__init__(examples, backbone_spec, batch_size, pair)
        module, _ = make_trainable(self.backbone, self.encoded, self.config)
        self.learner = PairLearner(self.backbone, module, self.config.pooling or self.backbone.default_pooling)
        self.optimizer = self.learner.optimizer(self.config)


class PeftTrainSameBatches(BaasEncoded):
    """PEFT prompt tuning fed baas's own token ids and batch composition."""

    def __init__(self, examples, backbone_spec, batch_size: int):
        super().__init__(examples, backbone_spec, batch_size)
        self.learner = peft_learner(self.backbone, self.config)
        self.optimizer = self.learner.optimizer(self.config)


class PeftTrainUser(TrainSide, PeftUserSide):
    """PEFT prompt tuning as a user would run it: pair tokenisation, random order, each batch padded to its longest row."""

    def __init__(self, examples, backbone_spec, batch_size: int):
        super().__init__(examples, backbone_spec, TrainConfig(batch_size=batch_size, depth=1, scoring=SCORING))
        self.questions, self.pad_id = self.data.encoded, self.backbone.pad_id
        self.optimizer = self.learner.optimizer(self.config)
        self.order = random_batches(len(self.data), batch_size, self.config.seed)


def padded_shape(questions) -> tuple[int, int]:
    """(rows, padded width) of the batch `collate` makes of these questions."""
    return sum(len(q.options) for q in questions), max(len(o) for q in questions for o in q.options)


def timed_steps(side: TrainSide, steps: int) -> dict:
    """`steps` library training steps (`loop.train_step`: collate, forward, backward, clipping, AdamW step)
    of a side, batch building included in the time. Constant learning rates on every side (the schedule
    of `loop.fit` is left out)."""
    batches = []
    started = time.perf_counter()
    for _ in range(steps):
        idx = next(side.order)
        train_step(side.learner, side.optimizer, [[side.questions[i] for i in idx]], side.pad_id, side.config.clip)
        batches.append(idx)
    seconds = time.perf_counter() - started
    return measured(seconds, sum(map(len, batches)), [side.shape(idx) for idx in batches], side.flop_model.train)


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
                 "pair tokenisation, random order, padded to each batch's longest row, 10 virtual tokens", PeftTrainUser, common),
        SideSpec("peft_same", "PEFT prompt tuning, baas's batches",
                 "baas's token ids and batches, 10 virtual tokens", PeftTrainSameBatches, common),
    ]
    log(f"{len(examples)} training questions from {args.datasets}; batch {args.batch_size}; "
        f"{args.rounds} rounds x {args.steps} steps per side; {args.threads} thread(s)")
    result = compare(specs, args.rounds, args.steps, args.warmup, args.threads)
    sides, peak = result["sides"], result["matmul_peak_gflops"]
    summary = dict(peft_summary(result, args, len(examples)), steps=args.steps)
    table = results_table(specs, result, "baas", gflops=True)
    config = TrainConfig(batch_size=args.batch_size, depth=1, scoring=SCORING)  # what every side trains with
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
        (f"- Same step on every side: the library's `loop.train_step` (AdamW: prompts lr {config.lr}, no weight decay; "
         f"head lr {config.head_lr}, weight decay 0.01; clipping {config.clip}), constant learning rates, backbone in "
         "eval mode (no dropout)."),
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
