"""`baas fuse`: fit the Attention Router over the bank, score it with no task id and save it for `predict`
(the API's `Bank.fuse_and_evaluate`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from baas.cli.config import configurable
from baas.cli.options import (DEFAULTS, BackboneOpt, ConfigOpt, DataDirOpt, DeviceOpt, JsonOpt, MaxEvalSomeOpt, PrecisionOpt, SkipOpt,
                              StoreOpt)
from baas.cli.render import Table, acc, emit, one_line_errors, say, show
from baas.training.fusion import DEFAULT_STRATEGY
from baas.training.metrics import few

TasksOpt = Annotated[Optional[str], typer.Option("--tasks", help="Comma-separated bank entries to use (default: every task in the bank).")]
QueryOpt = Annotated[str, typer.Option("--query", help="What a routing query is, KIND:LAYERS. KIND: context (question, then as much of the passage as fits), question, or options (question + options + passage); LAYERS: the backbone layers whose mean states are concatenated (0: the embeddings), e.g. context:2 or options:2,4,6. The pass stops after the deepest.")]
RuleOpt = Annotated[str, typer.Option("--rule", help="Routing rule fitted from the entries' query summaries: lda (shared covariance), qda (per-task Gaussians), linear (classifier on pseudo-queries), cosine (to each task's mean query), aoa (attention over the cosine, lda and qda distributions), fusion (a small learned attention over the entries, trained task by task), reg (fusion with its projection held near where earlier tasks left it), orth (fusion with updates kept off earlier tasks' query directions).")]


@one_line_errors
@configurable
def fuse(
    ctx: typer.Context,
    strategy: Annotated[str, typer.Option("--strategy", help="cluster (the default: the most likely group of alike tasks, its entries weighted within it; chosen on validation, see docs/results.md), hard (one entry, the cheapest), topk<k> (e.g. topk3), soft (every entry), memory (confidence-gated: hard when sure, soft when not), oracle (needs the task id: a reference), or all (every one, one table).")] = DEFAULT_STRATEGY,
    rule: RuleOpt = "lda",
    query: QueryOpt = "options:2",
    temperature: Annotated[float, typer.Option("--temperature", help="Divides the rule's log-probabilities before the strategy: above 1 spreads weight over more entries (soft, topk, memory).")] = 1.0,
    space: Annotated[str, typer.Option("--space", help="Where entries are mixed: prompt (one weighted pair and head, one forward pass), output (each entry's answer distribution, one pass per entry used), or both.")] = "prompt",
    tasks: TasksOpt = None,
    data_dir: DataDirOpt = None,
    backbone: BackboneOpt = None,
    store: StoreOpt = None,
    max_eval: MaxEvalSomeOpt = 200,
    split: Annotated[str, typer.Option("--split", help="eval (each task's test split, else validation) or validation (for making choices).")] = "eval",
    skip_invalid: SkipOpt = False,
    device: DeviceOpt = DEFAULTS.device,
    precision: PrecisionOpt = DEFAULTS.precision,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
):
    """Fit the Attention Router over the bank and answer every task's evaluation questions with no task id.

    The router is fitted from each entry's query summary (statistics of its training questions' query
    vectors, made once and kept in the store), never from earlier tasks' text. Reports per task the
    task-agnostic accuracy and macro F1, the oracle's accuracy (the true task's entry) and the routing
    accuracy (questions whose largest weight is on their own entry), plus the routing confusion matrix.
    The router is saved in the store under the strategy's name (with `--strategy all`, one per strategy, the
    best saved last); `baas predict` uses the latest one saved, and this command says which that is.

    Examples: `baas fuse --data-dir DIR`; `baas fuse --data-dir DIR --strategy all --space both`;
    `baas fuse --data-dir DIR --strategy topk2 --rule qda --tasks arc_easy,qasc`; `baas fuse --config fuse.toml`.
    """
    from baas.cli.progress import reporter
    from baas.training.api import Bank

    bank = Bank(store, backbone, device=device, precision=precision)
    result = bank.fuse_and_evaluate(strategy, tasks=tasks, rule=rule, query=query, temperature=temperature, space=space,
                                    split=split, max_eval=max_eval, data_dir=data_dir, skip_invalid=skip_invalid,
                                    reporter=reporter())
    emit(result, as_json, lambda: _show(result, rule, query, split))


def _show(result, rule: str, query: str, split: str) -> None:
    best = result.best
    n = sum(map(sum, best["confusion"]["counts"]))
    if len(result.strategies) > 1:
        table = Table(f"baas fuse: {len(best['confusion']['tasks'])} entries, rule {rule}, query {query}, {n} questions "
                      f"({split} splits), no task ids; accuracy: the mean over tasks, 95% bootstrap interval",
                      ["strategy", "space", "accuracy", "macro F1", "routing", "entries/q", "ms/q (passes)"])
        for r in result.strategies:
            table.add_row(r["strategy"], r["space"], acc(r["mean_accuracy"], r.get("n"), r.get("mean_accuracy_interval")),
                          f"{r['mean_macro_f1']:.3f}", f"{r['routing_accuracy']:.3f}", f"{r['entries_per_question']:.1f}",
                          f"{1000 * r['seconds_per_question']:.0f}")
        show(table)
    table = Table(f"{best['strategy']} ({best['space']} space): mean accuracy "
                  f"{acc(best['mean_accuracy'], best.get('n'), best.get('mean_accuracy_interval'))}, oracle "
                  f"{best['mean_oracle_accuracy']:.3f}, routing {best['routing_accuracy']:.3f}",
                  ["task", "split", "accuracy (95%, n)", "macro F1", "oracle", "routing"])
    for t in best["per_task"]:
        table.add_row(t["task"], t["eval_split"], acc(t["accuracy"], t["n"], t.get("accuracy_interval")), f"{t['macro_f1']:.3f}",
                      f"{t['oracle_accuracy']:.3f}", f"{t['routing_accuracy']:.3f}")
    show(table)
    tasks, counts = best["confusion"]["tasks"], best["confusion"]["counts"]
    confusion = Table("routing confusion (rows: true task, columns: entry with the largest weight)", ["true \\ routed", *tasks])
    for name, row in zip(tasks, counts):
        confusion.add_row(name, *row)
    show(confusion)
    if "router_file" in best:
        space = "output" if best["space"] == "output" else "prompt"
        chosen = ""
        rivals = [r for r in result.strategies if r["strategy"] != "oracle"]
        if len(rivals) > 1:  # a comparison: on few questions, it says so
            smallest = min(t["n"] for t in best["per_task"])
            chosen = f"; the best of {len(rivals)} on accuracy" + (f", {few(smallest)}" if few(smallest) else "")
        say(f"router '{best['router']}' saved ({best['strategy']}, rule {best['rule']}, {space} space{chosen}): "
            f"`baas predict` uses it; {best['router_file']}")
