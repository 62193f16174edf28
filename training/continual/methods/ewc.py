"""ewc: baas's pair and head trained on the tasks in turn, with an EWC penalty (diagonal Fisher, summed over
tasks) against drifting from what earlier tasks needed."""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F

from baas.prompts_bank.errors import BaasError
from baas.training.batching import Encoded, batch_indices, collate
from baas.training.continual.context import Context
from baas.training.continual.method import learner_metrics
from baas.training.continual.methods.sequential import Sequential


class EWC(Sequential):
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
            Sequential.train(self, 1)
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
