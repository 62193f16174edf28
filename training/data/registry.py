"""The datasets baas knows by name: one small adapter class per published dataset, mapping its hub
layout onto `MCQExample`, and the registry. Adding a dataset is one small class plus a line in
the registry below. `get_adapter` finds the adapter for a dataset name or a data folder.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from baas.prompts_bank.errors import DataError
from baas.training.data.adapter import Adapter
from baas.training.data.jsonl import JsonlAdapter
from baas.training.data.schema import LETTERS, MCQExample, Row, RowError, make_example, text_digest
from baas.training.data.synthetic import GENERATORS, SyntheticAdapter


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
        uid = text_digest(f"{subject}|{question}|{options}")[:16]
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
        uid = text_digest(f"{question}|{opts}")[:16]
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
        position = int(text_digest(question), 16) % 4
        options.insert(position, correct)
        uid = text_digest(question)[:16]
        return make_example(uid, question, options, position, label_field="correct_answer",
                            options_field="distractor1..3", explanation=row.str("support", optional=True))


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
