"""The one record every dataset becomes (`MCQExample`), a split of them, and the checks on a raw row.

`Row` gives typed access to a raw row's fields; `make_example` builds an example and validates it, so
that a wrong field raises a `RowError` naming its column (the loader adds the file and line).
`fingerprint` is the content hash of a list of examples that cache keys and run keys are built on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable

SPLITS = ("train", "validation", "test")
MIN_OPTIONS, MAX_OPTIONS = 2, 10
LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class MCQExample:
    id: str
    question: str
    options: tuple[str, ...]
    label: int | None  # None: unlabelled (questions to answer, never to train or score on)
    context: str = ""
    topic: str | None = None
    explanation: str | None = None


@dataclass
class SplitData:
    examples: list[MCQExample]
    split: str  # the split the rows came from
    source: str  # where they were read: a file, a hub id, or a generator
    skipped: int = 0
    repeated_options: int = 0  # questions of a published dataset that repeat an option text (kept as published)


class RowError(ValueError):
    """A field of one row is missing or has the wrong shape; the loader adds file and line."""

    def __init__(self, field_name: str, expected: str):
        super().__init__(f"field '{field_name}': {expected}")


class RowProblem(RowError):
    """A row that is wrong as a whole (a repeat of an earlier row) rather than in one field."""

    def __init__(self, message: str):
        ValueError.__init__(self, message)


class Row:
    """Typed, checked access to one raw row's fields."""

    def __init__(self, raw: Any):
        if not isinstance(raw, dict):
            raise RowError("<row>", f"expected a JSON object, got {type(raw).__name__}")
        self.raw = raw

    def get(self, name: str, default: Any = None) -> Any:
        return self.raw.get(name, default)

    def str(self, name: str, optional: bool = False) -> str:
        value = self.raw.get(name)
        if value is None and optional:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise RowError(name, f"expected a string, got {_describe(value)}")
        return str(value)

    def int(self, name: str) -> int:
        value = self.raw.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise RowError(name, f"expected an integer, got {_describe(value)}")
        try:
            return int(value)
        except ValueError:
            raise RowError(name, f"expected an integer, got {value!r}") from None

    def str_list(self, name: str) -> list[str]:
        value = self.raw.get(name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RowError(name, f"expected a list of strings, got {_describe(value)}")
        return value

    def dict(self, name: str) -> dict:
        value = self.raw.get(name)
        if not isinstance(value, dict):
            raise RowError(name, f"expected an object, got {_describe(value)}")
        return value


def _describe(value: Any) -> str:
    return "nothing (field missing or null)" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"


def make_example(
    id: str,
    question: str,
    options: list[str],
    label: int | None,
    *,
    label_field: str,
    options_field: str,
    context: str = "",
    topic: str | None = None,
    explanation: str | None = None,
) -> MCQExample:
    """Build and validate an example; the field names make the error point at the right column."""
    for name, texts in (("question", [question]), (options_field, options), ("context", [context]),
                        ("topic", [topic or ""]), ("explanation", [explanation or ""])):
        for text in texts:
            _check_unicode(name, text)
    if not question.strip():
        raise RowError("question", "expected a non-empty question")
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise RowError(options_field, f"expected {MIN_OPTIONS} to {MAX_OPTIONS} options, got {len(options)}")
    if any(not o.strip() for o in options):
        raise RowError(options_field, "expected non-empty option texts")
    if label is not None and not 0 <= label < len(options):
        raise RowError(label_field, f"expected an answer index in 0..{len(options) - 1}, got {label}")
    return MCQExample(
        id=str(id),
        question=question.strip(),
        options=tuple(o.strip() for o in options),
        label=label,
        context=context.strip(),
        topic=topic or None,
        explanation=explanation or None,
    )


def _check_unicode(field_name: str, text: str) -> None:
    """JSON can spell a lone surrogate (\\ud800), which is not text: no tokenizer or file can take it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RowError(field_name, f"expected valid Unicode text, found a lone surrogate {text[exc.start]!r} at "
                                   f"character {exc.start}") from None


def text_digest(text: str) -> str:
    """A stable id from row text; it never fails on odd text (which `make_example` then names)."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def fingerprint(examples: Iterable[MCQExample]) -> str:
    """Content hash of a list of examples: changes when any text, option or label changes."""
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([e.id, e.context, e.question, e.options, e.label]).encode())
    return h.hexdigest()[:16]
