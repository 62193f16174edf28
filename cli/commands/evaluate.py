"""`baas eval-task`: score one bank entry on its dataset's evaluation split (the API's `eval_task`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from baas.cli.commands.train import RESULT_KEYS, show_record
from baas.cli.options import DEFAULTS, DataDirOpt, DeviceOpt, JsonOpt, MaxEvalOpt, PrecisionOpt, SkipOpt, StoreOpt, VersionOpt
from baas.cli.render import one_line_errors


@one_line_errors
def eval_task(
    name: Annotated[str, typer.Argument(help="A bank entry: NAME (its newest version for the backbone) or NAME@vN (see `baas bank list`).")],
    version: VersionOpt = None,
    data_dir: DataDirOpt = None,
    backbone: Annotated[Optional[str], typer.Option("--backbone", help="Evaluate the newest version trained on this backbone (hub id or folder). Default: the backbone of the entry's newest version.")] = None,
    store: StoreOpt = None,
    max_eval: MaxEvalOpt = None,
    skip_invalid: SkipOpt = False,
    device: DeviceOpt = DEFAULTS.device,
    precision: PrecisionOpt = DEFAULTS.precision,
    as_json: JsonOpt = False,
):
    """Evaluate a bank entry on its dataset's evaluation split (single-task inference: the entry is told its task).

    Examples: `baas eval-task arc_easy --data-dir DIR`; `baas eval-task arc_easy@v1 --data-dir DIR --max-eval 200 --json`.
    """
    from baas.cli.progress import reporter
    from baas.training.api import eval_task as evaluate

    result = evaluate(name, version=version, data_dir=data_dir, store=store, backbone=backbone, max_eval=max_eval,
                      skip_invalid=skip_invalid, reporter=reporter(), device=device, precision=precision)
    show_record(result, as_json, f"baas eval-task {result.task}@v{result.version}", RESULT_KEYS)
