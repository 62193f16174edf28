"""The continual-learning protocol behind `baas eval-forgetting`: tasks learned one after another, the
accuracy matrix R[k][i] filled as they go, and the methods compared on the same data, order and budget.

    for each order of the tasks:
      for each method (`METHODS`: baas, naive, ewc, multitask; one small class each):
        for k, task in enumerate(order):
          method.learn(k)           its state after task k (read back from the store when already made)
          method.evaluate(k, rows)  R[k][i] for the tasks a metric reads: i <= k, and i = k + 1 (for FWT)

Every cell is appended to `DIR/cells.jsonl` the moment it is known, and every state a method reaches is
saved in the store before its cells are computed. A rerun of the same command skips both, so a run
stopped anywhere ends with the figures an unstopped one gives (training is seeded per task).

What each method keeps (stated in the report, counted from the tensors):
    baas       one frozen bank entry (pair + head) per task and the entry's query summary; a router
               refitted from the summaries after each task (never an earlier task's text)
    oracle     the same bank, each question sent to its own task's entry (needs the task id)
    naive      one pair and head trained on every task in turn: the lower bound
    ewc        the same, with an EWC penalty (diagonal Fisher, summed over tasks) against drifting from
               what earlier tasks needed
    multitask  one pair and head trained jointly on all tasks at once: the upper bound; it has no
               sequence, so only the last row of its matrix exists
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from baas.prompts_bank.bank import PromptBank
from baas.prompts_bank.errors import BaasError
from baas.router.strategies import make_strategy
from baas.store import Store
from baas.training.backbone import Backbone
from baas.training.batching import Encoded, batch_indices, collate
from baas.training.config import TrainConfig
from baas.training.data import TaskData, load_task_data
from baas.training.metrics import (CONFIDENCE, RESAMPLES, chance, continual_metrics, mean_of, percentile_interval,
                                   resampled_cells, verdict, wilson_interval)
from baas.training.parallel import Processes
from baas.training.routing import DEFAULT_QUERY, DEFAULT_RULE, Query, eval_set, evaluate_fused, fit_router
from baas.training.loop import Learner, PairLearner, Reporter, evaluate, learner_scorer
from baas.training.loop import fit as loop_fit
from baas.training.trainer import encode_cached, make_trainable, train_task

# The shared pack's ten datasets, from grade-school science to medicine to reading comprehension.
DEFAULT_ORDER = ("arc_easy", "arc_challenge", "openbookqa", "commonsense_qa", "qasc", "mmlu", "medqa", "medmcqa",
                 "dream", "cosmos_qa")
# hard (the default of `baas fuse`) and the two best deployable strategies of benchmarks/results/fuse.md.
DEFAULT_STRATEGIES = ("hard", "cluster", "topk2")
PROMPT_GRID = (3e-3, 1e-2, 3e-2)  # prompt learning rates each prompt method chooses from (first task's validation)
CELLS = "cells.jsonl"


@dataclass
class Budget:
    max_train: int | None = 600
    max_eval: int | None = 200
    epochs: int = 2
    seed: int = 0


@dataclass
class Settings:
    """Everything that decides the figures; a results folder holds one run of one Settings."""

    tasks: list[str]
    orders: int = 1
    budget: Budget = field(default_factory=Budget)
    config: TrainConfig = field(default_factory=TrainConfig)
    rule: str = DEFAULT_RULE
    query: str = str(DEFAULT_QUERY)
    space: str = "output"  # where baas mixes entries: output (cached answers) or prompt (a fused pass per row)
    ewc_lambda: float | None = None  # None: chosen on validation over the first two tasks (EWC.lambda_grid)
    # None: each method picks its learning rate from its own grid on the first task's validation split; a
    # tuple: every method's grid (`baas demo` gives the config's one rate, so nothing is tried twice)
    lr_grid: tuple[float, ...] | None = None

    def identity(self, backbone: str, precision: str = "fp32") -> dict:
        """What a results folder was made with. `precision`: the resolved one (resolve_precision); the device is
        not part of it (a run stopped on one device resumes on another)."""
        identity = dict(asdict(self), backbone=backbone, data_dir=None)
        if self.lr_grid is None:  # the default: results folders made before this setting existed stay resumable
            del identity["lr_grid"]
        identity["config"].pop("device", None)
        if identity["config"].pop("precision", None) is not None and precision != "fp32":  # (fp32: as before)
            identity["config"]["precision"] = precision
        return identity

    def order(self, o: int) -> list[str]:
        """Order 0 is the tasks as given; orders 1.. are seeded shuffles of them."""
        if o == 0:
            return list(self.tasks)
        return random.Random(self.budget.seed * 1000 + o).sample(self.tasks, len(self.tasks))


class Context:
    """What every method shares: backbone, store, data (loaded once per task), settings, reporter."""

    def __init__(self, settings: Settings, backbone: Backbone, store: Store, data_dir, reporter: Reporter):
        self.settings, self.backbone, self.store, self.data_dir, self.reporter = settings, backbone, store, data_dir, reporter
        self.config = settings.config
        self.pooling = self.config.pooling or backbone.default_pooling
        self.max_length = min(self.config.max_length, backbone.max_positions - self.config.prefix_len - self.config.suffix_len)
        self._data: dict[str, TaskData] = {}
        self.processes = Processes()  # under a launch: data-parallel training and evaluation, the main process writes

    def data(self, task: str) -> TaskData:
        if task not in self._data:
            b = self.settings.budget
            self._data[task] = load_task_data(task, self.data_dir, max_train=b.max_train, max_eval=b.max_eval)
        return self._data[task]

    def encoded(self, task: str, split: str) -> list[Encoded]:
        return encode_cached(getattr(self.data(task), split).examples, self.backbone, self.max_length, self.store)



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


def _cell(metrics: dict) -> dict:
    """What `cells.jsonl` keeps of a cell: accuracy, macro F1, the question count and each question's
    correctness (1 or 0, in the order of the task's evaluation questions), from which the report's
    intervals are computed. Cells written before `correct` existed load without it (no intervals)."""
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "n": metrics["n"],
            "correct": [int(c) for c in metrics["correct"]]}


# ---- baas: the bank and its router -----------------------------------------------------------------


class Baas(Method):
    key = "baas"

    lr_grid = PROMPT_GRID  # prompt learning rates tried on the first task's validation split

    def __init__(self, ctx: Context, order: list[str], run: str, strategies: list[str]):
        super().__init__(ctx, order, run)
        self.strategies = list(dict.fromkeys(strategies))
        self.versions: list[int] = []

    def matrix_of(self, strategy: str) -> str:
        if strategy == "oracle":
            return "oracle"
        return "baas" if strategy == self.strategies[0] else f"baas:{strategy}"

    def matrices(self) -> list[str]:
        return [self.matrix_of(s) for s in ["oracle", *self.strategies]]

    def learn(self, k: int) -> None:
        """Task k's entry, trained now or found in the store (same data and settings). For the first task, one
        entry per rate of `lr_grid`; the one best on validation gives the rate of every later task."""
        task = self.order[k]
        if k == 0 and self.lr is None:
            tries = {lr: self.entry(task, lr) for lr in self.lr_grid}
            self.lr_scores = {lr: accuracy for lr, (_, accuracy, _) in tries.items()}
            self.lr = max(self.lr_scores, key=self.lr_scores.get)
            version, self.reused = tries[self.lr][0], all(reused for _, _, reused in tries.values())
            if self.ctx.processes.main:
                # The losing tries this run trained now are removed; an entry found in the store (a user's own,
                # or another run's) is only read: a protocol run never removes or changes what it did not make.
                for lr, (other, _, reused) in tries.items():
                    if lr != self.lr and not reused:
                        self.ctx.store.remove(task, other)
            self.ctx.processes.barrier()
        else:
            version, _, self.reused = self.entry(task, self.lr)
        self.versions[k:] = [version]

    def resume(self, first_step: dict | None) -> None:
        """The rate chosen before a stop (the first step's record), so the other tries are not remade."""
        if first_step and first_step.get("lr") is not None:
            self.lr = float(first_step["lr"])

    def entry(self, task: str, lr: float) -> tuple[int, float, bool]:
        """(version, best validation accuracy, found in the store) of the task's entry trained at `lr`."""
        ctx = self.ctx
        result = train_task(task, ctx.data(task), ctx.backbone, ctx.store, replace(ctx.config, lr=lr), ctx.reporter)
        return result["version"], max(h["validation_accuracy"] for h in result["history"]), result["reused"]

    def bank(self, k: int) -> PromptBank:
        ctx = self.ctx
        return PromptBank([ctx.store.load_entry(self.order[j], self.versions[j], backbone=ctx.backbone.name,
                                                hidden_size=ctx.backbone.hidden_size) for j in range(k + 1)])

    def evaluate(self, k: int, rows: list[int]) -> dict[str, dict[int, dict]]:
        ctx, s = self.ctx, self.ctx.settings
        bank, query = self.bank(k), Query.parse(s.query)
        router = fit_router(bank, ctx.backbone, ctx.store, s.rule, "hard", query, ctx.data_dir)
        cells: dict[str, dict[int, dict]] = {m: {} for m in self.matrices()}

        def run(tasks: list[int], oracle: bool) -> list[dict]:
            evals = eval_set(bank, [ctx.data(self.order[i]) for i in tasks], ctx.backbone, ctx.store, query)
            return evaluate_fused(bank, router, ctx.backbone, evals, self.strategies, [s.space], ctx.config.eval_batch_size,
                                  ctx.reporter, ctx.store, oracle=oracle, per_question=True)

        seen = [i for i in rows if i <= k]
        if seen:  # the bank's own tasks: every one is run (cached answers make the repeats free)
            for r in run(list(range(k + 1)), oracle=True):
                for i in seen:
                    cells[self.matrix_of(r["strategy"])][i] = _cell(r["per_task"][i])
        if k + 1 in rows:  # the next task, before its entry exists: routed to the entries there are
            for r in run([k + 1], oracle=False):
                cells[self.matrix_of(r["strategy"])][k + 1] = _cell(r["per_task"][0])
            cells["oracle"][k + 1] = None  # no entry of its own yet: the oracle has nothing to send it to
        return cells

    def validation_accuracy(self, k: int) -> float | None:
        """The validation accuracy of task k's entry at the epoch kept (the untrained start is a candidate too)."""
        meta = self.ctx.store.describe(self.order[k], self.versions[k])["meta"]
        scores = [h["validation_accuracy"] for h in meta.get("history") or []] + [meta.get("start_accuracy")]
        return max((v for v in scores if v is not None), default=None)

    def parameters(self) -> dict[str, int]:
        ctx, query = self.ctx, Query.parse(self.ctx.settings.query)
        bank = self.bank(len(self.versions) - 1)
        trainable = [sum(t.numel() for n, t in e.tensors().items() if n != "key") for e in bank.entries]
        summaries = [sum(t.numel() for t in ctx.store.load_artifact("summary", f"{e.task}@v{e.version}-{query.slug}")[0].values())
                     for e in bank.entries]
        stored = [sum(t.numel() for t in e.tensors().values()) + s for e, s in zip(bank.entries, summaries)]
        return {"trainable": trainable[0], "stored_per_task": stored[0], "stored_total": sum(stored),
                "summary_per_task": summaries[0]}


# ---- one shared pair and head: naive, ewc, multitask ------------------------------------------------


def learner_metrics(ctx: Context, learner: Learner, encoded: list[Encoded], label: str) -> dict:
    """A cell: accuracy, macro F1, n and per-question correctness of a learner (`loop.evaluate`)."""
    m = evaluate(learner_scorer(learner), encoded, ctx.backbone.pad_id, ctx.config.eval_batch_size, ctx.reporter, label,
                 device=learner.device)
    return _cell({**m, "correct": [p == e.label for p, e in zip(m["predictions"], encoded)]})


def fit(ctx: Context, learner: Learner, train_enc: list[Encoded], val_enc: list[Encoded], label: str, penalty=None,
        lr: float | None = None) -> float:
    """`loop.fit` with the protocol's settings; returns the best validation accuracy (the untrained start
    counts for scoring other than joint). Seeded by the caller."""
    return loop_fit(learner, train_enc, val_enc, ctx.config, ctx.backbone.pad_id, reporter=ctx.reporter, label=label,
                    lr=lr, penalty=penalty)["best_accuracy"]


class SharedPair(Method):
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


class Naive(SharedPair):
    key = "naive"


class EWC(SharedPair):
    """Elastic weight consolidation (Kirkpatrick et al., 2017) on the shared pair and head: after each task,
    the diagonal empirical Fisher of its training loss is added to a running sum, and the parameters are
    kept as the anchor; later tasks pay lambda/2 * sum F * (theta - anchor)^2.

    lambda is chosen on validation over the first two tasks (unless `Settings.ewc_lambda` fixes it): task 2
    is trained from the state after task 1 once per value of `lambda_grid`, and the value whose state has the
    best mean validation accuracy over tasks 1 and 2 is kept for the rest of the sequence."""

    key = "ewc"
    lambda_grid = (1e2, 1e3, 1e4, 1e5)

    def __init__(self, ctx: Context, order: list[str], run: str):
        super().__init__(ctx, order, run)
        self.lam: float | None = ctx.settings.ewc_lambda
        self.lambda_scores: dict[float, float] | None = None

    def penalty(self):
        if not self.extra:
            return None
        lam, params = self.lam, self.learner.trainable()

        def value():
            return lam / 2 * sum((self.extra[f"fisher.{n}"] * (p - self.extra[f"anchor.{n}"]) ** 2).sum()
                                 for n, p in params.items() if f"fisher.{n}" in self.extra)

        return value

    def load(self, k: int) -> bool:
        found = super().load(k)
        if found and self.loaded_meta.get("ewc_lambda"):
            self.lam = float(self.loaded_meta["ewc_lambda"])
            scores = self.loaded_meta.get("ewc_lambda_scores")
            self.lambda_scores = {float(v): a for v, a in json.loads(scores).items()} if scores else None
        return found

    def state_meta(self) -> dict:
        return {"ewc_lambda": "" if self.lam is None else repr(self.lam),
                "ewc_lambda_scores": json.dumps(self.lambda_scores) if self.lambda_scores else ""}

    def chosen(self, k: int) -> dict:
        out = super().chosen(k)
        if k == 1 and self.lambda_scores:
            out.update(ewc_lambda=self.lam, ewc_lambda_scores=self.lambda_scores)
        return out

    def train(self, k: int) -> None:
        if self.lam is None and k == 1:
            self.choose_lambda()
            return
        if self.lam is None and k > 1:
            raise BaasError(f"ewc: the state after task {k} ({self.order[k - 1]}) records no lambda; rerun with --ewc-lambda")
        super().train(k)  # (task 1 pays no penalty: nothing to hold it to yet)
        self.add_fisher(k)

    def add_fisher(self, k: int) -> None:
        fisher = self.fisher(self.ctx.encoded(self.order[k], "train"), self.order[k])
        for n, f in fisher.items():
            self.extra[f"fisher.{n}"] = self.extra.get(f"fisher.{n}", torch.zeros_like(f)) + f
        self.extra |= {f"anchor.{n}": p.detach().clone() for n, p in self.learner.trainable().items()}

    def choose_lambda(self) -> None:
        """Task 2 from the state after task 1, once per lambda; keep the state best on tasks 1 and 2's validation."""
        start = ({n: t.detach().clone() for n, t in self.learner.trainable().items()}, dict(self.extra))
        scores, best = {}, None
        for lam in self.lambda_grid:
            self.learner.module.load_state_dict(start[0], strict=False)
            self.extra, self.lam = dict(start[1]), lam
            SharedPair.train(self, 1)
            scores[lam] = sum(learner_metrics(self.ctx, self.learner, self.ctx.encoded(self.order[i], "validation"),
                                              f"ewc: lambda {lam:g}, {self.order[i]} validation")["accuracy"] for i in (0, 1)) / 2
            if best is None or scores[lam] > scores[best[0]]:
                best = (lam, {n: t.detach().clone() for n, t in self.learner.trainable().items()}, self.validation.get(1))
        self.lam, state, self.validation[1] = best
        self.learner.module.load_state_dict(state, strict=False)
        self.extra, self.lambda_scores = dict(start[1]), scores
        self.add_fisher(1)

    def fisher(self, encoded: list[Encoded], task: str) -> dict[str, torch.Tensor]:
        """Diagonal empirical Fisher: per-question squared gradients of the loss, estimated per batch."""
        ctx, params = self.ctx, self.learner.trainable()
        total = {n: torch.zeros_like(p) for n, p in params.items()}
        batches = batch_indices(encoded, ctx.config.batch_size, shuffle=False)
        ctx.reporter.start(f"ewc: Fisher of {task}", len(batches))
        for idx in batches:
            batch = collate([encoded[i] for i in idx], ctx.backbone.pad_id).to(self.learner.device)
            loss = F.cross_entropy(self.learner.logits(batch), batch.labels)
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
            for (n, _), g in zip(params.items(), grads):
                if g is not None:
                    total[n] += g.detach() ** 2 * len(idx)
            ctx.reporter.advance(1)
        ctx.reporter.stop()
        return {n: t / len(encoded) for n, t in total.items()}

    def parameters(self) -> dict[str, int]:
        out = super().parameters()
        out["stored_total"] = 3 * out["trainable"]  # the pair and head, their Fisher and their anchor
        return out


class Multitask(SharedPair):
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


METHODS = {"baas": Baas, "naive": Naive, "ewc": EWC, "multitask": Multitask}


import baas.training.baselines  # noqa: E402,F401  the PEFT baselines build on the classes above and add themselves


# ---- the run: cells as they come, resumable --------------------------------------------------------


class Results:
    """`DIR/cells.jsonl`: a header naming the run's settings, then one line per cell and per step, each
    flushed and fsynced as it is written. A half-written last line (a kill mid-write) is ignored."""

    def __init__(self, out: Path, identity: dict, writer: bool = True):
        self.path, self.writer = out / CELLS, writer  # under a launch, the main process writes; the others keep count
        self.cells: dict[tuple, dict | None] = {}
        self.steps: dict[tuple, dict] = {}
        self.failures: dict[tuple, dict] = {}  # (order, method) -> its last failure, until a later step of it lands
        out.mkdir(parents=True, exist_ok=True)
        lines = self.path.read_text().splitlines() if self.path.is_file() else []
        records = []
        for n, line in enumerate(lines, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if n < len(lines):
                    raise BaasError(f"{self.path}:{n}: not a JSON line; the results file is damaged (move it away to start over)") from None
        if records and records[0].get("identity") != json.loads(json.dumps(identity)):
            raise BaasError(f"{out} holds results of a run with other settings ({self.path}); pass another --out, or "
                            "delete that folder to start over")
        if not records:
            self._append({"type": "run", "identity": identity})
        for r in records[1:]:
            if r["type"] == "cell":
                self.cells[(r["order"], r["matrix"], r["k"], r["i"])] = r["value"]
            elif r["type"] == "step":
                self._step(r)
            elif r["type"] == "failure":
                self.failures[(r["order"], r["method"])] = r

    def _append(self, record: dict) -> None:
        if not self.writer:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def has(self, o: int, matrix: str, k: int, i: int) -> bool:
        return (o, matrix, k, i) in self.cells

    def add_cell(self, o: int, matrix: str, k: int, i: int, value: dict | None) -> None:
        self.cells[(o, matrix, k, i)] = value
        self._append({"type": "cell", "order": o, "matrix": matrix, "k": k, "i": i, "value": value})

    def _step(self, record: dict) -> None:
        o, method, k = record["order"], record["method"], record["k"]
        self.steps[(o, method, k)] = record
        if (o, method) in self.failures and k >= self.failures[(o, method)]["k"]:
            del self.failures[(o, method)]

    def add_step(self, o: int, method: str, k: int, **fields) -> None:
        record = {"type": "step", "order": o, "method": method, "k": k, **fields}
        self._step(record)
        self._append(record)

    def add_failure(self, o: int, method: str, k: int, error: str) -> None:
        record = {"type": "failure", "order": o, "method": method, "k": k, "error": error}
        self.failures[(o, method)] = record
        self._append(record)

    def matrix(self, o: int, matrix: str, T: int, field: str = "accuracy") -> list[list[float | None]]:
        return [[(self.cells.get((o, matrix, k, i)) or {}).get(field) for i in range(T)] for k in range(T)]


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _step(method: Method, results: Results, o: int, name: str, k: int, T: int) -> None:
    """Task k of one method: learn it (or load its state), then evaluate the cells still missing."""
    missing = [i for i in method.rows(k) if not all(results.has(o, m, k, i) for m in method.matrices())]
    done = results.steps.get((o, name, k))
    if done is not None and not missing and name != "baas":
        return  # nothing left at this step (baas always looks its entry up: its bank is rebuilt from them)
    started = time.perf_counter()
    method.learn(k)
    learned = time.perf_counter()
    if missing:
        for matrix, cells in method.evaluate(k, missing).items():
            for i, value in cells.items():
                if i in missing and not results.has(o, matrix, k, i):
                    results.add_cell(o, matrix, k, i, value)
    if done is None:
        chosen = method.chosen(k)
        if k == T - 1:
            chosen["parameters"] = method.parameters()
        validation = method.validation_accuracy(k)
        if validation is not None:
            chosen["validation_accuracy"] = validation
        results.add_step(o, name, k, learn_seconds=round(learned - started, 2),
                         eval_seconds=round(time.perf_counter() - learned, 2), reused=method.reused,
                         peak_rss_mb=round(peak_rss_mb(), 1), **chosen)


def run_protocol(settings: Settings, methods: list[str], strategies: list[str], backbone: Backbone, store: Store,
                 out: Path, data_dir=None, reporter: Reporter | None = None, report_only: bool = False) -> dict:
    """Run (or resume) every method over every order; returns the report (see `report`). `report_only`
    trains and evaluates nothing: the report of the cells there are so far (a run still going, or stopped)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise BaasError(f"unknown method {', '.join(map(repr, unknown))}; expected some of {', '.join(METHODS)}")
    if len(settings.tasks) < 2:
        raise BaasError("the protocol needs at least two tasks")
    if not strategies or "oracle" in strategies:
        raise BaasError("--strategies needs deployable strategies only (the oracle is always reported beside them)")
    for s in strategies:
        make_strategy(s, means=torch.zeros(1, 1))  # an unknown name fails here, with the list of known ones
    if len(set(settings.tasks)) != len(settings.tasks):
        raise BaasError(f"--tasks names a task twice: {', '.join(settings.tasks)}")
    for name in methods:
        if name != "baas":
            METHODS[name].check(backbone)
    settings.config.epochs, settings.config.seed = settings.budget.epochs, settings.budget.seed
    settings.config.check()
    reporter = reporter or Reporter()
    from baas.training.backbone import resolve_precision

    identity = settings.identity(backbone.name, resolve_precision(settings.config.precision, backbone.device))
    ctx = Context(settings, backbone, store, data_dir, reporter)
    results = Results(out, identity, writer=ctx.processes.main)
    for task in settings.tasks:
        ctx.data(task)  # every dataset's problems show up now, not hours into the run
    run = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    T, steps = len(settings.tasks), [(o, m) for o in range(settings.orders) for m in methods]
    reporter.overall(len(steps) * T)
    for n, (o, name) in enumerate([] if report_only else steps):
        order = settings.order(o)
        method = Baas(ctx, order, run, strategies) if name == "baas" else METHODS[name](ctx, order, f"{run}-o{o}")
        if settings.lr_grid is not None:
            method.lr_grid = tuple(settings.lr_grid)
        method.resume(results.steps.get((o, name, method.first_step())))
        k = 0
        try:
            for k in range(T):
                reporter.step(f"order {o + 1}/{settings.orders} · {name} · task {k + 1}/{T} ({order[k]})", n * T + k)
                _step(method, results, o, name, k, T)
        except MemoryError:  # (Ctrl-C is not an Exception: it stops the run as before)
            raise
        except Exception as exc:  # one method's failure is recorded and reported; the others go on
            reporter.message(f"{name} failed at task {k + 1} ({order[k]}): {type(exc).__name__}: {exc}; the other methods go on")
            results.add_failure(o, name, k, f"{type(exc).__name__}: {exc}")
    reporter.overall(0)
    chances = {t: chance([len(e.options) for e in ctx.data(t).eval.examples]) for t in settings.tasks}
    validation_chances = {t: chance([len(e.options) for e in ctx.data(t).validation.examples]) for t in settings.tasks}
    out = report(settings, methods, strategies, results, backbone.name, chances, validation_chances)
    out["processes"] = ctx.processes.world  # this command's, under a launch (the figures do not depend on it)
    return out


# ---- the report ------------------------------------------------------------------------------------


def _spread(values: list[float | None]) -> dict:
    if not values or any(v is None for v in values):
        return {"mean": None, "std": None}
    mean = sum(values) / len(values)
    return {"mean": mean, "std": (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5}


def report(settings: Settings, methods: list[str], strategies: list[str], results: Results, backbone: str,
           chances: dict[str, float], validation_chances: dict[str, float] | None = None) -> dict:
    """The report object (`report.json`, `--json`): per matrix, its accuracy and macro-F1 matrices in the
    first order, the metrics (mean and spread over orders) with their intervals, the final accuracy per task,
    the learnable-task view, and the cost. FWT's reference b_i is task i's chance accuracy (`chances`); the
    learnable tasks are judged against chance on the validation split (`validation_chances`, else `chances`)."""
    T, names = len(settings.tasks), []
    for m in methods:
        names += (["baas", *[f"baas:{s}" for s in strategies[1:]], "oracle"] if m == "baas" else [m])
    learnable = _learnable(settings, methods, results, validation_chances or chances)
    samples = _bootstrap(settings, names, results, chances, learnable["tasks"] or [])
    out = {}
    for name in names:
        method = "baas" if name.startswith("baas") or name == "oracle" else name
        per_order = []
        for o in range(settings.orders):
            order = settings.order(o)
            R, F1, ref = results.matrix(o, name, T), results.matrix(o, name, T, "macro_f1"), [chances[t] for t in order]
            per_order.append({"order": order, "accuracy_matrix": R, "macro_f1_matrix": F1,
                              "accuracy": continual_metrics(R, ref), "macro_f1": continual_metrics(F1, ref)})
        first = per_order[0]
        steps = [s for (o, m, k), s in results.steps.items() if m == method]
        metrics = {key: _spread([p["accuracy"][key] for p in per_order]) for key in first["accuracy"]}
        wilson = _wilson_matrix(results, name, T)
        out[name] = dict(
            accuracy_matrix=first["accuracy_matrix"], macro_f1_matrix=first["macro_f1_matrix"],
            **{key: v["mean"] for key, v in metrics.items()},
            spread={key: v["std"] for key, v in metrics.items()} if settings.orders > 1 else None,
            macro_f1={key: _spread([p["macro_f1"][key] for p in per_order])["mean"] for key in first["macro_f1"]},
            final_accuracy={t: first["accuracy_matrix"][-1][i] for i, t in enumerate(first["order"])},
            n_matrix=results.matrix(0, name, T, "n"), accuracy_interval_matrix=wilson,
            final_accuracy_interval={t: wilson[-1][i] for i, t in enumerate(first["order"])},
            learnable_average_accuracy=mean_of([_learnable_mean(p["accuracy_matrix"][-1], p["order"], learnable["tasks"])
                                                for p in per_order]),
            intervals={key: percentile_interval(v) for key, v in samples[name].items()},
            parameters=next((s["parameters"] for s in steps if s.get("parameters")), None),  # counted after the last task
            seconds=round(sum(s["learn_seconds"] + s["eval_seconds"] for s in steps), 1),
            train_seconds=round(sum(s["learn_seconds"] for s in steps), 1),
            reused_steps=sum(bool(s["reused"]) for s in steps),
            peak_rss_mb=max((s["peak_rss_mb"] for s in steps), default=None),
            lr=next((s["lr"] for s in steps if s.get("lr") is not None), None),
            lr_scores=next((s["lr_scores"] for s in steps if s.get("lr_scores")), None),
            **({"ewc_lambda": next((s["ewc_lambda"] for s in steps if s.get("ewc_lambda") is not None), None),
                "ewc_lambda_scores": next((s["ewc_lambda_scores"] for s in steps if s.get("ewc_lambda_scores")), None)}
               if method == "ewc" else {}),
            steps_done=len({k for (o, m, k) in results.steps if m == method and o == 0}),
            latest=_latest(first["accuracy_matrix"]),
            orders=per_order if settings.orders > 1 else None,
        )
    for name, m in out.items():
        m["versus_baas"] = _versus(samples, name, m, out.get("baas"))
        m["versus_baas_learnable"] = _versus(samples, name, m, out.get("baas"), "learnable_average_accuracy")
    return {"tasks": settings.tasks, "orders": [settings.order(o) for o in range(settings.orders)],
            "budget": asdict(settings.budget), "backbone": backbone, "rule": settings.rule, "query": settings.query,
            "space": settings.space, "scoring": settings.config.scoring, "ewc_lambda": settings.ewc_lambda, "strategies": strategies, "chance": chances,
            "uncertainty": UNCERTAINTY | {"seed": settings.budget.seed}, "learnable": learnable,
            "methods": out, "findings": findings(out),
            "failed": {f"{r['method']}" + (f" (order {o + 1})" if settings.orders > 1 else ""): {"task": r["k"] + 1, "error": r["error"]}
                       for (o, _), r in sorted(results.failures.items())}}


UNCERTAINTY = {
    "confidence": CONFIDENCE, "cell": "wilson", "resamples": RESAMPLES,
    "bootstrap": "percentile bootstrap over evaluation questions, resampled within each task (the same resamples "
                 "for every row, order and method: `versus_baas` is paired); metrics recomputed from each resampled "
                 "matrix and averaged over orders as the point values are",
}


def _wilson_matrix(results: Results, name: str, T: int, o: int = 0) -> list[list[list[float] | None]]:
    """Each cell's Wilson interval (from its per-question results, else from its accuracy and n)."""
    def interval(cell):
        if not cell or cell.get("n") is None:
            return None
        hits = sum(cell["correct"]) if cell.get("correct") is not None else round(cell["accuracy"] * cell["n"])
        return wilson_interval(hits, cell["n"])

    return [[interval(results.cells.get((o, name, k, i))) for i in range(T)] for k in range(T)]


LEARNABLE_MARGIN = 0.05  # a task is learnable when some method beats chance by this much on its validation split


def _learnable(settings: Settings, methods: list[str], results: Results, chances: dict[str, float]) -> dict:
    """The tasks some method learns: its validation accuracy on the task, once learned, at least
    LEARNABLE_MARGIN above chance (on the validation split). `best` names, per task, the method with the
    highest validation accuracy; `tasks` is None when no step recorded one (results from before they were kept)."""
    best: dict[str, dict] = {}
    for (o, m, k), step in results.steps.items():
        v = step.get("validation_accuracy")
        if v is None or m not in methods or o >= settings.orders:
            continue
        task = settings.order(o)[k]
        if task not in best or v > best[task]["validation_accuracy"]:
            best[task] = {"method": m, "validation_accuracy": v, "chance": chances[task]}
    tasks = [t for t in settings.tasks if t in best and best[t]["validation_accuracy"] - best[t]["chance"] >= LEARNABLE_MARGIN - 1e-9]
    return {"margin": LEARNABLE_MARGIN, "tasks": tasks if best else None, "best": best,
            "unknown": [t for t in settings.tasks if t not in best]}


def _learnable_mean(final_row: list, order: list[str], tasks: list[str] | None):
    """The mean of a final row's cells (values or resample arrays) over the learnable tasks."""
    if not tasks:
        return None
    return mean_of([final_row[order.index(t)] for t in tasks])


def _bootstrap(settings: Settings, names: list[str], results: Results, chances: dict[str, float],
               learnable: list[str]) -> dict[str, dict]:
    """Per method, each metric of `continual_metrics` (and the average accuracy over the `learnable` tasks) in
    every bootstrap resample ([RESAMPLES] arrays, the mean over orders), or None where a cell it reads has no
    per-question results."""
    orders = [settings.order(o) for o in range(settings.orders)]
    cells = {key: (orders[key[0]][key[3]], (value or {}).get("correct")) for key, value in results.cells.items()
             if key[0] < len(orders) and key[1] in names}
    resampled = resampled_cells(cells, RESAMPLES, settings.budget.seed)
    T, out = len(settings.tasks), {}
    for name in names:
        per_order = []
        for o, order in enumerate(orders):
            R = [[resampled.get((o, name, k, i)) for i in range(T)] for k in range(T)]
            per_order.append(continual_metrics(R, [chances[t] for t in order])
                             | {"learnable_average_accuracy": _learnable_mean(R[-1], order, learnable)})
        out[name] = {key: mean_of([m[key] for m in per_order]) for key in per_order[0]}
    return out


def _versus(samples: dict[str, dict], name: str, point: dict, baas: dict | None, key: str = "average_accuracy") -> dict | None:
    """The paired bootstrap of `baas - name` on average accuracy (or `key`): the difference, its interval and the
    verdict for baas ("ahead", "level", "behind", from the interval alone; None without per-question results)."""
    if name == "baas" or baas is None or baas[key] is None or point[key] is None:
        return None
    a, b = samples["baas"][key], samples[name][key]
    interval = None if a is None or b is None else percentile_interval(a - b)
    return {"difference": baas[key] - point[key], "interval": interval, "verdict": verdict(interval)}


def _latest(R) -> dict | None:
    """The last row whose learned tasks are all measured: after how many tasks, and their mean accuracy."""
    for k in range(len(R) - 1, -1, -1):
        if all(v is not None for v in R[k][: k + 1]):
            return {"tasks": k + 1, "average_accuracy": sum(R[k][: k + 1]) / (k + 1)}
    return None


def findings(methods: dict) -> dict:
    """Which router strategy won, the goals for baas (forgetting within 1 point of zero, average accuracy
    within 1 point of the oracle and at least 95% of multitask), and how baas compares with every other
    method: ahead, level or behind, from the paired bootstrap interval of `baas - method` alone (a method
    without per-question results has no interval, no verdict, and is listed under `no_interval`)."""
    baas = {k: v for k, v in methods.items() if k.startswith("baas") and v["average_accuracy"] is not None}
    if not baas:
        return {}
    best = max(baas, key=lambda k: baas[k]["average_accuracy"])
    main = methods["baas"]
    interval = lambda key: (main.get("intervals") or {}).get(key)  # noqa: E731
    goals = {}
    if main["forgetting"] is not None:
        goals["forgetting_within_1_point"] = {"value": main["forgetting"], "interval": interval("forgetting"),
                                              "met": abs(main["forgetting"]) <= 0.01 + 1e-9}
    for ref, name, target in (("oracle", "within_1_point_of_oracle", lambda a: a - 0.01),
                              ("multitask", "at_least_95pct_of_multitask", lambda a: 0.95 * a)):
        acc = methods.get(ref, {}).get("average_accuracy")
        if acc is not None and main["average_accuracy"] is not None:
            goals[name] = {"value": main["average_accuracy"], "interval": interval("average_accuracy"), "reference": acc,
                           "target": target(acc), "met": main["average_accuracy"] >= target(acc) - 1e-9,
                           "difference_interval": (methods[ref].get("versus_baas") or {}).get("interval")}
    verdicts, learnable = _verdicts(methods, "versus_baas"), _verdicts(methods, "versus_baas_learnable")
    baselines = [k for k in verdicts["behind"] if not k.startswith("baas") and k != "oracle"]
    return {"best_strategy": best, "goals": goals, "baas_versus": verdicts, "baselines_above_baas": baselines,
            "baas_versus_on_learnable_tasks": learnable if any(learnable.values()) else None}


def _verdicts(methods: dict, field: str) -> dict[str, list[str]]:
    """The methods baas is ahead of, level with and behind, by the paired intervals in `field`."""
    versus = {k: v[field] for k, v in methods.items() if v.get(field)}
    verdicts = {key: [k for k, c in versus.items() if c["verdict"] == key] for key in ("ahead", "level", "behind")}
    verdicts["no_interval"] = [k for k, c in versus.items() if c["verdict"] is None]
    return verdicts
