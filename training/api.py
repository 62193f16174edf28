"""The Python API `import baas` offers: train a task into the bank, look at the bank, fit a router over it,
and answer questions (labelled or not) with no task id. The CLI's `predict` is built on `Bank.predict`."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from baas.prompts_bank.bank import BankEntry, PromptBank
from baas.prompts_bank.errors import BaasError
from baas.router.router import Router
from baas.store import Store, StoreError
from baas.training.backbone import Backbone, load_backbone
from baas.training.config import TrainConfig
from baas.training.data import MCQExample, load_task_data, make_example
from baas.training.routing import DEFAULT_QUERY, DEFAULT_RULE, Query, eval_set, evaluate_fused, fit_router, load_bank, route_questions


def train_task(dataset: str, *, name: str | None = None, data_dir: str | Path | None = None, store: str | Path | None = None,
               backbone: str | Backbone | None = None, max_train: int | None = None, max_eval: int | None = None,
               format: str | None = None, reporter=None, force: bool = False, **settings) -> dict:
    """Train `dataset`'s prompt pair and head and save it to the bank as entry `name` (default: the dataset's
    name). `settings` are `TrainConfig` fields (epochs, lr, depth, prefix_len, ...). Returns the result
    record `baas train-task --json` prints; an entry already made with the same data and settings is
    returned as it is (`reused`), unless `force`."""
    from baas.store.store import validate_task_name
    from baas.training.trainer import train_task as train

    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise BaasError(f"unknown setting {', '.join(unknown)}; TrainConfig has: {', '.join(sorted(known))}")
    config = TrainConfig(**settings)
    config.check()
    bb = backbone if isinstance(backbone, Backbone) else load_backbone(backbone)
    data = load_task_data(dataset, data_dir, max_train=max_train, max_eval=max_eval, format=format)
    return train(validate_task_name(name or dataset), data, bb, Store(store), config, reporter, force=force)


def questions(question: str | list, options: list | None = None, contexts: list[str] | str | None = None) -> list[MCQExample]:
    """Unlabelled questions from plain Python values: one question and its options, lists of both, or a
    list of dicts with `question`, `options` and optionally `context` (and `label` or `answer`)."""
    if isinstance(question, str):
        question, options = [question], [options]
        contexts = [contexts] if isinstance(contexts, str) or contexts is None else contexts
    out = []
    for i, q in enumerate(question):
        if isinstance(q, dict):
            row = q
        else:
            if options is None or i >= len(options) or options[i] is None:
                raise BaasError(f"question {i + 1} ({q!r}) has no options")
            row = {"question": q, "options": options[i], "context": (contexts or [None] * len(question))[i]}
        opts = row.get("options")
        if not isinstance(opts, (list, tuple)) or not all(isinstance(o, str) for o in opts):
            raise BaasError(f"question {i + 1}: expected its options as a list of strings, got {opts!r}")
        label = row.get("label")
        if label is None and row.get("answer") is not None:
            if row["answer"] not in opts:
                raise BaasError(f"question {i + 1}: answer {row['answer']!r} is not one of its options")
            label = list(opts).index(row["answer"])
        try:
            out.append(make_example(str(row.get("id", f"q{i + 1}")), str(row.get("question", "")), list(opts), label,
                                    label_field="label", options_field="options", context=row.get("context") or ""))
        except ValueError as exc:
            raise BaasError(f"question {i + 1}: {exc}") from None
    return out


class Bank:
    """The prompt bank in one store: its entries, routers over them, and answers with no task id."""

    def __init__(self, store: str | Path | None = None, backbone: str | Backbone | None = None):
        self.store = store if isinstance(store, Store) else Store(store)
        self._backbone = backbone
        self.router: Router | None = None
        self.router_name: str | None = None

    def backbone(self, like: str | None = None) -> Backbone:
        if not isinstance(self._backbone, Backbone):
            self._backbone = load_backbone(self._backbone or like)
        return self._backbone

    def entries(self) -> list[dict]:
        """The newest version of every entry (name, version, backbone, metrics with their split and size, meta)."""
        return self.store.list_entries()

    def load(self, name: str) -> BankEntry:
        """One entry's tensors and metadata: `NAME` (newest) or `NAME@vN`."""
        from baas.store.store import parse_entry_ref

        return self.store.load_entry(*parse_entry_ref(name))

    def fuse(self, strategy: str = "hard", *, tasks: list[str] | None = None, rule: str = DEFAULT_RULE,
             query: str = str(DEFAULT_QUERY), temperature: float = 1.0, data_dir=None, save: bool = True) -> Router:
        """Fit a router over the bank (or the entries `tasks` names) and, by default, save it in the store
        under the strategy's name, as `baas fuse` does. `evaluate` scores it on the tasks' own questions."""
        listed = {r["task"]: r for r in self.entries()}
        first = (tasks[0].partition("@")[0] if tasks else next(iter(listed), None))
        bb = self.backbone(listed[first]["backbone"] if first in listed else None)
        bank = load_bank(self.store, bb, tasks)
        self.router = fit_router(bank, bb, self.store, rule, strategy, Query.parse(query), data_dir, temperature)
        self.router_name = strategy
        if save:
            self.store.save_artifact("router", strategy, *self.router.state())
        return self.router

    def evaluate(self, strategies: list[str] | None = None, *, data_dir=None, max_eval: int | None = 200,
                 space: str = "prompt") -> list[dict]:
        """Every bank task's evaluation questions answered with no task id (the fitted router's tasks), per
        strategy: the records `baas fuse --json` prints."""
        router = self._loaded_router()
        bb, bank = self.backbone(), self._bank(router)
        datasets = [load_task_data(e.meta["dataset"], data_dir, max_eval=max_eval, format=e.meta.get("format"))
                    for e in bank.entries]
        evals = eval_set(bank, datasets, bb, self.store, Query.parse(router.query))
        return evaluate_fused(bank, router, bb, evals, strategies or [router.strategy.name], [space], store=self.store)

    def _loaded_router(self, name: str | None = None) -> Router:
        if name is None and self.router is not None:
            return self.router
        saved = self.store.artifacts("router")
        if not saved:
            raise StoreError(f"no router in store {self.store.root}: run `baas fuse` first (in Python: Bank.fuse)")
        name = name or saved[0]["name"]
        loaded = self.store.load_artifact("router", name)
        if loaded is None:
            raise StoreError(f"no router '{name}' in store {self.store.root}; saved routers: {', '.join(r['name'] for r in saved)}")
        self.router, self.router_name = Router.from_state(*loaded), name
        return self.router

    def _bank(self, router: Router) -> PromptBank:
        first = self.store.describe(router.tasks[0], router.versions[0])
        bb = self.backbone(first["backbone"])
        return PromptBank([self.store.load_entry(t, v, backbone=bb.name, hidden_size=bb.hidden_size)
                           for t, v in zip(router.tasks, router.versions)])

    def predict(self, question: str | list, options: list | None = None, *, contexts=None, router: str | None = None) -> list[dict]:
        """Answer questions with no task id: per question its `answer` (index), `answer_text`, the
        `probabilities` of every option and the `entries` it used with their weights. Questions need no
        label. `router`: a saved router's name (default: the one fitted last, else the newest saved)."""
        examples = question if isinstance(question, list) and question and isinstance(question[0], MCQExample) \
            else questions(question, options, contexts)
        fitted = self._loaded_router(router)
        bank = self._bank(fitted)
        return route_questions(fitted, bank, self.backbone(), examples, self.store)
