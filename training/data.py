"""MCQ data: the one record every dataset becomes, one small adapter per dataset, and loading.

An adapter turns a row in the field layout of the dataset's Hugging Face hub version into an
`MCQExample`. The same `convert` reads rows from the hub (`datasets.load_dataset`) and from local
files `<data_dir>/<name>/{train,validation,test}.jsonl`, so the shared data pack and the hub agree.
Adding a dataset is one small class plus a `register(...)` line.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from baas.prompts_bank.errors import DataError
from baas.training.synthetic import GENERATORS

SPLITS = ("train", "validation", "test")
MIN_VALIDATION = 30  # fewer validation questions than this: the best epoch rests on a handful (a note says so)
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


def _digest(text: str) -> str:
    """A stable id from row text; it never fails on odd text (which `make_example` then names)."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def _keyed_choices(row: Row, choices_field: str = "choices", key_field: str = "answerKey") -> tuple[list[str], int]:
    """`choices: {text: [...], label: [...]}` with an answer key that is one of the labels (ARC, OBQA, CSQA, QASC)."""
    choices = row.dict(choices_field)
    texts, labels = choices.get("text"), choices.get("label")
    if not isinstance(texts, list) or not isinstance(labels, list) or len(texts) != len(labels):
        raise RowError(choices_field, "expected {'text': [...], 'label': [...]} of equal length")
    key = row.str(key_field)
    if key not in labels:
        raise RowError(key_field, f"expected one of {labels}, got {key!r}")
    return [str(t) for t in texts], labels.index(key)


class Adapter:
    """Reads one dataset. Subclasses set the hub coordinates and implement `convert`."""

    name: str = ""
    hub_id: str = ""
    hub_config: str | None = None
    # Our split name -> the hub's split name. A split absent here has no labelled hub version.
    hub_splits: dict[str, str] = {"train": "train", "validation": "validation", "test": "test"}
    id_field: str | None = "id"  # the row field the example's id comes from; None: made from the question's text
    # A question that repeats an option text is an error in baas's own format; a published dataset has a few
    # (commonsense_qa, medmcqa, mmlu), kept as published so results compare with the literature, and counted.
    distinct_options = False

    def convert(self, row: Row) -> MCQExample:
        raise NotImplementedError

    def describe_source(self, data_dir: Path | None) -> str:
        if data_dir is not None:
            return str(data_dir / self.name)
        config = f", config {self.hub_config}" if self.hub_config else ""
        return f"hub {self.hub_id}{config}"

    def available_splits(self, data_dir: Path | None) -> list[str]:
        if data_dir is not None:
            return [s for s in SPLITS if (data_dir / self.name / f"{s}.jsonl").is_file()]
        return [s for s in SPLITS if s in self.hub_splits]

    def rows(self, split: str, data_dir: Path | None) -> tuple[str, Iterator[tuple[str, Any]]]:
        """(source, iterator of (where, raw row)), `where` being `FILE:LINE` or `hub[split] row N`."""
        if data_dir is not None:
            path = data_dir / self.name / f"{split}.jsonl"
            if not path.is_file():
                raise DataError(f"{path}: no such file (dataset '{self.name}', split '{split}')")
            return str(path), _jsonl_rows(path)
        return self._hub_rows(split)

    def _hub_rows(self, split: str) -> tuple[str, Iterator[tuple[str, Any]]]:
        if split not in self.hub_splits:
            raise DataError(f"dataset '{self.name}' has no labelled '{split}' split on the hub")
        import datasets
        import huggingface_hub

        hub_verbosity = huggingface_hub.logging.get_verbosity()
        huggingface_hub.logging.set_verbosity_error()  # its retry chatter would bury the one error line below
        try:
            ds = datasets.load_dataset(self.hub_id, self.hub_config, split=self.hub_splits[split])
        except Exception as exc:  # network, missing dataset, auth: all mean "not here"
            raise DataError(
                f"could not load '{self.name}' from the Hugging Face hub ({self.describe_source(None)}, "
                f"split '{self.hub_splits[split]}'): {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. "
                f"For local files pass --data-dir DIR (or set BAAS_DATA_DIR) with DIR/{self.name}/{{train,validation,test}}.jsonl"
            ) from None
        finally:
            huggingface_hub.logging.set_verbosity(hub_verbosity)
        where = f"{self.hub_id}[{self.hub_splits[split]}]"
        return where, ((f"{where} row {i}", row) for i, row in enumerate(ds))

    def load(self, split: str, data_dir: Path | None, skip_invalid: bool = False) -> SplitData:
        source, rows = self.rows(split, data_dir)
        examples, skipped, repeated = [], 0, 0
        seen_rows: dict[str, str] = {}  # digest of a row's content -> where it first was
        seen_ids: dict[str, str] = {}
        for where, raw in rows:
            try:
                if isinstance(raw, RowError):
                    raise raw
                example = self.convert(Row(raw))
                first = seen_rows.get(digest := _row_digest(raw))
                if first is not None:
                    raise RowProblem(f"the same row as {_line_of(first, source)}")
                first = seen_ids.get(example.id)
                if first is not None:
                    if self.id_field is not None and isinstance(raw, dict) and raw.get(self.id_field) not in (None, ""):
                        raise RowError(self.id_field, f"an id not used before in the split; {example.id!r} is also the "
                                                      f"id of {_line_of(first, source)}")
                    raise RowProblem(f"the same question and options as {_line_of(first, source)}")
                repeat = next((o for i, o in enumerate(example.options) if o in example.options[:i]), None)
                if repeat is not None and self.distinct_options:
                    raise RowError("options", f"expected distinct option texts, got {repeat!r} twice")
                repeated += repeat is not None
            except RowError as exc:
                if not skip_invalid:
                    raise DataError(f"{where}: {exc} (use --skip-invalid to skip bad rows)") from None
                skipped += 1
                continue
            seen_rows[digest], seen_ids[example.id] = where, where
            examples.append(example)
        if not examples:
            raise DataError(f"{source}: no usable rows for split '{split}'")
        return SplitData(examples, split, source, skipped, repeated)


def _row_digest(raw: Any) -> str:
    return hashlib.sha1(json.dumps(raw, sort_keys=True, default=str).encode("utf-8", "surrogatepass")).hexdigest()


def _line_of(where: str, source: str) -> str:
    """`line N` for a row of the same file, else where it was (`hub[split] row N`)."""
    return f"line {where[len(source) + 1:]}" if where.startswith(f"{source}:") else where


def _jsonl_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """(FILE:LINE, parsed object); a line that is not JSON yields a RowError in place of the row. A file that is
    not UTF-8 stops with a DataError at its first bad line (--skip-invalid does not skip it: every row is suspect)."""
    # A byte-order mark at the start is not part of the first row. Bytes that are not UTF-8 are read as lone
    # surrogates (surrogateescape), found per line below, so the error can name the line.
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, 1):
            try:
                line.encode("utf-8")
            except UnicodeEncodeError as exc:
                byte = ord(line[exc.start]) - 0xDC00
                raise DataError(f"{path}:{lineno}: not UTF-8 (byte 0x{byte:02x} at character {exc.start + 1} of the line; "
                                "save the file as UTF-8)") from None
            if not line.strip():
                continue
            try:
                yield f"{path}:{lineno}", json.loads(line)
            except json.JSONDecodeError as exc:
                yield f"{path}:{lineno}", RowError("<line>", f"expected one JSON object per line ({exc.msg})")


def question_from_row(raw: Any, adapter: "JsonlAdapter | None" = None) -> MCQExample:
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
    for where, raw in _jsonl_rows(path):
        try:
            example = question_from_row(raw, adapter)
            examples.append(example)
            labelled = labelled and example.label is not None
        except RowError as exc:
            raise DataError(f"{where}: {exc}") from None
    if not examples:
        raise DataError(f"{path}: no questions")
    return examples, labelled


# ---------------------------------------------------------------------------------------------
# The datasets. Each class maps the hub layout of one dataset onto MCQExample.


class KeyedChoicesAdapter(Adapter):
    """Rows with `choices: {text, label}` and an `answerKey` among the labels (ARC, OpenBookQA, CSQA, QASC)."""

    question_field = "question"
    topic_field: str | None = None
    explanation_fields: tuple[str, ...] = ()

    def convert(self, row: Row) -> MCQExample:
        options, label = _keyed_choices(row)
        explanation = " ".join(t for t in (row.str(f, optional=True) for f in self.explanation_fields) if t)
        return make_example(row.str("id"), row.str(self.question_field), options, label,
                            label_field="answerKey", options_field="choices", explanation=explanation,
                            topic=row.str(self.topic_field, optional=True) if self.topic_field else None)


class ARCAdapter(KeyedChoicesAdapter):
    hub_id = "allenai/ai2_arc"

    def __init__(self, name: str, config: str):
        self.name, self.hub_config = name, config


class OpenBookQAAdapter(KeyedChoicesAdapter):
    name, hub_id, hub_config = "openbookqa", "allenai/openbookqa", "main"
    question_field = "question_stem"
    explanation_fields = ("fact1",)  # present in the hub's "additional" config


class CommonsenseQAAdapter(KeyedChoicesAdapter):
    name, hub_id = "commonsense_qa", "tau/commonsense_qa"
    hub_splits = {"train": "train", "validation": "validation"}  # the hub's test split has no answers
    topic_field = "question_concept"


class QASCAdapter(KeyedChoicesAdapter):
    name, hub_id = "qasc", "allenai/qasc"
    hub_splits = {"train": "train", "validation": "validation"}  # hub test is unlabelled
    explanation_fields = ("fact1", "fact2")


class MMLUAdapter(Adapter):
    name, hub_id, hub_config = "mmlu", "cais/mmlu", "all"
    id_field = None
    hub_splits = {"train": "auxiliary_train", "validation": "validation", "test": "test"}

    def convert(self, row: Row) -> MCQExample:
        options = row.str_list("choices")
        question = row.str("question")
        subject = row.str("subject", optional=True)
        uid = _digest(f"{subject}|{question}|{options}")[:16]
        return make_example(uid, question, options, row.int("answer"),
                            label_field="answer", options_field="choices",
                            topic=subject.replace("_", " "))


class MedQAAdapter(Adapter):
    name, hub_id = "medqa", "GBaker/MedQA-USMLE-4-options"
    id_field = None
    hub_splits = {"train": "train", "test": "test"}  # no hub validation: carved from train

    def convert(self, row: Row) -> MCQExample:
        opts = row.dict("options")
        keys = sorted(opts)
        key = row.str("answer_idx")
        if key not in opts:
            raise RowError("answer_idx", f"expected one of {keys}, got {key!r}")
        question = row.str("question")
        uid = _digest(f"{question}|{opts}")[:16]
        return make_example(uid, question, [str(opts[k]) for k in keys], keys.index(key),
                            label_field="answer_idx", options_field="options",
                            topic=row.str("meta_info", optional=True))


class MedMCQAAdapter(Adapter):
    name, hub_id = "medmcqa", "openlifescienceai/medmcqa"
    hub_splits = {"train": "train", "validation": "validation"}  # hub test has cop = -1 (no answers)

    def convert(self, row: Row) -> MCQExample:
        options = [row.str(k) for k in ("opa", "opb", "opc", "opd")]
        topic = " / ".join(t for t in (row.str("subject_name", optional=True),
                                       row.str("topic_name", optional=True)) if t)
        return make_example(row.str("id"), row.str("question"), options, row.int("cop"),
                            label_field="cop", options_field="opa..opd", topic=topic,
                            explanation=row.str("exp", optional=True))


class DreamAdapter(Adapter):
    name, hub_id = "dream", "dataset-org/dream"

    def convert(self, row: Row) -> MCQExample:
        options = row.str_list("choice")
        answer = row.str("answer")
        if answer not in options:
            raise RowError("answer", f"expected one of the 'choice' texts, got {answer!r}")
        return make_example(f"{row.str('dialogue_id')}/{row.str('id')}", row.str("question"), options,
                            options.index(answer), label_field="answer", options_field="choice",
                            context="\n".join(row.str_list("dialogue")))


class CosmosQAAdapter(Adapter):
    name, hub_id = "cosmos_qa", "allenai/cosmos_qa"
    hub_splits = {"train": "train", "validation": "validation"}  # hub test has label -1

    def convert(self, row: Row) -> MCQExample:
        options = [row.str(f"answer{i}") for i in range(4)]
        return make_example(row.str("id"), row.str("question"), options, row.int("label"),
                            label_field="label", options_field="answer0..answer3",
                            context=row.str("context"))


class RaceAdapter(Adapter):
    name, hub_id, hub_config = "race", "ehovy/race", "all"
    id_field = "example_id"

    def convert(self, row: Row) -> MCQExample:
        options = row.str_list("options")
        key = row.str("answer")
        if len(key) != 1 or key not in LETTERS[: len(options)]:
            raise RowError("answer", f"expected a letter A..{LETTERS[len(options) - 1]}, got {key!r}")
        return make_example(row.str("example_id"), row.str("question"), options, LETTERS.index(key),
                            label_field="answer", options_field="options", context=row.str("article"))


class SciQAdapter(Adapter):
    name, hub_id = "sciq", "allenai/sciq"
    id_field = None

    def convert(self, row: Row) -> MCQExample:
        question = row.str("question")
        correct = row.str("correct_answer")
        options = [row.str(f"distractor{i}") for i in (1, 2, 3)]
        # SciQ stores the answer apart from the distractors; place it at a position fixed by the question
        # text so the gold index is spread over all slots but identical on every load.
        position = int(_digest(question), 16) % 4
        options.insert(position, correct)
        uid = _digest(question)[:16]
        return make_example(uid, question, options, position, label_field="correct_answer",
                            options_field="distractor1..3", explanation=row.str("support", optional=True))


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
        uid = row.str("id", optional=True) or _digest(f"{question}|{options}")[:16]
        return make_example(uid, question, options, label, label_field=label_field, options_field="options",
                            context=row.str("context", optional=True), topic=row.str("topic", optional=True),
                            explanation=row.str("explanation", optional=True))


class SyntheticAdapter(JsonlAdapter):
    """A built-in generated task (see `synthetic.py`): rows in the baas jsonl format, made on the spot."""

    def __init__(self, name: str, generate: Callable[[str], list[dict]]):
        super().__init__(name)
        self.generate = generate

    def describe_source(self, data_dir: Path | None) -> str:
        return "generated (built-in demo task)"

    def available_splits(self, data_dir: Path | None) -> list[str]:
        return list(SPLITS)

    def rows(self, split: str, data_dir: Path | None) -> tuple[str, Iterator[tuple[str, Any]]]:
        source = f"{self.name} generator"
        return source, ((f"{source}[{split}] row {i}", row) for i, row in enumerate(self.generate(split)))


REGISTRY: dict[str, Adapter] = {}


def register(adapter: Adapter) -> Adapter:
    REGISTRY[adapter.name] = adapter
    return adapter


for _adapter in (
    ARCAdapter("arc_easy", "ARC-Easy"),
    ARCAdapter("arc_challenge", "ARC-Challenge"),
    OpenBookQAAdapter(),
    CommonsenseQAAdapter(),
    QASCAdapter(),
    MMLUAdapter(),
    MedQAAdapter(),
    MedMCQAAdapter(),
    DreamAdapter(),
    CosmosQAAdapter(),
    RaceAdapter(),
    SciQAdapter(),
    *(SyntheticAdapter(name, generate) for name, generate in GENERATORS.items()),
):
    register(_adapter)


# ---------------------------------------------------------------------------------------------
# Loading


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """--data-dir wins, then BAAS_DATA_DIR; None means the hub."""
    value = data_dir if data_dir not in (None, "") else os.environ.get("BAAS_DATA_DIR") or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"data directory {path} does not exist (from --data-dir or BAAS_DATA_DIR)")
    return path


def _folder_format(path: Path) -> str:
    """The adapter a data folder names in its `baas.json` (`{"format": "arc_easy"}`)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8-sig")).get("format")
    except (OSError, ValueError, AttributeError) as exc:
        raise DataError(f"{path}: expected a JSON object like {{\"format\": \"arc_easy\"}} ({exc})") from None
    if not isinstance(value, str):
        raise DataError(f"{path}: field 'format': expected an adapter name (see `baas datasets`), got {value!r}")
    return value


def folder_format(name: str, data_dir: Path | None, format: str | None = None) -> str | None:
    """`format`, else the one DIR/<name>/baas.json names; None when it is the dataset's own."""
    if format is None and data_dir is not None and (data_dir / name / "baas.json").is_file():
        format = _folder_format(data_dir / name / "baas.json")
    return None if format == name else format


def get_adapter(name: str, data_dir: Path | None, format: str | None = None) -> Adapter:
    """The adapter for dataset `name`: `format` (or the folder's baas.json) names one for a folder whose
    name is not the dataset's, e.g. a copy of arc_easy in DIR/arc_easy_small; `jsonl` is baas's own format."""
    format = folder_format(name, data_dir, format)
    if format is not None:
        if format == "jsonl":
            return JsonlAdapter(name)
        if format not in REGISTRY:
            raise DataError(f"unknown format '{format}' for dataset folder '{name}'; expected jsonl or one of: "
                            f"{', '.join(sorted(REGISTRY))}")
        adapter = copy.copy(REGISTRY[format])
        adapter.name = name  # reads DIR/<name>/ with the rows of `format`
        return adapter
    if name in REGISTRY:
        return REGISTRY[name]
    if data_dir is not None and (data_dir / name / "train.jsonl").is_file():
        return JsonlAdapter(name)
    where = f" and no folder {data_dir / name} with train.jsonl" if data_dir else ""
    raise DataError(
        f"unknown dataset '{name}'{where}. Known: {', '.join(sorted(REGISTRY))}; "
        "or give --data-dir DIR holding DIR/NAME/{train,validation,test}.jsonl in the baas jsonl format"
    )


@dataclass
class TaskData:
    """The three splits a training run uses, with where they came from and what was substituted."""

    name: str
    train: SplitData
    validation: SplitData
    eval: SplitData
    notes: list[str]
    format: str | None = None  # the adapter that read a folder named otherwise (--format / baas.json)
    max_eval: int | None = None  # the cap on validation and evaluation questions it was loaded with

    @property
    def eval_split(self) -> str:
        return self.eval.split


def _subsample(examples: list[MCQExample], limit: int | None) -> list[MCQExample]:
    """A fixed, seed-independent shuffle before the cap: files are often sorted by topic."""
    if limit is None or limit >= len(examples):
        return examples
    shuffled = list(examples)
    random.Random(0).shuffle(shuffled)
    return shuffled[:limit]


def _hash_fraction(example_id: str) -> int:
    return int(hashlib.sha256(example_id.encode()).hexdigest(), 16) % 100


def load_task_data(
    name: str,
    data_dir: str | Path | None = None,
    *,
    max_train: int | None = None,
    max_eval: int | None = None,
    skip_invalid: bool = False,
    format: str | None = None,
) -> TaskData:
    """Train, validation (for choices) and the evaluation split (test, else validation, said in `notes`).

    A known dataset whose folder is not under the data directory loads from the hub, as `baas datasets` shows."""
    data_root = resolve_data_dir(data_dir)
    adapter = get_adapter(name, data_root, format)
    root = data_root if data_root is not None and (data_root / name).is_dir() else None
    if data_root is not None and root is None and not isinstance(adapter, SyntheticAdapter):
        raise DataError(f"no folder {data_root / name} in the data directory (from --data-dir or BAAS_DATA_DIR): "
                        f"expected {data_root / name}/{{train,validation,test}}.jsonl; to load '{name}' from the "
                        "Hugging Face hub, give no data directory")
    available = adapter.available_splits(root)
    notes: list[str] = []
    if "train" not in available:
        raise DataError(f"dataset '{name}' has no train split at {adapter.describe_source(root)}")
    train = adapter.load("train", root, skip_invalid)
    if "validation" in available:
        validation = adapter.load("validation", root, skip_invalid)
    else:
        # Hold out a fixed 10% of train (by id hash) so model choices never look at the test split.
        held = [e for e in train.examples if _hash_fraction(e.id) < 10]
        kept = [e for e in train.examples if _hash_fraction(e.id) >= 10]
        if not held or not kept:  # refused now, not after training ends on an empty validation
            file = f"{root / name / 'validation.jsonl'}" if root is not None else "a validation split"
            raise DataError(
                f"{train.source}: no validation split, and holding out 10% of the {len(train.examples)} training "
                f"questions leaves {'no validation question' if not held else 'no training question'}: give {file} "
                f"(at least {MIN_VALIDATION} questions advised), or more training questions (about "
                f"{10 * MIN_VALIDATION} hold out {MIN_VALIDATION})")
        train.examples = kept
        validation = SplitData(held, "validation", f"{train.source} (10% of train held out)")
        notes.append("no validation split: 10% of train held out for validation")
    if "test" in available:
        evaluation = adapter.load("test", root, skip_invalid)
    else:
        evaluation = validation
        notes.append("no labelled test split: evaluating on validation")
    if len(validation.examples) < MIN_VALIDATION:  # (before --max-eval: a cap below it is the user's own choice)
        n = len(validation.examples)
        reported = " and the reported accuracy" if evaluation is validation else ""
        notes.append(f"validation has only {n} question{'s' * (n != 1)} ({validation.source}): the best epoch{reported} "
                     f"rest{'s' * (not reported)} on so few; {MIN_VALIDATION} or more are advised")
    repeated = train.repeated_options + validation.repeated_options + (
        evaluation.repeated_options if evaluation is not validation else 0)
    if repeated:
        notes.append(f"{repeated} question{'s repeat' if repeated != 1 else ' repeats'} an option text, as the dataset "
                     "publishes them (kept)")
    train.examples = _subsample(train.examples, max_train)
    validation.examples = _subsample(validation.examples, max_eval)
    if evaluation is not validation:
        evaluation.examples = _subsample(evaluation.examples, max_eval)
    skipped = train.skipped + validation.skipped + (evaluation.skipped if evaluation is not validation else 0)
    if skipped:
        notes.append(f"skipped {skipped} invalid rows (--skip-invalid)")
    return TaskData(name, train, validation, evaluation, notes, folder_format(name, data_root, format), max_eval)


def fingerprint(examples: Iterable[MCQExample]) -> str:
    """Content hash of a list of examples: changes when any text, option or label changes."""
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([e.id, e.context, e.question, e.options, e.label]).encode())
    return h.hexdigest()[:16]


def dataset_table(data_dir: str | Path | None) -> list[dict[str, str]]:
    """What `baas datasets` shows: every adapter and where it would load from."""
    root = resolve_data_dir(data_dir)
    rows = []
    for name in sorted(REGISTRY):
        adapter = REGISTRY[name]
        local = root if root and (root / name).is_dir() else None
        source = adapter.describe_source(local)
        if root is not None and local is None and not isinstance(adapter, SyntheticAdapter):
            source += f" (only without a data directory: no folder {root / name})"
        rows.append({
            "name": name,
            "hub_id": adapter.hub_id + (f" ({adapter.hub_config})" if adapter.hub_config else ""),
            "source": source,
            "splits": ", ".join(adapter.available_splits(local)),
        })
    if root is not None:
        for path in sorted(root.iterdir()):
            if path.is_dir() and path.name not in REGISTRY and (path / "train.jsonl").is_file():
                adapter = JsonlAdapter(path.name)
                rows.append({"name": path.name, "hub_id": "-", "source": str(path),
                             "splits": ", ".join(adapter.available_splits(root))})
    return rows
