"""baas's own jsonl format (`JsonlAdapter`), and questions to answer read from it or from plain values."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from baas.prompts_bank.errors import DataError
from baas.training.data.adapter import Adapter, jsonl_rows
from baas.training.data.schema import MCQExample, Row, RowError, make_example, text_digest


class JsonlAdapter(Adapter):
    """The project's own format for user data: `<data_dir>/<name>/{train,validation,test}.jsonl`, one object a line:
    `{"question": str, "options": [str, ...], "label": int | "answer": str, "id"?, "context"?, "topic"?, "explanation"?}`."""

    hub_splits: dict[str, str] = {}
    distinct_options = True  # your own data: a question that repeats an option text is an error

    def __init__(self, name: str):
        self.name = name

    def describe_source(self, data_dir: Path | None) -> str:
        return str(data_dir / self.name) if data_dir else "local files only (--data-dir)"

    def convert(self, row: Row) -> MCQExample:
        options = row.str_list("options")
        if "label" not in row.raw and "answer" not in row.raw:
            raise RowError("label", "a label or an answer is needed (give 'label', the right option's index, or "
                                    "'answer', its text)")
        if "label" in row.raw:
            label, label_field = row.int("label"), "label"
            if "answer" in row.raw and 0 <= label < len(options) and row.str("answer") != options[label]:
                raise RowError("answer", f"the text of option {label} ('label'), {options[label]!r}; got "
                                         f"{row.get('answer')!r} (give one of 'label' and 'answer', or make them agree)")
        else:
            answer, label_field = row.str("answer"), "answer"
            if answer not in options:
                raise RowError("answer", "expected one of the 'options' texts (or give 'label': index)")
            label = options.index(answer)
        question = row.str("question")
        uid = row.str("id", optional=True) or text_digest(f"{question}|{options}")[:16]
        return make_example(uid, question, options, label, label_field=label_field, options_field="options",
                            context=row.str("context", optional=True), topic=row.str("topic", optional=True),
                            explanation=row.str("explanation", optional=True))


def question_from_row(raw: Any, adapter: JsonlAdapter | None = None) -> MCQExample:
    """One question to answer from a row in the baas jsonl format, its label (or answer) optional: what
    `predict --file` reads a line into and what the Python API makes of plain values, so that both give a
    question the same id (its `id`, else a hash of its text and options). Raises a RowError."""
    if isinstance(raw, RowError):
        raise raw
    unlabelled = isinstance(raw, dict) and "label" not in raw and "answer" not in raw
    example = (adapter or JsonlAdapter("questions")).convert(Row(dict(raw, label=0) if unlabelled else raw))  # 0 passes the checks, then goes
    return dataclasses.replace(example, label=None) if unlabelled else example


def read_questions(path: Path) -> tuple[list[MCQExample], bool]:
    """Questions to answer from a file in the baas jsonl format; a label (or answer) is optional here.
    Returns the questions and whether every row carried its answer (then accuracy can be reported)."""
    adapter, examples, labelled = JsonlAdapter(path.stem), [], True
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    for where, raw in jsonl_rows(path):
        try:
            example = question_from_row(raw, adapter)
            examples.append(example)
            labelled = labelled and example.label is not None
        except RowError as exc:
            raise DataError(f"{where}: {exc}") from None
    if not examples:
        raise DataError(f"{path}: no questions")
    return examples, labelled
