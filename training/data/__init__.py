"""MCQ data: the one record every dataset becomes, one small adapter per dataset, and loading.

    schema.py     MCQExample, SplitData, Row / RowError, make_example (a record and its checks), fingerprint
    adapter.py    the Adapter base: rows from local jsonl files or the hub, checked, repeats refused
    jsonl.py      baas's own jsonl format, and questions to answer (predict --file, the Python API)
    synthetic.py  the built-in demo tasks, generated on the spot
    registry.py   one small class per published dataset (its hub layout), the registry, get_adapter
    loading.py    load_task_data (train / validation / evaluation splits), the data directory, `baas datasets`

Adding a dataset is one small class plus a line in registry.py.
"""

from baas.training.data.jsonl import JsonlAdapter, question_from_row, read_questions
from baas.training.data.loading import TaskData, dataset_table, load_task_data, resolve_data_dir
from baas.training.data.registry import REGISTRY
from baas.training.data.schema import (
    LETTERS,
    MAX_OPTIONS,
    MIN_OPTIONS,
    MCQExample,
    Row,
    RowError,
    fingerprint,
    make_example,
)
from baas.training.data.synthetic import GENERATORS

__all__ = [
    "GENERATORS",
    "LETTERS",
    "MAX_OPTIONS",
    "MIN_OPTIONS",
    "REGISTRY",
    "JsonlAdapter",
    "MCQExample",
    "Row",
    "RowError",
    "TaskData",
    "dataset_table",
    "fingerprint",
    "load_task_data",
    "make_example",
    "question_from_row",
    "read_questions",
    "resolve_data_dir",
]
