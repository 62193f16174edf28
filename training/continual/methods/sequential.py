"""The methods that train one learner on every task in turn, with no task id at test time, and the base they
share (`Sequential`): the learner's state after each task is kept in the store, so a stopped run resumes.

    naive      baas's pair and head trained on every task in turn: the lower bound
    multitask  the same pair and head trained jointly on all tasks at once: the upper bound; it has no
               sequence, so only the last row of its matrix exists

EWC (ewc.py), the PEFT adapters (peft.py, olora.py), full fine-tuning (full_ft.py) and st_ft (reference.py)
are `Sequential` too, with another learner or loss."""

from __future__ import annotations

import json

import torch

from baas.prompts_bank.errors import BaasError
from baas.training.continual.context import Context
from baas.training.continual.method import PROMPT_GRID, Method, fit, learner_metrics
from baas.training.loop import Learner, PairLearner
from baas.training.trainer import make_trainable


class Sequential(Method):
    """One learner (by default baas's pair and head) for every task, trained on the tasks in turn; its state
    after each task is kept in the store (kind `state`) so a stopped run picks up from the last task it
    finished. Subclasses change the learner (`new_learner`) or the loss (`penalty`)."""

    lr_grid: tuple[float, ...] = PROMPT_GRID  # learning rates tried on the first task's validation split

    def __init__(self, ctx: Context, order: list[str], run: str):
        super().__init__(ctx, order, run)
        self.learner, self.at = None, -1  # the learner and the task index whose state it holds
        self.extra: dict[str, torch.Tensor] = {}  # what a subclass carries from task to task (EWC: Fisher, anchor)
        self.validation: dict[int, float] = {}  # task k's best validation accuracy, when trained (or kept with its state)

    def state_name(self, k: int) -> str:
        return f"{self.key}-{self.run}-k{k}"

    def new_learner(self) -> Learner:
        torch.manual_seed(self.ctx.config.seed)
        module, _ = make_trainable(self.ctx.backbone, self.ctx.encoded(self.order[0], "train"), self.ctx.config)
        return PairLearner(self.ctx.backbone, module, self.ctx.pooling, self.ctx.config.precision)

    def load(self, k: int) -> bool:
        stored = self.ctx.store.load_artifact("state", self.state_name(k))
        if stored is None:
            return False
        tensors, meta = stored
        self.learner = self.learner or self.new_learner()
        self.learner.module.load_state_dict({n[len("module."):]: t for n, t in tensors.items() if n.startswith("module.")},
                                            strict=False)
        self.extra = {n: t for n, t in tensors.items() if not n.startswith("module.")}
        self.loaded_meta = meta
        self.lr = float(meta["lr"]) if meta.get("lr") else None
        self.lr_scores = {float(lr): v for lr, v in json.loads(meta["lr_scores"]).items()} if meta.get("lr_scores") else None
        if meta.get("validation"):
            self.validation[k] = float(meta["validation"])
        self.at = k
        return True

    def save(self, k: int) -> None:
        tensors = {f"module.{n}": t for n, t in self.learner.trainable().items()} | self.extra
        meta = {"method": self.key, "task": self.order[k], "lr": "" if self.lr is None else repr(self.lr),
                "lr_scores": json.dumps(self.lr_scores) if self.lr_scores else "",
                "validation": repr(self.validation[k]) if k in self.validation else "", **self.state_meta()}
        if self.ctx.processes.main:
            self.ctx.store.save_artifact("state", self.state_name(k), tensors, meta)
        self.ctx.processes.barrier()
        self.at = k

    def learn(self, k: int) -> None:
        self.reused = self.load(k)
        if self.reused:
            return
        if k > 0 and self.at != k - 1 and not self.load(k - 1):
            raise BaasError(f"{self.key}: the state after task {k} ({self.order[k - 1]}) is missing from the store")
        if k == 0:
            self.lr, tried = self.choose_lr()
            if tried is not None:  # the winning try is task 1 trained at that rate: it is not trained again
                self.learner, self.validation[0] = tried, self.lr_scores[self.lr]
                self.save(k)
                return
            self.learner = self.new_learner()
        self.train(k)
        self.save(k)

    def choose_lr(self) -> tuple[float | None, Learner | None]:
        """The learning rate of `lr_grid` that does best on the first task's validation split, each tried from
        the same start and seed as `train(0)` (the scores go into the results), and the learner that try left:
        the state after task 1. Without a grid to choose from: the one rate (or the config's) and no learner."""
        if len(self.lr_grid) < 2:
            return (self.lr_grid[0] if self.lr_grid else None), None
        task, scores, tried = self.order[0], {}, {}
        for lr in self.lr_grid:
            tried[lr] = self.new_learner()
            torch.manual_seed(self.ctx.config.seed * 1000)  # as train(0) seeds it
            scores[lr] = fit(self.ctx, tried[lr], self.ctx.encoded(task, "train"), self.ctx.encoded(task, "validation"),
                             f"{self.key}: {task} at lr {lr:g}", self.penalty(), lr)
        self.lr_scores = scores
        best = max(scores, key=scores.get)
        return best, tried[best]

    def train(self, k: int) -> None:
        task = self.order[k]
        torch.manual_seed(self.ctx.config.seed * 1000 + k)
        self.validation[k] = fit(self.ctx, self.learner, self.ctx.encoded(task, "train"), self.ctx.encoded(task, "validation"),
                                 f"{self.key}: {task}", self.penalty(), self.lr)

    def penalty(self):
        return None

    def state_meta(self) -> dict[str, str]:
        """What a subclass keeps in a state's metadata beside the learning rate (EWC: its lambda)."""
        return {}

    def evaluate(self, k: int, rows: list[int]) -> dict[str, dict[int, dict]]:
        return {self.key: {i: learner_metrics(self.ctx, self.learner, self.ctx.encoded(self.order[i], "eval"),
                                              f"evaluating {self.order[i]}") for i in rows}}

    def validation_accuracy(self, k: int) -> float | None:
        return self.validation.get(k)

    def parameters(self) -> dict[str, int]:
        learner = self.learner or self.new_learner()
        n = sum(t.numel() for t in learner.trainable().values())
        return {"trainable": n, "stored_per_task": 0, "stored_total": n + sum(t.numel() for t in self.extra.values())}


class Naive(Sequential):
    key = "naive"


class Multitask(Sequential):
    """Trained jointly on every task at once (the last step of the sequence); rows before it do not exist."""

    key = "multitask"

    def rows(self, k: int) -> list[int]:
        return list(range(len(self.order))) if k == len(self.order) - 1 else []

    def first_step(self) -> int:
        return len(self.order) - 1

    def learn(self, k: int) -> None:
        if k < len(self.order) - 1:
            self.reused = False  # nothing to learn before the last task
            return
        self.reused = self.load(k)
        if self.reused:
            return
        self.lr, _ = self.choose_lr()  # as every method: the rate that does best on the first task alone
        self.learner = self.new_learner()
        torch.manual_seed(self.ctx.config.seed * 1000 + k)
        train = [e for t in self.order for e in self.ctx.encoded(t, "train")]
        val = [e for t in self.order for e in self.ctx.encoded(t, "validation")]
        fit(self.ctx, self.learner, train, val, f"multitask: {len(self.order)} tasks", lr=self.lr)
        self.save(k)

    def validation_accuracy(self, k: int) -> float | None:
        return None  # one validation over every task at once (and lr_scores are of a first-task try, not this state)
