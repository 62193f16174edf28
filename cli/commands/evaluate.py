"""`baas eval-task`: score one bank entry on its dataset's evaluation (or validation) split, or on another
dataset's questions, optionally writing each question's answer and scores (the API's `eval_task`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from baas.cli.commands.train import RESULT_KEYS, show_record
from baas.cli.config import configurable
from baas.cli.options import (DEFAULTS, ConfigOpt, DataDirOpt, DeviceOpt, JsonOpt, MaxEvalOpt, PrecisionOpt, SkipOpt, StoreOpt,
                              VersionOpt)
from baas.cli.render import one_line_errors


@one_line_errors
@configurable
def eval_task(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A bank entry: NAME (its newest version for the backbone) or NAME@vN (see `baas bank list`).")],
    version: VersionOpt = None,
    data_dir: DataDirOpt = None,
    backbone: Annotated[Optional[str], typer.Option("--backbone", help="Evaluate the newest version trained on this backbone (hub id or folder). Default: the backbone of the entry's newest version.")] = None,
    store: StoreOpt = None,
    max_eval: MaxEvalOpt = None,
    skip_invalid: SkipOpt = False,
    device: DeviceOpt = DEFAULTS.device,
    precision: PrecisionOpt = DEFAULTS.precision,
    split: Annotated[str, typer.Option("--split", metavar="eval|validation", help="eval: the evaluation split train-task reports (test, or validation when the dataset has no labelled test); validation: the questions the best epoch was chosen on.")] = "eval",
    on: Annotated[Optional[str], typer.Option("--on", metavar="DATASET", help="Score the entry on another dataset's questions (a dataset or a folder under --data-dir); the result names both.")] = None,
    predictions: Annotated[Optional[Path], typer.Option("--predictions", metavar="FILE", help="Write one JSON line per question: id, question, options, label, the answer chosen, whether it is right, every option's score.")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
):
    """Evaluate a bank entry on its dataset's evaluation split (single-task inference: the entry is told its task).

    Examples: `baas eval-task arc_easy --data-dir DIR`; `baas eval-task arc_easy@v1 --data-dir DIR --max-eval 200 --json`;
    `baas eval-task arc_easy --on arc_challenge --data-dir DIR --predictions arc_c.jsonl`; `baas eval-task arc_easy --config eval.toml`.
    """
    from baas.cli.progress import reporter
    from baas.training.api import eval_task as evaluate

    result = evaluate(name, version=version, data_dir=data_dir, store=store, backbone=backbone, max_eval=max_eval,
                      skip_invalid=skip_invalid, reporter=reporter(), device=device, precision=precision, split=split, on=on,
                      predictions=predictions)
    title = f"baas eval-task {result.task}@v{result.version}" + (f" on {result.dataset}" if on else "")
    show_record(result, as_json, title, RESULT_KEYS + (["dataset", "entry_dataset"] if on else [])
                + (["predictions_file"] if predictions else []))
