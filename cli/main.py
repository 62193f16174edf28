"""`baas`: train prompt pairs per MCQ dataset on a frozen backbone, keep them in a bank, evaluate them.

The typer app: it registers the commands (cli/commands/, one module per command group, each a thin call of
the Python API in baas.training.api) and `--version`. Options shared by commands are in cli/options.py, the
printing (tables, --json, one-line errors) in cli/render.py, progress in cli/progress.py.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from baas.cli.commands import bank, datasets, demo, evaluate, forgetting, fuse, init_prompts, predict, runs, store, train

app = typer.Typer(
    help=(
        "Continual, parameter-efficient multiple-choice QA: one trained \\[prefix; input; suffix] prompt pair per "
        "dataset on a frozen transformer, kept in a safetensors prompt bank.\n\n"
        "Start with `baas demo` (offline, a few minutes), then e.g. "
        "`baas train-task arc_easy --data-dir DIR --max-train 600 --epochs 2` for each dataset, and "
        "`baas fuse --data-dir DIR` to answer them all with no task id (`baas predict` for your own questions). "
        "`baas COMMAND --help` shows a command's options, with examples."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings are paragraphs: single line breaks are re-flowed
)
app.command("train-task")(train.train_task)
app.command("init-prompts")(init_prompts.init_prompts)
app.command("eval-task")(evaluate.eval_task)
app.command("fuse")(fuse.fuse)
app.command("eval-forgetting")(forgetting.eval_forgetting)
app.command("predict")(predict.predict)
app.command("runs")(runs.runs)
app.command("datasets")(datasets.datasets)
app.command("demo")(demo.demo)
app.add_typer(bank.app, name="bank")
app.add_typer(store.app, name="store")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"baas {version('baas')}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print baas's version and exit.")] = False) -> None:
    pass


def main() -> None:  # pragma: no cover - `python -m baas.cli.main`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
