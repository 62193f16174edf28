"""The Python API `import baas` offers, with the CLI's reach: train a task into the bank, evaluate an entry,
run the continual protocol, look after the bank (list, load, remove, export, import), fit a router over it,
and answer questions (labelled or not) with no task id. The CLI's `train-task`, `fuse`, `predict` and `bank`
commands are built on these calls."""

from __future__ import annotations

import sys
import warnings
from dataclasses import fields, replace
from pathlib import Path

from baas.prompts_bank.bank import BankEntry, PromptBank
from baas.prompts_bank.errors import BaasError
from baas.router.router import Router
from baas.store import Store, StoreError
from baas.store import default_store_path, parse_entry_ref, validate_task_name
from baas.training.backbone import Backbone, load_backbone
from baas.training.config import TrainConfig
from baas.training.data import MCQExample, RowError, load_task_data, question_from_row
from baas.training.loop import Reporter
from baas.training.routing import (DEFAULT_QUERY, DEFAULT_RULE, SPACES, STRATEGIES, Query, StaleRouterWarning, eval_set,
                                   evaluate_fused, fit_router, load_bank, route_questions, router_problems, routers_using)


def open_store(store: str | Path | Store | None = None, *, create: bool = True) -> Store:
    """The store at `store` (default: $BAAS_HOME, else ~/.baas). With `create=False` a folder that holds no store
    is an error, and nothing is made there: reading a bank that is not there is a mistake to name, not an empty bank."""
    if isinstance(store, Store):
        return store
    root = (Path(store) if store else default_store_path()).expanduser()
    if not create and not (root / "catalog.sqlite").is_file():
        raise StoreError(f"no store at {root} (no catalog.sqlite there); train a task into it first, or pass the --store "
                         "that holds your bank")
    return Store(root)


class ProgressBars(Reporter):
    """Progress for the Python API: a tqdm bar per stage (`tqdm.auto`: a widget in a notebook, a text bar on
    stderr elsewhere), one over a whole multi-step run, and messages on stderr. Silent on all but the main
    process under a launcher. Every call that trains or evaluates takes `progress=False` to turn it off."""

    def __init__(self):
        from baas.training.parallel import Processes

        self.quiet = not Processes().main
        self.bar = None
        self.whole = None

    def _tqdm(self, **kwargs):
        from tqdm.auto import tqdm

        return tqdm(file=sys.stderr, dynamic_ncols=True, **kwargs)

    def message(self, text: str) -> None:
        if not self.quiet:
            from tqdm.auto import tqdm

            tqdm.write(text, file=sys.stderr)

    def start(self, label: str, total: int, completed: int = 0) -> None:
        self.stop()
        if not self.quiet:
            self.bar = self._tqdm(desc=label, total=total, initial=completed, leave=False)

    def advance(self, n: int = 1, **fields) -> None:
        if self.bar is not None:
            if fields:
                self.bar.set_postfix({k: f"{v:.3f}" for k, v in fields.items()}, refresh=False)
            self.bar.update(n)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def overall(self, total: int) -> None:
        if self.whole is not None:
            self.whole.close()
            self.whole = None
        if total and not self.quiet:
            self.whole = self._tqdm(desc="starting", total=total)

    def step(self, label: str, done: int) -> None:
        if self.whole is not None:
            self.whole.set_description(label, refresh=False)
            self.whole.update(done - self.whole.n)


def _reporter(reporter, progress: bool):
    """The reporter given, else bars (progress) or silence."""
    return reporter if reporter is not None else ProgressBars() if progress else Reporter()


def _backbone(backbone: str | Backbone | None, device: str | None = None, precision: str | None = None) -> Backbone:
    """A Backbone as given (it stays where it is), or loaded onto `device` (None: auto) in `precision`."""
    return backbone if isinstance(backbone, Backbone) else load_backbone(backbone, device, precision)


def train_task(dataset: str, *, name: str | None = None, data_dir: str | Path | None = None, store: str | Path | Store | None = None,
               backbone: str | Backbone | None = None, max_train: int | None = None, max_eval: int | None = None,
               format: str | None = None, skip_invalid: bool = False, progress: bool = True, reporter=None, force: bool = False,
               **settings) -> dict:
    """Train `dataset`'s prompt pair and head and save it to the bank as entry `name` (default: the dataset's
    name). `settings` are `TrainConfig` fields (epochs, lr, depth, prefix_len, ...). Returns the result
    record `baas train-task --json` prints; an entry already made with the same data and settings is
    returned as it is (`reused`), unless `force`. Progress bars unless `progress=False` (or another `reporter`)."""
    from baas.training.trainer import train_task as train

    name = validate_task_name(name or dataset)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise BaasError(f"unknown setting {', '.join(unknown)}; TrainConfig has: {', '.join(sorted(known))}")
    config = TrainConfig(**settings)
    config.check()
    st = open_store(store)
    data = load_task_data(dataset, data_dir, max_train=max_train, max_eval=max_eval, skip_invalid=skip_invalid, format=format)
    return train(name, data, _backbone(backbone, config.device, config.precision), st, config, _reporter(reporter, progress),
                 force=force)


def eval_task(name: str, *, version: int | None = None, data_dir: str | Path | None = None, store: str | Path | Store | None = None,
              backbone: str | Backbone | None = None, max_eval: int | None = None, skip_invalid: bool = False,
              progress: bool = True, reporter=None, device: str = TrainConfig.device,
              precision: str = TrainConfig.precision) -> dict:
    """Evaluate a bank entry (`NAME`, `NAME@vN`, or `version=`) on its dataset's evaluation split, as `baas eval-task`
    does: with `backbone`, the newest version trained on that backbone, loaded onto `device` in `precision`
    (see TrainConfig). Returns the record `--json` prints."""
    from baas.training.trainer import evaluate_entry

    st = open_store(store, create=False)
    task, at = parse_entry_ref(name)
    version = at or version
    info = st.describe(task, version)
    TrainConfig(device=device, precision=precision).check()
    bb = _backbone(backbone or info["backbone"], device, precision)
    if version is None:  # the newest version made for this backbone, when the newest overall is not
        version = next((v["version"] for v in st.versions(task) if v["backbone"] == bb.name), info["version"])
        info = st.describe(task, version)
    data = load_task_data(info["meta"]["dataset"], data_dir, max_eval=max_eval, skip_invalid=skip_invalid,
                          format=info["meta"].get("format"))
    return evaluate_entry(task, data, bb, st, _reporter(reporter, progress), version=version)


def _names(value: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [t.strip() for t in items if t.strip()] or None


def eval_forgetting(tasks: str | list[str] | None = None, methods: str | list[str] = "all",
                    strategies: str | list[str] = "hard,cluster,topk2", *, out: str | Path = "baas-forgetting", orders: int = 1,
                    data_dir: str | Path | None = None, backbone: str | Backbone | None = None, store: str | Path | Store | None = None,
                    max_train: int = 600, max_eval: int = 200, epochs: int = TrainConfig.epochs, seed: int = TrainConfig.seed,
                    scoring: str = TrainConfig.scoring, ewc_lambda: float | None = None, space: str = "output",
                    report_only: bool = False, progress: bool = True, reporter=None, command: str | None = None,
                    device: str = TrainConfig.device, precision: str = TrainConfig.precision) -> dict:
    """Learn `tasks` one after another with each of `methods` and measure what each keeps, as
    `baas eval-forgetting` does (see its help for every argument): the report is written to `out`
    (report.json, report.md, plots; cells.jsonl as results come, so a rerun resumes) and returned. The
    protocol's bank lives in `out/store` unless `store` names another; it never removes an entry it did not make."""
    from baas.training.continual import DEFAULT_ORDER, METHODS, Budget, Settings, run_protocol
    from baas.training.continual.report import write_report
    from baas.training.parallel import Processes

    names = list(METHODS) if methods == "all" else _names(methods) or []
    if space not in ("output", "prompt"):
        raise BaasError(f"unknown --space '{space}'; expected output or prompt")
    out = Path(out)
    settings = Settings(tasks=_names(tasks) or list(DEFAULT_ORDER), orders=orders,
                        budget=Budget(max_train, max_eval, epochs, seed), query=str(Query.parse("options:2")),
                        space=space, ewc_lambda=ewc_lambda,
                        config=TrainConfig(scoring=scoring, device=device, precision=precision))
    settings.config.check()  # a wrong --device or --precision is one line, before any model is loaded
    report = run_protocol(settings, names, _names(strategies) or [], _backbone(backbone, device, precision),
                          open_store(store or out / "store"), out, data_dir, _reporter(reporter, progress),
                          report_only=report_only)
    if Processes().main:
        write_report(report, out, command)
    return report


def questions(question: str | list, options: list | None = None, contexts: list[str] | str | None = None) -> list[MCQExample]:
    """Questions from plain Python values: one question and its options, lists of both, or a list of dicts with
    `question`, `options` and optionally `context`, `id` and `label` or `answer`. A question without an id gets
    the one `baas predict --file` gives the same row (a hash of its text and options)."""
    if isinstance(question, str):
        question, options = [question], [options]
        contexts = [contexts] if isinstance(contexts, str) or contexts is None else contexts
    out = []
    for i, q in enumerate(question):
        if isinstance(q, dict):
            row = dict(q)
        else:
            if options is None or i >= len(options) or options[i] is None:
                raise BaasError(f"question {i + 1} ({q!r}) has no options")
            row = {"question": q, "options": options[i], "context": (contexts or [None] * len(question))[i]}
        row = {k: list(v) if k == "options" and isinstance(v, tuple) else v for k, v in row.items() if v is not None}
        try:
            out.append(question_from_row(row))
        except RowError as exc:
            raise BaasError(f"question {i + 1}: {exc}") from None
    return out


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
        """The newest version of every entry (name, version, backbone, metrics with their split and size, meta)."""
        return self.store.list_entries()

    def load(self, name: str) -> BankEntry:
        """One entry's tensors and metadata: `NAME` (newest) or `NAME@vN`."""
        return self.store.load_entry(*parse_entry_ref(name))

    def routers_using(self, name: str) -> list[str]:
        """The saved routers fitted on an entry (`NAME`: any version; `NAME@vN`: that one), newest first."""
        return routers_using(self.store, *parse_entry_ref(name))

    def remove(self, name: str) -> dict:
        """Remove `NAME@vN`, or every version of `NAME`, as `baas bank rm --yes` does. Returns the record its
        `--json` prints; `routers` names the saved routers fitted on what went (they refuse to answer until
        `fuse` is rerun)."""
        task, version = parse_entry_ref(name)
        using = routers_using(self.store, task, version)
        removed = self.store.remove(task, version)
        return {"task": task, "version": version, "removed_versions": removed, "routers": using}

    def export(self, name: str, folder: str | Path) -> dict:
        """Write one entry (`NAME` or `NAME@vN`) as a self-contained folder to share, as `baas bank export` does."""
        task, version = parse_entry_ref(name)
        path = self.store.export_entry(task, version, Path(folder))
        return {"task": task, "folder": str(path),
                "files": sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())}

    def import_entry(self, folder: str | Path, name: str | None = None) -> dict:
        """Check a folder written by `export` and add it as a new version of `name` (default: its exported name),
        as `baas bank import` does."""
        entry = self.store.import_entry(Path(folder), name)
        return {"task": entry.task, "version": entry.version}

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
        names = tasks or list(listed)
        first = names[0].partition("@")[0] if names else None
        bb = self.backbone(listed[first]["backbone"] if first in listed else None)
        bank = load_bank(self.store, bb, names)
        router = fit_router(bank, bb, self.store, rule, strategy, query, data_dir, temperature)
        return bank, replace(router, selection=list(tasks) if tasks else None)

    def fuse(self, strategy: str = "hard", *, tasks: list[str] | None = None, rule: str = DEFAULT_RULE,
             query: str = str(DEFAULT_QUERY), temperature: float = 1.0, space: str = "prompt", data_dir=None,
             save: bool = True) -> Router:
        """Fit a router over the bank (or the entries `tasks` names) and, by default, save it in the store under
        the strategy's name; `predict` then uses it. No evaluation: `fuse_and_evaluate` also answers every task's
        evaluation questions (what `baas fuse` does), and `evaluate` scores the router fitted here."""
        if strategy == "all":
            raise BaasError("strategy 'all' is chosen by evaluation: use Bank.fuse_and_evaluate('all', ...), which saves the best")
        if space not in SPACES:
            raise BaasError(f"unknown space '{space}'; expected {' or '.join(SPACES)}")
        _, router = self._fit(strategy, _names(tasks), rule, Query.parse(query), temperature, data_dir)
        self.router, self.router_name = replace(router, space=space), strategy
        if save:
            self.store.save_artifact("router", strategy, *self.router.state())
        return self.router

    def fuse_and_evaluate(self, strategy: str = "hard", *, tasks: list[str] | None = None, rule: str = DEFAULT_RULE,
                          query: str = str(DEFAULT_QUERY), temperature: float = 1.0, space: str = "prompt",
                          split: str = "eval", max_eval: int | None = 200, data_dir=None, skip_invalid: bool = False,
                          progress: bool = True, reporter=None, save: bool = True) -> dict:
        """What `baas fuse` does: fit a router, answer every entry's evaluation questions (`split`: eval or
        validation) with no task id under `strategy` (or every strategy: `all`) in `space` (prompt, output or
        both), and save one router per strategy, in the space where it did best, the best one last: the one
        `predict` uses, named by `router` in the result. Returns the record `baas fuse --json` prints: the
        strategy's report, or with `all` {"strategies": [...], "best": {...}, "router": NAME}."""
        from baas.training.parallel import Processes

        if space not in (*SPACES, "both"):
            raise BaasError(f"unknown --space '{space}'; expected prompt, output or both")
        if split not in ("eval", "validation"):
            raise BaasError(f"unknown --split '{split}'; expected eval or validation")
        spec = Query.parse(query)
        bank, router = self._fit("hard" if strategy == "all" else strategy, _names(tasks), rule, spec, temperature, data_dir)
        wide = lambda s: s.startswith("topk") and int(s[4:]) >= len(bank)  # noqa: E731 - every entry: soft's weights
        if wide(strategy):
            raise BaasError(f"{strategy} on a bank of {len(bank)} entries weighs every entry, as soft does: use soft, or "
                            f"topk<k> with k below {len(bank)}")
        bb = self.backbone()
        datasets = [load_task_data(e.meta["dataset"], data_dir, max_eval=max_eval, skip_invalid=skip_invalid,
                                   format=e.meta.get("format")) for e in bank.entries]
        evals = eval_set(bank, datasets, bb, self.store, spec, split)
        strategies = [s for s in STRATEGIES if not wide(s)] if strategy == "all" else [strategy]
        results = evaluate_fused(bank, router, bb, evals, strategies, list(SPACES) if space == "both" else [space],
                                 reporter=_reporter(reporter, progress), store=self.store)
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
        return best if len(results) == 1 else {"strategies": results, "best": best, "router": best["strategy"]}

    def check_router(self, name: str | None = None) -> list[str]:
        """Whether a router (default: the one `predict` would use) still fits the bank: raises a BaasError naming
        the router and the entries when an entry it was fitted on is gone or changed; returns one line per router
        that does not know an entry the bank holds now (it never routes there). Each says to rerun `baas fuse`."""
        router = self._loaded_router(name, check=False)
        return router_problems(router, self.store, self.router_name)

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

    def _loaded_router(self, name: str | None = None, check: bool = True) -> Router:
        if name is None and self.router is not None:
            router = self.router
        else:
            saved = self.store.artifacts("router")
            if not saved:
                raise StoreError(f"no router in store {self.store.root}: run `baas fuse` first (in Python: Bank.fuse)")
            name = name or saved[0]["name"]
            loaded = self.store.load_artifact("router", name)
            if loaded is None:
                raise StoreError(f"no router '{name}' in store {self.store.root}; saved routers: {', '.join(r['name'] for r in saved)}")
            router = Router.from_state(*loaded)
            self.router, self.router_name = router, name
        if check:
            for line in router_problems(router, self.store, self.router_name):
                warnings.warn(line, StaleRouterWarning, stacklevel=3)
        return router

    def _bank(self, router: Router) -> PromptBank:
        first = self.store.describe(router.tasks[0], router.versions[0])
        bb = self.backbone(first["backbone"])
        return PromptBank([self.store.load_entry(t, v, backbone=bb.name, hidden_size=bb.hidden_size)
                           for t, v in zip(router.tasks, router.versions)])

    def predict(self, question: str | list, options: list | None = None, *, contexts=None, router: str | None = None) -> list[dict]:
        """Answer questions with no task id: per question its `id`, `answer` (index), `answer_text`, the
        `probabilities` of every option and the `entries` it used with their weights. Questions need no
        label. `router`: a saved router's name (default: the one fitted last here, else the newest saved).
        A router fitted on an entry that is gone is refused; one that does not know an entry added since gives
        a `StaleRouterWarning`. Both name the router and the entry, and say to rerun `baas fuse`."""
        examples = question if isinstance(question, list) and question and isinstance(question[0], MCQExample) \
            else questions(question, options, contexts)
        fitted = self._loaded_router(router)
        bank = self._bank(fitted)
        return route_questions(fitted, bank, self.backbone(), examples, self.store)


__all__ = ["Bank", "ProgressBars", "StaleRouterWarning", "eval_forgetting", "eval_task", "open_store", "questions", "train_task"]
