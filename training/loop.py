"""The one training loop and the one evaluator. Every trained thing in baas goes through them: a task's
prompt pair (`trainer.train_pair`), every continual method and baseline (`continual/methods/`), and
the benchmarks.

A `Learner` is what trains: a module, its optimiser, and its option logits on a batch. `fit` runs AdamW
with linear warmup and decay and gradient clipping, validates after every epoch and keeps the best epoch;
with a scoring mode other than `joint` the untrained start is a candidate too (epoch 0), so a task never
ends below its start on validation. `fit` can checkpoint (trainable state, optimiser, RNG, progress) and
resume from one, so a killed run ends with the figures of an unkilled one. Under a launch of several
processes (`Processes`) each takes its share of every batch and the gradients are added up before the
step; `evaluate` scores each process's share and gives every process all the answers.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Callable

import torch
import torch.nn.functional as F

from baas.training.batching import Batch, Encoded, MemoryBackOff, batch_indices, collate
from baas.training.config import TrainConfig
from baas.training.metrics import chance, mcq_metrics
from baas.training.parallel import Processes
from baas.training.progress import Reporter
from baas.training.scoring import score, score_questions


class Learner:
    """What trains: a module, the optimiser of its trainable parameters and its logits on a batch."""

    module: torch.nn.Module
    precision: str = "fp32"  # the frozen part's forward (fp16 trains with a gradient scaler: see `fit`)

    @property
    def device(self) -> torch.device:
        """Where the learner computes: its batches are sent here (by default, where its parameters are)."""
        return next(self.module.parameters()).device

    def logits(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def optimizer(self, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
        raise NotImplementedError

    def after_step(self, step: int) -> None:
        """Called after each optimiser step (AdaLoRA reallocates its ranks here)."""

    def trainable(self) -> dict[str, torch.Tensor]:
        """The named tensors a state keeps: the trainable parameters (a frozen backbone is not copied)."""
        return {n: p for n, p in self.module.named_parameters() if p.requires_grad}

    def untrained_start(self) -> dict[str, torch.Tensor]:
        """The state that is fit's epoch-0 candidate: by default the state before any step."""
        return {n: t.detach().clone() for n, t in self.trainable().items()}


CLOSED_GATE = -1e4  # a gate this low hides the pair from the input entirely (exp(-1e4) is 0 in fp32)


class PairLearner(Learner):
    """baas's own learner: a `TrainablePromptPair` (pair and head) on the frozen backbone."""

    def __init__(self, backbone, module, pooling: str, precision: str | None = None):
        """`precision`: the backbone's forward (auto, fp32, bf16, fp16; None: the backbone's own)."""
        from baas.training.backbone import resolve_precision

        self.backbone, self.module, self.pooling = backbone, module, pooling
        self.precision = backbone.precision if precision is None else resolve_precision(precision, backbone.device)

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    def logits(self, batch: Batch) -> torch.Tensor:
        pair, head = self.module()
        return score(self.backbone, batch, pair, head, self.pooling, self.precision)

    def optimizer(self, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
        return make_optimizer(self.module, config if lr is None else replace(config, lr=lr))

    def untrained_start(self) -> dict[str, torch.Tensor]:
        """The start with the gate closed: in dual scoring exactly the encoder's zero-shot answer."""
        start = super().untrained_start()
        if "gate" in start:
            start["gate"].fill_(CLOSED_GATE)
        return start


GATE_LR_SCALE = 10.0  # a gated pair's gate learns at lr x this (chosen on validation: benchmarks/results/deep_start.md)


def make_optimizer(module, config: TrainConfig) -> torch.optim.Optimizer:
    groups = [
        {"params": [p for p in (module.prefix, module.suffix) if p.numel()], "lr": config.lr, "weight_decay": 0.0},
        # layers 1..D-1: the same rate, in a group of their own (a checkpoint's optimiser state keeps these groups)
        {"params": [p for p in (module.deep_prefix, module.deep_suffix) if p.numel()], "lr": config.lr, "weight_decay": 0.0},
        {"params": list(module.head.parameters()), "lr": config.head_lr, "weight_decay": 0.01},
    ]
    if module.gate is not None:
        groups.append({"params": [module.gate], "lr": config.lr * GATE_LR_SCALE, "weight_decay": 0.0})
    if module.reparam_parameters():
        groups.append({"params": module.reparam_parameters(), "lr": config.reparam_lr, "weight_decay": 0.0})
    return torch.optim.AdamW(groups)


def lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def evaluate(scorer: Callable[[Batch, list[int]], torch.Tensor], encoded: list[Encoded], pad_id: int, batch_size: int,
             reporter: Reporter | None = None, label: str = "evaluating", backoff: MemoryBackOff | None = None,
             device: torch.device | None = None, keep_scores: bool = False) -> dict:
    """Accuracy, macro P/R/F1, chance, n and each question's predicted option (`predictions`, in the order
    of `encoded`) of `scorer(batch, question indices) -> logits`; with `keep_scores`, also each question's
    option scores (`scores`, one list per question, its options only). `backoff`: kept across calls, so a batch
    size that did not fit is not tried again at every evaluation. `device` (None: the CPU): where batches
    go and the logits stay until the predictions are read, once, at the end."""
    reporter = reporter or Reporter()
    reporter.start(label, len(Processes().share(list(range(len(encoded))))))
    logits = score_questions(encoded, scorer, pad_id, batch_size, reporter.advance,
                             backoff or MemoryBackOff(reporter.message, "evaluation"), device)
    reporter.stop()
    return answer_metrics(logits, encoded, keep_scores)


def answer_metrics(logits: torch.Tensor, encoded: list[Encoded], keep_scores: bool = False) -> dict:
    """`evaluate`'s record from logits [N, K_max] already computed for `encoded` (read to the CPU once)."""
    preds = logits.argmax(-1).tolist()
    labels = [e.label for e in encoded]
    out = dict(mcq_metrics(labels, preds), chance=chance([len(e.options) for e in encoded]), n=len(encoded),
               predictions=preds)
    if keep_scores:
        out["scores"] = [row[: len(e.options)] for row, e in zip(logits.tolist(), encoded)]
    return out


def learner_scorer(learner: Learner) -> Callable[[Batch, list[int]], torch.Tensor]:
    return lambda batch, idx: learner.logits(batch.to(learner.device))


def train_step(learner: Learner, optimizer: torch.optim.Optimizer, pieces: list[list[Encoded]], pad_id: int,
               clip: float, size: int | None = None, penalty=None, processes: Processes | None = None,
               scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """One optimiser step on one batch of `size` questions, given in pieces (one unless memory ran out, see
    `MemoryBackOff`; under a launch, this process's share): each piece's gradient is added up (and, under a
    launch, summed across processes) before the step, so the step is the one the whole batch gives.
    Batches go to the learner's device (pinned, non-blocking to CUDA). `scaler`: fp16's gradient scaler.
    Returns the loss as a 0-dim tensor on the learner's device (reading it is the caller's host sync)."""
    processes = processes or Processes()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    size = size or sum(len(p) for p in pieces)
    device = learner.device
    optimizer.zero_grad(set_to_none=True)
    loss = torch.zeros((), device=device)
    backward = (lambda t: scaler.scale(t).backward()) if scaler is not None else (lambda t: t.backward())
    for piece in filter(None, pieces):  # (a process's share of a batch smaller than the launch is empty)
        batch = collate(piece, pad_id).to(device)
        part = F.cross_entropy(learner.logits(batch), batch.labels, reduction="sum") / size
        backward(part)
        loss += part.detach()
    if penalty is not None and processes.main:
        part = penalty()
        backward(part)
        loss += part.detach()
    processes.sum_gradients(params, loss)
    if scaler is not None:
        scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(params, clip)
    if scaler is not None:
        scaler.step(optimizer)  # skipped when a gradient overflowed; the scale then shrinks
        scaler.update()
    else:
        optimizer.step()
    return loss


SHOW_LOSS_EVERY = 20  # on a GPU, the progress bar's loss is read (a host sync) every this many steps


def fit(learner: Learner, train: list[Encoded], val: list[Encoded], config: TrainConfig, pad_id: int, *,
        reporter: Reporter | None = None, label: str = "training", lr: float | None = None, penalty=None,
        resume: dict | None = None, save: Callable[[dict], None] | None = None,
        stop_after_steps: int | None = None) -> dict:
    """Train `learner` for `config.epochs` epochs with a fresh optimiser and keep the epoch (0: the untrained
    start, for scoring other than joint) that does best on `val`; returns the progress record: step,
    history (per epoch: train loss, validation accuracy and macro F1), best_epoch, best_accuracy,
    start_accuracy, and `interrupted` when `stop_after_steps` ended it early. Seeded by the caller.

    `penalty()`, when given, is added to the loss (EWC, O-LoRA). `save(checkpoint)`, when given, is called
    every `config.checkpoint_every` steps and after each epoch's validation with a dict that `resume` takes
    back (trainable state, optimiser, best state, progress, RNG)."""
    reporter, processes = reporter or Reporter(), Processes()
    device = learner.device
    optimizer = learner.optimizer(config, lr)
    scaler = torch.amp.GradScaler(device.type) if learner.precision == "fp16" else None
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = max(1, int(config.warmup * total))
    state = {"step": 0, "best_epoch": -1, "best_accuracy": -1.0, "history": [], "epoch_loss": 0.0, "start_accuracy": None}
    best = {n: t.detach().clone() for n, t in learner.trainable().items()}
    if resume is not None:
        learner.module.load_state_dict(resume["module"], strict=False)
        optimizer.load_state_dict(resume["optimizer"])
        best, state = resume["best_module"], dict(state, **json.loads(resume["progress"]))
        torch.set_rng_state(resume["rng"])
        reporter.message(f"resuming '{label}' from step {state['step']} of {total}")
    eval_backoff = MemoryBackOff(reporter.message, "evaluation")
    # The epoch's loss is added up where it is computed and read once per epoch (and at checkpoints); the bar
    # shows each step's loss on the CPU, and on a GPU the one read every SHOW_LOSS_EVERY steps (a host sync).
    epoch_loss = torch.tensor(state["epoch_loss"], dtype=torch.float32 if device.type == "mps" else torch.float64,
                              device=device)
    shown = None

    def validate(what: str) -> dict:
        return evaluate(learner_scorer(learner), val, pad_id, config.eval_batch_size, reporter, f"{label} {what}", eval_backoff,
                        device)

    def checkpoint() -> None:
        state["epoch_loss"] = float(epoch_loss)
        if save is not None and processes.main:
            save({"module": learner.trainable(), "optimizer": optimizer.state_dict(), "best_module": best,
                  "progress": json.dumps(state), "rng": torch.get_rng_state()})

    if config.scoring != "joint" and state["start_accuracy"] is None:
        current, start = best, learner.untrained_start()
        learner.module.load_state_dict(start, strict=False)
        state["start_accuracy"] = state["best_accuracy"] = validate("untrained start")["accuracy"]
        state["best_epoch"], best = 0, start
        learner.module.load_state_dict(current, strict=False)
        reporter.message(f"{label}: the untrained start scores {state['start_accuracy']:.3f} on validation")

    backoff = MemoryBackOff(reporter.message, "training")
    # From the first epoch whose validation is not made: a checkpoint taken at an epoch's last step, before
    # its validation, resumes into that validation (not past it).
    for epoch in range(len(state["history"]), config.epochs):
        batches = batch_indices(train, config.batch_size, shuffle=True, seed=config.seed * 1000 + epoch)
        done_in_epoch = state["step"] - epoch * steps_per_epoch
        reporter.start(f"{label} epoch {epoch + 1}/{config.epochs}", len(batches), completed=done_in_epoch)
        for idx in batches[done_in_epoch:]:
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * lr_factor(state["step"], total, warmup)
            loss = backoff.run([train[i] for i in processes.share(idx)], lambda pieces: train_step(
                learner, optimizer, pieces, pad_id, config.clip, len(idx), penalty, processes, scaler))
            learner.after_step(state["step"])
            state["step"] += 1
            epoch_loss += loss
            if device.type == "cpu" or shown is None or state["step"] % SHOW_LOSS_EVERY == 0:
                shown = float(loss)
            reporter.advance(1, loss=shown)
            if stop_after_steps is not None and state["step"] >= stop_after_steps:
                checkpoint()
                reporter.stop()
                return dict(state, interrupted=True)
            # (an epoch's last step is saved after its validation: a checkpoint between the two would resume
            # past a validation never made, and pick the best epoch from fewer epochs)
            if state["step"] % config.checkpoint_every == 0 and state["step"] % steps_per_epoch != 0:
                checkpoint()
        reporter.stop()
        val_metrics = validate("validation")
        state["epoch_loss"] = float(epoch_loss)
        state["history"].append({"epoch": epoch + 1, "train_loss": round(state["epoch_loss"] / len(batches), 4),
                                 "validation_accuracy": val_metrics["accuracy"], "validation_macro_f1": val_metrics["macro_f1"]})
        state["epoch_loss"] = 0.0
        epoch_loss.zero_()
        reporter.message(f"{label} epoch {epoch + 1}: validation accuracy {val_metrics['accuracy']:.3f}")
        if val_metrics["accuracy"] > state["best_accuracy"]:
            state["best_accuracy"], state["best_epoch"] = val_metrics["accuracy"], epoch + 1
            best = {n: t.detach().clone() for n, t in learner.trainable().items()}
        checkpoint()
    learner.module.load_state_dict(best, strict=False)
    return state
