"""`baas predict`: answer questions with the fused bank, with no task id (the API's `Bank.predict`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from baas.cli.options import DEFAULTS, DeviceOpt, JsonOpt, PrecisionOpt, StoreOpt
from baas.cli.render import Table, acc, emit, one_line_errors, say, show
from baas.prompts_bank.errors import BaasError


@one_line_errors
def predict(
    question: Annotated[Optional[str], typer.Option("--question", help="One question to answer.")] = None,
    options: Annotated[Optional[list[str]], typer.Option("--option", help="An answer option (repeat: --option A --option B ...).")] = None,
    context: Annotated[Optional[str], typer.Option("--context", help="A passage the question is about.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Questions in the baas jsonl format (a label or answer per row is optional; with them, accuracy is reported on the labelled ones).")] = None,
    router: Annotated[Optional[str], typer.Option("--router", help="A router saved by `baas fuse` (its strategy name). Default: the latest one saved (the one `fuse` last reported).")] = None,
    store: StoreOpt = None,
    top: Annotated[int, typer.Option(min=1, help="Entries shown per question.")] = 3,
    device: DeviceOpt = DEFAULTS.device,
    precision: PrecisionOpt = DEFAULTS.precision,
    as_json: JsonOpt = False,
):
    """Answer questions with the fused bank, with no task id, and show which entries each answer used.

    Says which router (strategy, rule, space) answered. A router fitted on an entry that has since been
    removed is refused, and one that does not know an entry added since is used with a warning; both name
    the router and the entry: rerun `baas fuse`.

    Examples: `baas predict --question "Which gas do plants take in?" --option oxygen --option "carbon dioxide"`;
    `baas predict --file questions.jsonl --router soft --json`.
    """
    from baas.training.api import Bank, questions
    from baas.training.data import read_questions

    if (question is None) == (file is None):
        raise BaasError("give either --question with two or more --option, or --file FILE.jsonl")
    if file is not None:
        asked = read_questions(file)[0]
    elif not options or len(options) < 2:
        raise BaasError("--question needs at least two --option values")
    else:
        asked = questions(question, list(options), context)
    bank = Bank(store, device=device, precision=precision)
    result = bank.predict(asked, router=router, top=top)
    emit(result, as_json, lambda: _show(result, len(bank.router.tasks)))


def _show(result, entries: int) -> None:
    table = Table(f"baas predict (router '{result.router}': {result.strategy}, rule {result.rule}, {result.space} space, "
                  f"{entries} entries)", ["question", "answer", "p", "entries used (weight)"], cut="question")
    for a in result.predictions:
        table.add_row(a.question, a.answer_text, f"{max(a.probabilities):.2f}",
                      ", ".join(f"{e['task']} {e['weight']:.2f}" for e in a.entries))
    show(table)
    if result.n_labelled:
        n = len(result.predictions)
        say(f"accuracy on the labelled questions: {acc(result.accuracy, result.n_labelled, result.accuracy_interval)}"
            + (f" (of {n} questions)" if result.n_labelled < n else ""))
