"""Tasks learned one after another: the continual protocol with every method (`eval_forgetting`), its plan and
rough cost before it starts (`plan_forgetting`), and the offline demo, the same protocol in small on the
generated tasks (`demo`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from baas.prompts_bank.errors import BaasError
from baas.store import Store, default_store_path
from baas.training.api.progress import reporter_for
from baas.training.api.resolve import backbone_of, names, open_store
from baas.training.api.results import DemoResult, ForgettingResult
from baas.training.backbone import Backbone
from baas.training.config import TrainConfig
from baas.training.fusion import DEFAULT_STRATEGIES, DEFAULT_STRATEGY, Query


def eval_forgetting(tasks: str | list[str] | None = None, methods: str | list[str] = "all",
                    strategies: str | list[str] = DEFAULT_STRATEGIES, *, out: str | Path = "baas-forgetting", orders: int = 1,
                    data_dir: str | Path | None = None, backbone: str | Backbone | None = None, store: str | Path | Store | None = None,
                    max_train: int = 600, max_eval: int = 200, epochs: int = TrainConfig.epochs, seed: int = TrainConfig.seed,
                    scoring: str = TrainConfig.scoring, ewc_lambda: float | None = None, space: str = "output",
                    report_only: bool = False, progress: bool = True, reporter=None, command: str | None = None,
                    device: str = TrainConfig.device, precision: str = TrainConfig.precision) -> ForgettingResult:
    """Learn `tasks` one after another with each of `methods` and measure what each keeps, as
    `baas eval-forgetting` does (see its help for every argument): the report is written to `out`
    (report.json, report.md, report.csv, plots; cells.jsonl as results come, so a rerun resumes; `command` is
    the command line the report names) and returned. The protocol's bank lives in `out/store` unless `store`
    names another; it never removes an entry it did not make. Failed methods are in the result's `failed`."""
    from baas.training.continual import DEFAULT_ORDER, METHODS, Budget, Settings, run_protocol, write_report
    from baas.training.parallel import Processes

    chosen = list(METHODS) if methods == "all" else names(methods) or []
    if space not in ("output", "prompt"):
        raise BaasError(f"unknown --space '{space}'; expected output or prompt")
    out = Path(out)
    settings = Settings(tasks=names(tasks) or list(DEFAULT_ORDER), orders=orders,
                        budget=Budget(max_train, max_eval, epochs, seed), query=str(Query.parse("options:2")),
                        space=space, ewc_lambda=ewc_lambda,
                        config=TrainConfig(scoring=scoring, device=device, precision=precision))
    settings.config.check()  # a wrong --device or --precision is one line, before any model is loaded
    report = run_protocol(settings, chosen, names(strategies) or [], backbone_of(backbone, device, precision),
                          open_store(store or out / "store"), out, data_dir, reporter_for(reporter, progress),
                          report_only=report_only)
    if Processes().main:
        write_report(report, out, command)
    return ForgettingResult(report=report, folder=out)


def plan_forgetting(tasks: str | list[str] | None = None, methods: str | list[str] = "all", *, max_train: int = 600,
                    max_eval: int = 200, epochs: int = TrainConfig.epochs, ewc_lambda: float | None = None,
                    backbone: str | Backbone | None = None, device: str = TrainConfig.device, precision: str = TrainConfig.precision, probe: bool = True) -> dict:
    """What `eval_forgetting` with these arguments will do, before it does it: methods x tasks x budget, the
    training steps and evaluated questions that implies (at most: a dataset may hold fewer questions), and with
    `probe` a rough time, extrapolated from a few timed training steps and evaluation batches of the budget's
    shape on `backbone` (synthetic token ids; data loading, caches and slower methods such as full_ft are not
    in it). A dict: methods, tasks, budget, train_steps, eval_questions, and when probed seconds_per_step,
    seconds_per_eval_question and estimated_seconds."""
    from baas.training.continual import DEFAULT_ORDER, EWC, METHODS

    chosen = list(METHODS) if methods == "all" else names(methods) or []
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise BaasError(f"unknown method {', '.join(map(repr, unknown))}; expected some of {', '.join(METHODS)}")
    order = names(tasks) or list(DEFAULT_ORDER)
    T, config = len(order), TrainConfig()
    per_task = -(-max_train // config.batch_size) * epochs  # optimiser steps for one task at the full budget
    steps = 0
    for m in chosen:
        if m == "zero_shot":
            continue  # nothing trained
        grid = max(1, len(getattr(METHODS[m], "lr_grid", None) or (1, 2, 3)))  # the first task once per rate
        steps += per_task * (T + grid - 1)
        if m == "ewc" and ewc_lambda is None:
            steps += per_task * 2 * len(EWC.lambda_grid)  # lambda chosen on the first two tasks
    evaluated = len(chosen) * T * (T + 1) // 2 * max_eval  # the cells a metric reads, each on max_eval questions
    plan = dict(methods=chosen, tasks=order, budget=dict(max_train=max_train, max_eval=max_eval, epochs=epochs),
                train_steps=steps, eval_questions=evaluated)
    if probe:
        bb = backbone_of(backbone, device, precision)
        per_step, per_question = _probe(bb, config)
        plan.update(seconds_per_step=per_step, seconds_per_eval_question=per_question,
                    estimated_seconds=steps * per_step + evaluated * per_question)
    return plan


def _probe(bb: Backbone, config: TrainConfig, options: int = 4, length: int = 96, repeats: int = 3) -> tuple[float, float]:
    """Seconds per training step (a batch of `config.batch_size` questions, each option a pass, forward and
    backward into a prompt) and per evaluated question (a no-grad batch of `config.eval_batch_size`), timed over
    `repeats` after one warm-up."""
    import time

    import torch

    length = min(length, bb.max_positions - 8)
    d = bb.hidden_size

    def batch(n: int, grad: bool) -> None:
        ids = torch.randint(5, max(6, len(bb.tokenizer) - 1), (n * options, length), device=bb.device)
        prefix = torch.zeros(n * options, 1, 8, d, device=bb.device, requires_grad=grad)
        with torch.set_grad_enabled(grad):
            pooled = bb.forward(ids, torch.ones_like(ids), prefix, torch.zeros(n * options, 1, 0, d, device=bb.device),
                                bb.default_pooling)
            if grad:
                pooled.sum().backward()
        if bb.device.type == "cuda":
            torch.cuda.synchronize(bb.device)

    def timed(n: int, grad: bool) -> float:
        batch(n, grad)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            batch(n, grad)
        return (time.perf_counter() - start) / repeats

    return timed(config.batch_size, True), timed(config.eval_batch_size, False) / config.eval_batch_size


def demo(*, store: str | Path | Store | None = None, backbone: str | Backbone | None = None, epochs: int = 2,
         progress: bool = True, reporter=None) -> DemoResult:
    """The offline tour `baas demo` gives: the generated tasks learned one after another into a bank (default:
    $BAAS_HOME/demo, else ~/.baas/demo), answered with no task id through the router, and compared with one
    pair trained on the same tasks in turn (naive). Needs no network and no data files; a rerun reuses what
    is done."""
    from baas.training.continual import Budget, Settings, run_protocol, write_report
    from baas.training.data import GENERATORS

    st = open_store(store or default_store_path() / "demo")
    bb = backbone_of(backbone)
    # Both methods train at the default prompt rate (eval-forgetting would try three on the first task).
    settings = Settings(tasks=list(GENERATORS), budget=Budget(max_train=None, max_eval=None, epochs=epochs, seed=0),
                        lr_grid=(TrainConfig.lr,))
    out = st.root / "forgetting" / hashlib.sha256(json.dumps([bb.name, epochs]).encode()).hexdigest()[:12]
    report = run_protocol(settings, ["baas", "naive"], [DEFAULT_STRATEGY], bb, st, out, reporter=reporter_for(reporter, progress))
    write_report(report, out, f"baas demo --epochs {epochs}")
    m = report["methods"]
    # each accuracy with its question count and 95% interval (Wilson per task; the metrics' bootstrap over questions)
    rows = [dict(task=t, chance=report["chance"][t], n=m["baas"]["n_matrix"][-1][i],
                 accuracy=m["baas"]["final_accuracy"][t], accuracy_interval=m["baas"]["final_accuracy_interval"][t],
                 oracle_accuracy=m["oracle"]["final_accuracy"][t], oracle_accuracy_interval=m["oracle"]["final_accuracy_interval"][t],
                 naive_accuracy=m["naive"]["final_accuracy"][t], naive_accuracy_interval=m["naive"]["final_accuracy_interval"][t])
            for i, t in enumerate(report["tasks"])]
    keys = ("average_accuracy", "average_incremental_accuracy", "bwt", "fwt", "forgetting", "intervals")
    forgetting = {name: {k: m[name][k] for k in keys} for name in ("baas", "oracle", "naive")}
    return DemoResult(backbone=bb.name, store=str(st.root), report=str(out), tasks=rows, forgetting=forgetting)
