"""`baas demo`: the offline tour, three generated tasks learned in turn into a bank (the API's `demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from baas.cli.options import BackboneOpt, JsonOpt
from baas.cli.render import Table, acc, emit, one_line_errors, say, show, span, three
from baas.training.metrics import few


@one_line_errors
def demo(
    store: Annotated[Optional[Path], typer.Option("--store", help="Store for the demo's bank. Default: $BAAS_HOME/demo or ~/.baas/demo.")] = None,
    backbone: BackboneOpt = None,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per task.")] = 2,
    as_json: JsonOpt = False,
):
    """Offline tour of the product in small: three generated MCQ tasks learned one after another into a
    bank, answered with no task id through the router, and compared with one prompt pair trained on the
    same tasks in turn (naive). Needs no network and no data files; a rerun reuses what is done.

    Examples: `baas demo`; `baas demo --epochs 1 --store /tmp/baas-demo`."""
    from baas.cli.progress import reporter
    from baas.training.api import demo as tour

    result = tour(store=store, backbone=backbone, epochs=epochs, reporter=reporter())
    emit(result, as_json, lambda: _show(result))


def _show(result) -> None:
    ns, chances = [r.get("n") for r in result.tasks], {r["chance"] for r in result.tasks}
    same = len(set(ns)) == 1 and ns[0]  # the count (and the chance) in the title when every task has the same
    table = Table(f"baas demo: {len(result.tasks)} generated tasks learned one after another ({result.backbone}, frozen); "
                  f"final accuracy on each task's {f'{ns[0]} ' if same else ''}test questions, 95% Wilson interval"
                  + (f"; chance {three(next(iter(chances)))}" if len(chances) == 1 else ""),
                  ["task", *["chance"] * (len(chances) > 1), "baas (no task id)", "oracle (task id)", "naive (one pair, in turn)"])
    for r in result.tasks:
        table.add_row(r["task"], *[three(r["chance"])] * (len(chances) > 1),
                      *(acc(r[f"{p}accuracy"], None if same else r.get("n"), r.get(f"{p}accuracy_interval"))
                        for p in ("", "oracle_", "naive_")))
    show(table)
    table = Table("what each kept (R[k][i]: accuracy on task i after training tasks 1..k; 95% bootstrap intervals "
                  "over the questions)", ["method", "avg accuracy", "avg incremental", "BWT", "forgetting"])
    for name, f in result.forgetting.items():
        ci = f.get("intervals") or {}
        metric = lambda key: three(f[key]) + (f" {span(ci[key])}" if f[key] is not None and ci.get(key) else "")  # noqa: E731
        table.add_row(name, metric("average_accuracy"), three(f["average_incremental_accuracy"]), metric("bwt"),
                      metric("forgetting"))
    show(table)
    smallest = min((n for n in ns if n), default=None)
    if few(smallest):
        say(f"note: baas, the oracle and naive are compared {few(smallest)}")
    say(f"bank: {result.store}; report: {Path(result.report) / 'report.md'}\nNext, real data: baas train-task arc_easy "
        "--data-dir DIR (one per dataset), baas fuse --data-dir DIR, baas eval-forgetting --data-dir DIR "
        "(DIR/NAME/{train,validation,test}.jsonl in the hub layout)")
