"""What a continual method is: the `Method` base (learn task k, evaluate rows of the accuracy matrix, count its
parameters), what a cell of the matrix keeps, and the two thin wrappers over training/loop.py (the one training
loop and evaluator) through which every method trains and scores with the protocol's settings."""

from __future__ import annotations

from baas.training.backbone import Backbone
from baas.training.batching import Encoded
from baas.training.continual.context import Context
from baas.training.loop import Learner, evaluate, learner_scorer
from baas.training.loop import fit as loop_fit

PROMPT_GRID = (3e-3, 1e-2, 3e-2)  # prompt learning rates each prompt method chooses from (first task's validation)


class Method:
    """One way of learning the tasks in turn. `learn(k)` reaches the state after task k; `evaluate(k, rows)`
    gives, per matrix it fills, the cells R[k][i] of the rows asked for."""

    key = ""

    def __init__(self, ctx: Context, order: list[str], run: str):
        self.ctx, self.order, self.run = ctx, order, run
        self.reused = False  # set by learn() when the state came from the store, not from training now
        self.lr: float | None = None  # the learning rate chosen on the first task's validation split
        self.lr_scores: dict[float, float] | None = None  # each tried rate's validation accuracy, when tried now

    @classmethod
    def check(cls, backbone: Backbone) -> None:
        """Raise BaasError, before anything trains, if the method cannot run on this backbone."""

    def first_step(self) -> int:
        """The step at which the method first trains (and chooses its learning rate)."""
        return 0

    def chosen(self, k: int) -> dict:
        """What the method chose at step k on validation, for the results (the learning rate at its first step)."""
        return {"lr": self.lr, "lr_scores": self.lr_scores} if k == self.first_step() and self.lr_scores else {}

    def resume(self, first_step: dict | None) -> None:
        """What a stopped run's record of the first step tells the method (states carry the rest)."""

    def matrices(self) -> list[str]:
        return [self.key]

    def rows(self, k: int) -> list[int]:
        return list(range(min(k + 2, len(self.order))))

    def learn(self, k: int) -> None:
        raise NotImplementedError

    def evaluate(self, k: int, rows: list[int]) -> dict[str, dict[int, dict]]:
        raise NotImplementedError

    def validation_accuracy(self, k: int) -> float | None:
        """Task k's validation accuracy once it is learned (the state kept), or None where the method has none
        of its own (multitask: one validation over every task). The report's learnable-task view reads it."""
        return None

    def parameters(self) -> dict[str, int]:
        """trainable: numbers trained per task; stored_per_task: what each task adds to what is kept;
        stored_total: everything kept after the last task."""
        raise NotImplementedError


def cell_of(metrics: dict) -> dict:
    """What `cells.jsonl` keeps of a cell: accuracy, macro F1, the question count and each question's
    correctness (1 or 0, in the order of the task's evaluation questions), from which the report's
    intervals are computed. Cells written before `correct` existed load without it (no intervals)."""
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "n": metrics["n"],
            "correct": [int(c) for c in metrics["correct"]]}


def learner_metrics(ctx: Context, learner: Learner, encoded: list[Encoded], label: str) -> dict:
    """A cell: accuracy, macro F1, n and per-question correctness of a learner (`loop.evaluate`)."""
    m = evaluate(learner_scorer(learner), encoded, ctx.backbone.pad_id, ctx.config.eval_batch_size, ctx.reporter, label,
                 device=learner.device)
    return cell_of({**m, "correct": [p == e.label for p, e in zip(m["predictions"], encoded)]})


def fit(ctx: Context, learner: Learner, train_enc: list[Encoded], val_enc: list[Encoded], label: str, penalty=None,
        lr: float | None = None) -> float:
    """`loop.fit` with the protocol's settings; returns the best validation accuracy (the untrained start
    counts for scoring other than joint). Seeded by the caller."""
    return loop_fit(learner, train_enc, val_enc, ctx.config, ctx.backbone.pad_id, reporter=ctx.reporter, label=label,
                    lr=lr, penalty=penalty)["best_accuracy"]
