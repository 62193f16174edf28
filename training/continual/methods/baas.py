"""baas as a continual method: one frozen bank entry (pair + head) per task, trained by `train_pair` and kept in
the store, with the entry's query summary; a router refitted from the summaries after each task (never an
earlier task's text). The same bank also gives the oracle row: each question sent to its own task's entry."""

from __future__ import annotations

from dataclasses import replace

from baas.prompts_bank.bank import PromptBank
from baas.training.continual.context import Context
from baas.training.continual.method import PROMPT_GRID, Method, cell_of
from baas.training.fusion import Query, eval_set, evaluate_fused, fit_router
from baas.training.trainer import train_pair


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

    def chosen(self, k: int) -> dict:
        """Also the strategies, in order: the first is the one whose cells are named `baas` (`Results.baas_first`)."""
        return dict(super().chosen(k), strategies=self.strategies)

    def resume(self, first_step: dict | None) -> None:
        """The rate chosen before a stop (the first step's record), so the other tries are not remade."""
        if first_step and first_step.get("lr") is not None:
            self.lr = float(first_step["lr"])

    def entry(self, task: str, lr: float) -> tuple[int, float, bool]:
        """(version, best validation accuracy, found in the store) of the task's entry trained at `lr`."""
        ctx = self.ctx
        result = train_pair(task, ctx.data(task), ctx.backbone, ctx.store, replace(ctx.config, lr=lr), ctx.reporter)
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
                    cells[self.matrix_of(r["strategy"])][i] = cell_of(r["per_task"][i])
        if k + 1 in rows:  # the next task, before its entry exists: routed to the entries there are
            for r in run([k + 1], oracle=False):
                cells[self.matrix_of(r["strategy"])][k + 1] = cell_of(r["per_task"][0])
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
