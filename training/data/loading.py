"""Loading a task: the data directory (--data-dir, BAAS_DATA_DIR, else the hub), the three splits a
training run uses (validation held out of train, evaluation on validation, when a split is missing),
and the table `baas datasets` shows."""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

from baas.prompts_bank.errors import DataError
from baas.training.data.jsonl import JsonlAdapter
from baas.training.data.registry import REGISTRY, folder_format, get_adapter
from baas.training.data.schema import MCQExample, SplitData
from baas.training.data.synthetic import SyntheticAdapter

MIN_VALIDATION = 30  # fewer validation questions than this: the best epoch rests on a handful (a note says so)


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """--data-dir wins, then BAAS_DATA_DIR; None means the hub."""
    value = data_dir if data_dir not in (None, "") else os.environ.get("BAAS_DATA_DIR") or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"data directory {path} does not exist (from --data-dir or BAAS_DATA_DIR)")
    return path


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
