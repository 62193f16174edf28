"""The continual-learning protocol behind `baas eval-forgetting`: tasks learned one after another, the
accuracy matrix R[k][i] filled as they go, and the methods compared on the same data, order and budget.

    for each order of the tasks:
      for each method (registry.METHODS):
        for k, task in enumerate(order):
          method.learn(k)           its state after task k (read back from the store when already made)
          method.evaluate(k, rows)  R[k][i] for the tasks a metric reads: i <= k, and i = k + 1 (for FWT)

Every cell is appended to `DIR/cells.jsonl` (results.py) the moment it is known, and every state a method
reaches is saved in the store before its cells are computed. A rerun of the same command skips both, so a run
stopped anywhere ends with the figures an unstopped one gives (training is seeded per task)."""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import time
from pathlib import Path

import torch

from baas.prompts_bank.errors import BaasError
from baas.router.strategies import make_strategy
from baas.store import Store
from baas.training.backbone import Backbone, resolve_precision
from baas.training.continual.context import Context, Settings
from baas.training.continual.method import Method
from baas.training.continual.methods.baas import Baas
from baas.training.continual.registry import METHODS
from baas.training.continual.results import CELLS, Results
from baas.training.continual.summary import build_report
from baas.training.metrics import chance
from baas.training.progress import Reporter


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _step(method: Method, results: Results, o: int, name: str, k: int, T: int) -> None:
    """Task k of one method: learn it (or load its state), then evaluate the cells still missing."""
    missing = [i for i in method.rows(k) if not all(results.has(o, m, k, i) for m in method.matrices())]
    done = results.steps.get((o, name, k))
    if done is not None and not missing and name != "baas":
        return  # nothing left at this step (baas always looks its entry up: its bank is rebuilt from them)
    started, cpu_started = time.perf_counter(), time.process_time()
    method.learn(k)
    learned, cpu_learned = time.perf_counter(), time.process_time()
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
        # CPU seconds (every thread of the process) beside the wall time: another job on the machine stretches the
        # wall time of a step, much less its CPU time
        results.add_step(o, name, k, learn_seconds=round(learned - started, 2),
                         eval_seconds=round(time.perf_counter() - learned, 2), reused=method.reused,
                         learn_cpu_seconds=round(cpu_learned - cpu_started, 2),
                         eval_cpu_seconds=round(time.process_time() - cpu_learned, 2),
                         peak_rss_mb=round(peak_rss_mb(), 1), **chosen)


def run_protocol(settings: Settings, methods: list[str], strategies: list[str], backbone: Backbone, store: Store,
                 out: Path, data_dir=None, reporter: Reporter | None = None, report_only: bool = False) -> dict:
    """Run (or resume) every method over every order; returns the report (`summary.build_report`). `report_only`
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
    identity = settings.identity(backbone.name, resolve_precision(settings.config.precision, backbone.device))
    ctx = Context(settings, backbone, store, data_dir, reporter)
    if report_only and not (out / CELLS).is_file():
        raise BaasError(f"{out} holds no results yet (no {CELLS}): nothing to report; run the same command without "
                        "--report-only to start the run")
    results = Results(out, identity, writer=ctx.processes.main)
    for o in range(settings.orders) if "baas" in methods else ():
        recorded = results.baas_first(o, strategies)
        if recorded is not None and recorded != strategies[0]:
            if not report_only:
                raise BaasError(f"{out}: its cells name `baas` the strategy '{recorded}' (the first of --strategies when "
                                f"they were made); resume with '{recorded}' first, or show '{strategies[0]}' as baas "
                                "with --report-only")
            results.relabel_baas(o, recorded, strategies[0])
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
    out = build_report(settings, methods, strategies, results, backbone.name, chances, validation_chances)
    out["processes"] = ctx.processes.world  # this command's, under a launch (the figures do not depend on it)
    return out
