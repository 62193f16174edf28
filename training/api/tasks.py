"""One task at a time: train a dataset's entry into the bank (once, or once per seed), score an entry (on its
own dataset or another's), make (or show) a task's data-driven start; and what these calls read: the runs log,
questions from plain values, the known datasets, a store's check."""

from __future__ import annotations

import json
import statistics
from dataclasses import fields, replace
from pathlib import Path

from baas.prompts_bank.errors import BaasError
from baas.store import Store, parse_entry_ref, validate_task_name
from baas.training.api.progress import reporter_for
from baas.training.api.resolve import backbone_of, open_store
from baas.training.api.results import DatasetList, EvalResult, InitResult, RunList, SeedsResult, TrainResult
from baas.training.backbone import Backbone
from baas.training.config import TrainConfig
from baas.training.data import MCQExample, RowError, dataset_table, load_task_data, question_from_row, resolve_data_dir
from baas.training.metrics import accuracy_interval


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


def train_seeds(dataset: str, seeds: int | list[int], **kwargs) -> SeedsResult:
    """`train_task` once per seed, as `baas train-task --seeds` does: `seeds` is a count (that many seeds from
    `seed`, default 0: seed, seed+1, ...) or a list of seeds. Every seed's entry is a version of the one entry
    `name` (NAME@v1, NAME@v2, ...; the seed is in each version's settings, so a rerun reuses the seeds already
    trained); the newest, the last seed's, is what `eval-task NAME` and `fuse` use. Returns every run and the
    mean and sample standard deviation of their accuracies."""
    if isinstance(seeds, int):
        if seeds < 1:
            raise BaasError(f"seeds: {seeds}: expected at least 1")
        first = kwargs.pop("seed", TrainConfig.seed)
        seeds = list(range(first, first + seeds))
    else:
        seeds = list(seeds)
        kwargs.pop("seed", None)
        if not seeds or len(set(seeds)) != len(seeds):
            raise BaasError(f"seeds: {seeds}: expected distinct seeds, at least one")
    runs = [train_task(dataset, seed=s, **kwargs) for s in seeds]
    accuracies = [r.accuracy for r in runs if r.accuracy is not None]
    return SeedsResult(task=runs[0].task, seeds=seeds, runs=runs,
                       mean_accuracy=statistics.fmean(accuracies) if accuracies else None,
                       sd_accuracy=statistics.stdev(accuracies) if len(accuracies) > 1 else None)


SPLITS = ("eval", "validation")


def eval_task(name: str, *, version: int | None = None, data_dir: str | Path | None = None, store: str | Path | Store | None = None,
              backbone: str | Backbone | None = None, max_eval: int | None = None, skip_invalid: bool = False,
              progress: bool = True, reporter=None, device: str = TrainConfig.device,
              precision: str = TrainConfig.precision, split: str = "eval", on: str | None = None,
              predictions: str | Path | None = None) -> EvalResult:
    """Evaluate a bank entry (`NAME`, `NAME@vN`, or `version=`) on its dataset's evaluation split, as `baas eval-task`
    does: with `backbone`, the newest version trained on that backbone, loaded onto `device` in `precision`
    (see TrainConfig). `split="validation"`: the validation questions instead (those the best epoch was chosen
    on). `on`: another dataset's questions (the result's `dataset`; `entry_dataset` is the entry's own).
    `predictions`: a file to write, one JSON line per question (id, question, options, label, answer, correct,
    and every option's score)."""
    from baas.training.trainer import evaluate_entry

    if split not in SPLITS:
        raise BaasError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
    st = open_store(store, create=False)
    task, at = parse_entry_ref(name)
    version = at or version
    info = st.describe(task, version)
    TrainConfig(device=device, precision=precision).check()
    bb = backbone_of(backbone or info["backbone"], device, precision)
    if version is None:  # the newest version made for this backbone, when the newest overall is not
        version = next((v["version"] for v in st.versions(task) if v["backbone"] == bb.name), info["version"])
        info = st.describe(task, version)
    own = info["meta"]["dataset"]
    data = load_task_data(on or own, data_dir, max_eval=max_eval, skip_invalid=skip_invalid,
                          format=None if on else info["meta"].get("format"))
    if split == "validation":
        data = replace(data, eval=data.validation)
    record = evaluate_entry(task, data, bb, st, reporter_for(reporter, progress), version=version,
                            keep_scores=predictions is not None)
    record.update(dataset=data.name, entry_dataset=own)
    if predictions is not None:
        record["predictions_file"] = _write_predictions(Path(predictions), data.eval.examples, record)
    record.pop("scores")  # every option's score goes to the predictions file, not into the result
    return EvalResult.of(record)


def _write_predictions(path: Path, examples: list[MCQExample], record: dict) -> str:
    """One JSON line per question: what it asked, its label, the option chosen, whether that is right, the scores."""
    try:
        with path.open("w") as out:
            for ex, answer, scores in zip(examples, record["predictions"], record["scores"]):
                out.write(json.dumps({"id": ex.id, "question": ex.question, "options": list(ex.options), "label": ex.label,
                                      "answer": answer, "correct": None if ex.label is None else answer == ex.label,
                                      "scores": scores}) + "\n")
    except OSError as exc:
        raise BaasError(f"{path}: cannot write the predictions ({exc.strerror or exc})") from None
    return str(path)


def runs(store: str | Path | Store | None = None, *, task: str | None = None, kind: str | None = "train") -> RunList:
    """The store's runs log, oldest first, as `baas runs` shows it: every train run (`kind="eval"`: evaluations,
    None: both), or `task`'s only; see RunList for what a run holds."""
    st = open_store(store, create=False)
    # where a run ran is no setting; its precision (resolved from auto) is one when it is not fp32
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.name != "device"} | {"precision": "fp32"}
    out = []
    for row in st.runs(task):
        if kind is not None and row["kind"] != kind:
            continue
        config, metrics = json.loads(row["config"] or "{}"), json.loads(row["metrics"] or "{}")
        settings = {k: v for k, v in config.items() if k in ("backbone", "version") or (k in defaults and v != defaults[k])}
        finished, n_eval = row["finished"], metrics.get("n_eval", metrics.get("n"))
        out.append(dict(id=row["id"], task=row["task"], kind=row["kind"], status=row["status"], started=row["started"],
                        finished=finished, seconds=round(finished - row["started"], 2) if finished else None,
                        accuracy=metrics.get("accuracy"), n_eval=n_eval,
                        accuracy_interval=accuracy_interval(metrics.get("accuracy"), n_eval),
                        eval_split=metrics.get("eval_split"), settings=settings, config=config,
                        **({"dataset": metrics["dataset"]} if "dataset" in metrics else {})))
    return RunList(store=str(st.root), runs=out)


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
