"""`Bank`: one store's prompt bank through the API: its entries (list, show, remove, export, import), routers
fitted over them (fit, score with no task id, check against the bank), and answers to new questions."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from baas.prompts_bank.bank import BankEntry, PromptBank
from baas.prompts_bank.errors import BaasError
from baas.router.router import Router
from baas.store import Store, StoreError, parse_entry_ref
from baas.training.api.progress import reporter_for
from baas.training.api.resolve import names, open_store
from baas.training.api.results import (Answer, ExportResult, FuseResult, ImportResult, PredictResult, Removal, RemoveResult)
from baas.training.api.tasks import questions
from baas.training.backbone import Backbone, load_backbone
from baas.training.config import TrainConfig
from baas.training.data import MCQExample, load_task_data
from baas.training.metrics import accuracy_interval, mean_accuracy_interval, wilson_interval
from baas.training.fusion import (DEFAULT_QUERY, DEFAULT_RULE, DEFAULT_STRATEGY, SPACES, STRATEGIES, Query, StaleRouterWarning,
                                   eval_set, evaluate_fused, fit_router, load_bank, route_questions, router_problems,
                                   routers_using)


class Bank:
    """The prompt bank in one store: its entries, routers over them, and answers with no task id.

    `Bank(path)` opens the store at `path` (default: $BAAS_HOME, else ~/.baas) and refuses a folder that holds
    no store, as the CLI does; `create=True` makes one there (to import entries into). A backbone it loads goes
    on `device` in `precision` (see TrainConfig; a Backbone given stays where it is)."""

    def __init__(self, store: str | Path | Store | None = None, backbone: str | Backbone | None = None, *, create: bool = False,
                 device: str = TrainConfig.device, precision: str = TrainConfig.precision):
        TrainConfig(device=device, precision=precision).check()
        self.store = open_store(store, create=create)
        self._backbone, self._device, self._precision = backbone, device, precision
        self.router: Router | None = None
        self.router_name: str | None = None

    def __repr__(self) -> str:
        return f"Bank({str(self.store.root)!r})"

    def backbone(self, like: str | None = None) -> Backbone:
        if not isinstance(self._backbone, Backbone):
            self._backbone = load_backbone(self._backbone or like, self._device, self._precision)
        return self._backbone

    # ---- the entries ------------------------------------------------------------------------------

    def entries(self) -> list[dict]:
        """The newest version of every entry (name, version, backbone, metrics with their split, size and 95%
        interval, meta)."""
        return [_with_interval(row) for row in self.store.list_entries()]

    def load(self, name: str) -> BankEntry:
        """One entry's tensors and metadata: `NAME` (newest) or `NAME@vN`."""
        return self.store.load_entry(*parse_entry_ref(name))

    def describe(self, name: str, version: int | None = None) -> dict:
        """What `baas bank show` prints of `NAME` (newest), `NAME@vN` or `version`: the catalog's record (meta,
        metrics, backbone, file) with every version of the task (`all_versions`, newest first) and the
        `tensors`' shapes, read from the file, which is verified. Metrics carry the accuracy's 95% Wilson interval
        over its `n_eval` questions (`accuracy_interval`)."""
        task, at = parse_entry_ref(name)
        entry = self.store.load_entry(task, at or version)
        info = self.store.describe(task, entry.version)
        info["all_versions"] = [v["version"] for v in self.store.versions(task)]
        info["tensors"] = {k: list(v.shape) for k, v in entry.tensors().items()}
        return _with_interval(info)

    def routers_using(self, name: str) -> list[str]:
        """The saved routers fitted on an entry (`NAME`: any version; `NAME@vN`: that one), newest first."""
        return routers_using(self.store, *parse_entry_ref(name))

    def remove(self, name: str, *, confirm: Callable[[Removal], bool] | None = None) -> RemoveResult:
        """Remove `NAME@vN`, or every version of `NAME`, as `baas bank rm` does. `confirm`, when given, is shown
        what would go (the versions, and the saved routers fitted on them, which then refuse to answer until
        `fuse` is rerun) and decides: False deletes nothing and raises a BaasError."""
        task, version = parse_entry_ref(name)
        self.store.describe(task, version)  # there is such an entry (else the store's one-line error)
        doomed = [v["version"] for v in self.store.versions(task) if version is None or v["version"] == version]
        using = routers_using(self.store, task, version)
        if confirm is not None and not confirm(Removal(task=task, version=version, versions=sorted(doomed), routers=using)):
            raise BaasError("nothing deleted")
        removed = self.store.remove(task, version)
        return RemoveResult(task=task, version=version, removed_versions=removed, routers=using)

    def export(self, name: str, folder: str | Path) -> ExportResult:
        """Write one entry (`NAME` or `NAME@vN`) as a self-contained folder to share, as `baas bank export` does."""
        task, version = parse_entry_ref(name)
        path = self.store.export_entry(task, version, Path(folder))
        return ExportResult(task=task, folder=str(path),
                            files=sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()))

    def import_entry(self, folder: str | Path, name: str | None = None) -> ImportResult:
        """Check a folder written by `export` and add it as a new version of `name` (default: its exported name),
        as `baas bank import` does. The saved routers do not know the new entry (they never route there until
        `fuse` is rerun): a StaleRouterWarning names them."""
        entry = self.store.import_entry(Path(folder), name)
        added = f"{entry.task}@v{entry.version}"
        blind = [r["name"] for r in self.routers() if any(added in line for line in r["problems"])]
        if blind:
            many = len(blind) > 1
            warnings.warn(f"the saved router{'s' if many else ''} {', '.join(repr(r) for r in blind)} {'do' if many else 'does'} "
                          f"not know {added}, so predict never routes there; rerun `baas fuse` to include it",
                          StaleRouterWarning, stacklevel=2)
        return ImportResult(task=entry.task, version=entry.version)

    # ---- routers ------------------------------------------------------------------------------------

    def routers(self) -> list[dict]:
        """The saved routers, newest first (the first is the one `predict` uses by default): name, strategy, rule,
        query, space, the entries each was fitted on, and `problems` (what `check_router` says of it)."""
        out = []
        for saved in self.store.artifacts("router"):
            meta = saved["meta"]
            row = {"name": saved["name"], "strategy": meta.get("strategy"), "rule": meta.get("rule"), "query": meta.get("query"),
                   "space": meta.get("space", "prompt"), "created": saved["created"]}
            try:
                router = Router.from_state(*self.store.load_artifact("router", saved["name"]))
                row["entries"] = [f"{t}@v{v}" for t, v in zip(router.tasks, router.versions)]
                row["problems"] = router_problems(router, self.store, saved["name"])
            except BaasError as exc:
                row["problems"] = [str(exc)]
            out.append(row)
        return out

    def _fit(self, strategy: str, tasks: list[str] | None, rule: str, query: Query, temperature: float,
             data_dir) -> tuple[PromptBank, Router]:
        listed = {r["task"]: r for r in self.entries()}
        chosen = tasks or list(listed)
        first = chosen[0].partition("@")[0] if chosen else None
        bb = self.backbone(listed[first]["backbone"] if first in listed else None)
        bank = load_bank(self.store, bb, chosen)
        router = fit_router(bank, bb, self.store, rule, strategy, query, data_dir, temperature)
        return bank, replace(router, selection=list(tasks) if tasks else None)

    def fuse(self, strategy: str = DEFAULT_STRATEGY, *, tasks: list[str] | None = None, rule: str = DEFAULT_RULE,
             query: str = str(DEFAULT_QUERY), temperature: float = 1.0, space: str = "prompt", data_dir=None,
             save: bool = True) -> Router:
        """Fit a router over the bank (or the entries `tasks` names) and, by default, save it in the store under
        the strategy's name; `predict` then uses it. No evaluation: `fuse_and_evaluate` also answers every task's
        evaluation questions (what `baas fuse` does), and `evaluate` scores the router fitted here."""
        if strategy == "all":
            raise BaasError("strategy 'all' is chosen by evaluation: use Bank.fuse_and_evaluate('all', ...), which saves the best")
        if space not in SPACES:
            raise BaasError(f"unknown space '{space}'; expected {' or '.join(SPACES)}")
        _, router = self._fit(strategy, names(tasks), rule, Query.parse(query), temperature, data_dir)
        self.router, self.router_name = replace(router, space=space), strategy
        if save:
            self.store.save_artifact("router", strategy, *self.router.state())
        return self.router

    def fuse_and_evaluate(self, strategy: str = DEFAULT_STRATEGY, *, tasks: str | list[str] | None = None, rule: str = DEFAULT_RULE,
                          query: str = str(DEFAULT_QUERY), temperature: float = 1.0, space: str = "prompt",
                          split: str = "eval", max_eval: int | None = 200, data_dir=None, skip_invalid: bool = False,
                          progress: bool = True, reporter=None, save: bool = True) -> FuseResult:
        """What `baas fuse` does: fit a router, answer every entry's evaluation questions (`split`: eval or
        validation) with no task id under `strategy` (or every strategy: `all`) in `space` (prompt, output or
        both), and save one router per strategy, in the space where it did best, the best one last: the one
        `predict` uses, named by the result's `router`. Each report carries 95% intervals: each task's accuracy
        its Wilson interval (`accuracy_interval`, over its `n` questions), the mean over tasks a bootstrap over
        the questions (`mean_accuracy_interval`, `n` the questions of all tasks)."""
        from baas.training.parallel import Processes

        if space not in (*SPACES, "both"):
            raise BaasError(f"unknown --space '{space}'; expected prompt, output or both")
        if split not in ("eval", "validation"):
            raise BaasError(f"unknown --split '{split}'; expected eval or validation")
        spec = Query.parse(query)
        bank, router = self._fit("hard" if strategy == "all" else strategy, names(tasks), rule, spec, temperature, data_dir)
        wide = lambda s: s.startswith("topk") and int(s[4:]) >= len(bank)  # noqa: E731 - every entry: soft's weights
        if wide(strategy):
            raise BaasError(f"{strategy} on a bank of {len(bank)} entries weighs every entry, as soft does: use soft, or "
                            f"topk<k> with k below {len(bank)}")
        bb = self.backbone()
        datasets = [load_task_data(e.meta["dataset"], data_dir, max_eval=max_eval, skip_invalid=skip_invalid,
                                   format=e.meta.get("format")) for e in bank.entries]
        evals = eval_set(bank, datasets, bb, self.store, spec, split)
        strategies = [s for s in STRATEGIES if not wide(s)] if strategy == "all" else [strategy]
        results = _intervals(evaluate_fused(bank, router, bb, evals, strategies, list(SPACES) if space == "both" else [space],
                                            reporter=reporter_for(reporter, progress), store=self.store, per_question=True))
        if strategy != "all":  # the oracle was computed as the reference; the report is the strategy asked for
            results = [r for r in results if r["strategy"] == strategy]
        deployable = [r for r in results if r["strategy"] != "oracle"] or results
        best = max(deployable, key=lambda r: r["mean_accuracy"])  # (the first of equals)
        kept: dict[str, dict] = {}  # per strategy, the space where it did best (the first of equals)
        for r in deployable:
            if r["strategy"] not in kept or r["mean_accuracy"] > kept[r["strategy"]]["mean_accuracy"]:
                kept[r["strategy"]] = r
        for r in [*(r for s, r in kept.items() if s != best["strategy"]), best]:  # the best saved last: `predict` takes it
            fitted = replace(router.with_strategy(r["strategy"]), space="output" if r["space"] == "output" else "prompt")
            if save and Processes().main:
                r["router_file"] = str(self.store.save_artifact("router", r["strategy"], *fitted.state()))
            self.router, self.router_name = fitted, r["strategy"]
        best["router"] = best["strategy"]
        return FuseResult(strategies=results, best=best, router=best["strategy"])

    def check_router(self, name: str | None = None) -> list[str]:
        """Whether a router (default: the one `predict` would use) still fits the bank: raises a BaasError naming
        the router and the entries when an entry it was fitted on is gone or changed; returns one line per router
        that does not know an entry the bank holds now (it never routes there). Each says to rerun `baas fuse`."""
        router = self._loaded_router(name)
        return router_problems(router, self.store, self.router_name)

    def evaluate(self, strategies: list[str] | None = None, *, data_dir=None, max_eval: int | None = 200,
                 space: str = "prompt") -> list[dict]:
        """Every bank task's evaluation questions answered with no task id (the fitted router's tasks), per
        strategy: the reports `FuseResult.strategies` holds."""
        router = self._loaded_router()
        self._stale(router)
        bb, bank = self.backbone(), self._bank(router)
        datasets = [load_task_data(e.meta["dataset"], data_dir, max_eval=max_eval, format=e.meta.get("format"))
                    for e in bank.entries]
        evals = eval_set(bank, datasets, bb, self.store, Query.parse(router.query))
        return _intervals(evaluate_fused(bank, router, bb, evals, strategies or [router.strategy.name], [space],
                                         store=self.store, per_question=True))

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

    def _stale(self, router: Router) -> list[str]:
        """Refuses a router fitted on an entry that is gone; warns (StaleRouterWarning) of each entry it does not
        know, and returns those lines."""
        lines = router_problems(router, self.store, self.router_name)
        for line in lines:
            warnings.warn(line, StaleRouterWarning, stacklevel=3)
        return lines

    def _bank(self, router: Router) -> PromptBank:
        first = self.store.describe(router.tasks[0], router.versions[0])
        bb = self.backbone(first["backbone"])
        return PromptBank([self.store.load_entry(t, v, backbone=bb.name, hidden_size=bb.hidden_size)
                           for t, v in zip(router.tasks, router.versions)])

    def predict(self, question: str | list, options: list | None = None, *, contexts=None, router: str | None = None,
                top: int | None = None) -> PredictResult:
        """Answer questions with no task id (as `baas predict` does): per question its `answer` (index),
        `answer_text`, the `probabilities` of every option and the `entries` it used with their weights (the
        `top` largest, default all). Questions need no label; with labels, `accuracy` is reported on those.
        `router`: a saved router's name (default: the one fitted last here, else the newest saved). A router
        fitted on an entry that is gone is refused; one that does not know an entry added since gives a
        StaleRouterWarning (also in the result's `warnings`). Both name the router and the entry, and say to
        rerun `baas fuse`."""
        from baas.training.metrics import mcq_metrics

        examples = question if isinstance(question, list) and question and isinstance(question[0], MCQExample) \
            else questions(question, options, contexts)
        fitted = self._loaded_router(router)
        stale = self._stale(fitted)
        rows = route_questions(fitted, self._bank(fitted), self.backbone(), examples, self.store)
        answers = [Answer(**dict(row, entries=row["entries"][:top])) for row in rows]
        labelled = [(e.label, a.answer) for e, a in zip(examples, answers) if e.label is not None]
        accuracy = mcq_metrics(*map(list, zip(*labelled)))["accuracy"] if labelled else None
        return PredictResult(router=self.router_name, strategy=fitted.strategy.name, rule=fitted.rule.name, space=fitted.space,
                             predictions=answers, warnings=stale, accuracy=accuracy, n_labelled=len(labelled))


def _with_interval(record: dict) -> dict:
    """A catalog record whose metrics (an accuracy over `n_eval` questions) gain its 95% Wilson interval."""
    metrics = record.get("metrics")
    if isinstance(metrics, dict) and "accuracy" in metrics:
        metrics["accuracy_interval"] = accuracy_interval(metrics.get("accuracy"), metrics.get("n_eval"))
    return record


def _intervals(reports: list[dict]) -> list[dict]:
    """Fused reports with 95% intervals: per task Wilson's (its `correct` per question then dropped), the mean
    over tasks a percentile bootstrap over each task's questions (eval-forgetting's resampling), with `n`."""
    for r in reports:
        r["mean_accuracy_interval"] = mean_accuracy_interval({t["task"]: t.get("correct") for t in r["per_task"]})
        r["n"] = sum(t["n"] for t in r["per_task"])
        for t in r["per_task"]:
            correct = t.pop("correct", None)
            t["accuracy_interval"] = wilson_interval(sum(correct), len(correct)) if correct else accuracy_interval(t["accuracy"], t["n"])
    return reports
