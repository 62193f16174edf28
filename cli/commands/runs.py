"""`baas runs`: the train runs in the store's runs log, with their settings, status, accuracy and time (the API's `runs`)."""

from __future__ import annotations

import time
from typing import Annotated, Optional

import typer

from baas.cli.options import JsonOpt, StoreOpt
from baas.cli.render import Table, acc, emit, one_line_errors, say, show


def settings_text(settings: dict) -> str:
    """A run's settings in one line: its backbone's last path part, then the rest (an evaluation's entry version,
    the changed TrainConfig fields)."""
    backbone = str(settings.get("backbone", "")).rstrip("/").rsplit("/", 1)[-1]
    return ", ".join([backbone] * bool(backbone) + [f"{k}={v}" for k, v in settings.items() if k != "backbone"])


def accuracy_text(run: dict) -> str:
    """`0.450 [0.382, 0.520] n=200 test`: the accuracy, its 95% interval and the questions it is of; – when the run
    gave none."""
    return acc(run["accuracy"], run["n_eval"], run.get("accuracy_interval"), run["eval_split"])


@one_line_errors
def runs(
    task: Annotated[Optional[str], typer.Argument(help="Only this task's runs (default: every task's).")] = None,
    store: StoreOpt = None,
    evals: Annotated[bool, typer.Option("--evals", metavar="", help="List the evaluations (eval-task) instead of the train runs.")] = False,
    as_json: JsonOpt = False,
):
    """The train runs in the store's runs log, oldest first: task, settings (the backbone and what differs from the
    defaults), status (running, done, failed, interrupted), accuracy with its question count, when and how long.

    Examples: `baas runs`; `baas runs arc_easy --json`; `baas runs --evals`."""
    from baas.training.api import runs as list_runs

    result = list_runs(store, task=task, kind="eval" if evals else "train")

    def human() -> None:
        if not result.runs:
            say(f"no {'evaluations' if evals else 'train runs'} in the runs log of {result.store}")
            return
        table = Table(f"{'evaluations' if evals else 'train runs'} in {result.store}",
                      ["run", "task", "settings", "status", "accuracy", "started (took)"])
        for r in result.runs:
            on = f" on {r['dataset']}" if r.get("dataset") not in (None, r["task"]) else ""
            took = "" if r["seconds"] is None else f" ({r['seconds']:.0f}s)"
            table.add_row(r["id"], r["task"] + on, settings_text(r["settings"]), r["status"], accuracy_text(r),
                          time.strftime("%m-%d %H:%M", time.localtime(r["started"])) + took)
        show(table)

    emit(result, as_json, human)
