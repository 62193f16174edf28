"""One task at a time: train a dataset's entry into the bank, score an entry, make (or show) a task's
data-driven start; and what these calls read: questions from plain values, the known datasets, a store's check."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from baas.prompts_bank.errors import BaasError
from baas.store import Store, parse_entry_ref, validate_task_name
from baas.training.api.progress import reporter_for
from baas.training.api.resolve import backbone_of, open_store
from baas.training.api.results import DatasetList, EvalResult, InitResult, TrainResult
from baas.training.backbone import Backbone
from baas.training.config import TrainConfig
from baas.training.data import MCQExample, RowError, dataset_table, load_task_data, question_from_row, resolve_data_dir


def _config(settings: dict) -> TrainConfig:
    """The TrainConfig of keyword `settings`, checked; a name that is not a field is an error that lists them."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise BaasError(f"unknown setting {', '.join(unknown)}; TrainConfig has: {', '.join(sorted(known))}")
    config = TrainConfig(**settings)
    config.check()
    return config


def train_task(dataset: str, *, name: str | None = None, data_dir: str | Path | None = None, store: str | Path | Store | None = None,
               backbone: str | Backbone | None = None, max_train: int | None = None, max_eval: int | None = None,
               format: str | None = None, skip_invalid: bool = False, progress: bool = True, reporter=None, force: bool = False,
               **settings) -> TrainResult:
    """Train `dataset`'s prompt pair and head and save it to the bank as entry `name` (default: the dataset's
    name), as `baas train-task` does. `settings` are `TrainConfig` fields (epochs, lr, depth, prefix_len, ...).
    An entry already made with the same data and settings is returned as it is (`reused`), unless `force`.
    Progress bars unless `progress=False` (or another `reporter`)."""
    from baas.training.trainer import train_pair

    name = validate_task_name(name or dataset)
    config = _config(settings)
    st = open_store(store)
    data = load_task_data(dataset, data_dir, max_train=max_train, max_eval=max_eval, skip_invalid=skip_invalid, format=format)
    record = train_pair(name, data, backbone_of(backbone, config.device, config.precision), st, config,
                   reporter_for(reporter, progress), force=force)
    return TrainResult.of(record)


def eval_task(name: str, *, version: int | None = None, data_dir: str | Path | None = None, store: str | Path | Store | None = None,
              backbone: str | Backbone | None = None, max_eval: int | None = None, skip_invalid: bool = False,
              progress: bool = True, reporter=None, device: str = TrainConfig.device,
              precision: str = TrainConfig.precision) -> EvalResult:
    """Evaluate a bank entry (`NAME`, `NAME@vN`, or `version=`) on its dataset's evaluation split, as `baas eval-task`
    does: with `backbone`, the newest version trained on that backbone, loaded onto `device` in `precision`
    (see TrainConfig)."""
    from baas.training.trainer import evaluate_entry

    st = open_store(store, create=False)
    task, at = parse_entry_ref(name)
    version = at or version
    info = st.describe(task, version)
    TrainConfig(device=device, precision=precision).check()
    bb = backbone_of(backbone or info["backbone"], device, precision)
    if version is None:  # the newest version made for this backbone, when the newest overall is not
        version = next((v["version"] for v in st.versions(task) if v["backbone"] == bb.name), info["version"])
        info = st.describe(task, version)
    data = load_task_data(info["meta"]["dataset"], data_dir, max_eval=max_eval, skip_invalid=skip_invalid,
                          format=info["meta"].get("format"))
    return EvalResult.of(evaluate_entry(task, data, bb, st, reporter_for(reporter, progress), version=version))


def init_prompts(name: str, *, data_dir: str | Path | None = None, store: str | Path | Store | None = None,
                 backbone: str | Backbone | None = None, max_train: int | None = None, skip_invalid: bool = False,
                 prefix_init: str = "topic", suffix_init: str = "autocot", progress: bool = True, reporter=None,
                 **settings) -> InitResult:
    """Make (or read back from the store) task `name`'s data-driven start, as `baas init-prompts` does: topic
    labels for the prefix; question clusters, their representatives, local reasoning chains and the merged
    global chain for the suffix (the data-driven inits are the defaults here, unlike `train_task`'s). `settings`
    are TrainConfig fields (prefix_len, suffix_len, clusters, llm_base_url, llm_model, seed, ...); `train_task`
    with the same ones starts from what this made."""
    from baas.training.cache import encode_cached
    from baas.training.trainer import task_init

    validate_task_name(name)
    config = _config(dict(settings, prefix_init=prefix_init, suffix_init=suffix_init))
    st = open_store(store)
    data = load_task_data(name, data_dir, max_train=max_train, max_eval=1, skip_invalid=skip_invalid)
    bb = backbone_of(backbone)
    train_enc = encode_cached(data.train.examples, bb, config.max_length, st)
    init = task_init(name, data, bb, st, config, train_enc, reporter=reporter_for(reporter, progress))
    return InitResult.of(dict(init.info, task=name, backbone=bb.name, store=str(st.root), n_train=len(data.train.examples),
                              prefix_shape=list(init.prefix.shape), suffix_shape=list(init.suffix.shape)))


def questions(question: str | list, options: list | None = None, contexts: list[str] | str | None = None) -> list[MCQExample]:
    """Questions from plain Python values: one question and its options, lists of both, or a list of dicts with
    `question`, `options` and optionally `context`, `id` and `label` or `answer`. A question without an id gets
    the one `baas predict --file` gives the same row (a hash of its text and options)."""
    if isinstance(question, str):
        question, options = [question], [options]
        contexts = [contexts] if isinstance(contexts, str) or contexts is None else contexts
    out = []
    for i, q in enumerate(question):
        if isinstance(q, dict):
            row = dict(q)
        else:
            if options is None or i >= len(options) or options[i] is None:
                raise BaasError(f"question {i + 1} ({q!r}) has no options")
            row = {"question": q, "options": options[i], "context": (contexts or [None] * len(question))[i]}
        row = {k: list(v) if k == "options" and isinstance(v, tuple) else v for k, v in row.items() if v is not None}
        try:
            out.append(question_from_row(row))
        except RowError as exc:
            raise BaasError(f"question {i + 1}: {exc}") from None
    return out


def list_datasets(data_dir: str | Path | None = None) -> DatasetList:
    """The known dataset adapters and where each would load from (`data_dir`, else $BAAS_DATA_DIR, else the hub), as
    `baas datasets` shows them."""
    root = resolve_data_dir(data_dir)
    return DatasetList(data_dir=str(root) if root else None, datasets=dataset_table(data_dir))


def check_store(store: str | Path | Store | None = None, *, repair: bool = False) -> dict:
    """Verify every file of a store against its catalog, as `baas store check` does (see Store.check); `repair`
    deletes what no catalog row needs."""
    return open_store(store, create=False).check(repair=repair)
