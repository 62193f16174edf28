"""What the API's calls return: small dataclasses with the attributes a Python caller reads, each with
`to_dict()`, the JSON object `baas COMMAND --json` prints (the CLI prints it unchanged), and `to_json()`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from baas.training.metrics import accuracy_interval, wilson_interval


class Result:
    """A call's result: `to_dict()` is what `--json` prints, `to_json()` that line."""

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str)

    @classmethod
    def of(cls, record: dict):
        """From a library record. Its keys must be fields here, except those in NOT_RESULTS (a launcher worker's
        `rank`): a key the library adds without a field fails here, in the tests, not silently in a user's JSON."""
        known = {f.name for f in fields(cls)}
        unknown = set(record) - known - NOT_RESULTS
        if unknown:
            raise TypeError(f"{cls.__name__} has no field for {', '.join(sorted(unknown))}")
        return cls(**{k: v for k, v in record.items() if k in known})


NOT_RESULTS = {"rank"}  # record keys that are not results: which launcher worker made the record


@dataclass(kw_only=True)
class EvalResult(Result):
    """One bank entry scored on its dataset's evaluation split (`baas eval-task`). `accuracy` is of `n_eval`
    questions of `eval_split`, `accuracy_interval` its 95% Wilson interval ([low, high]); `predictions` is each question's chosen option, in order. `dataset`: whose
    questions were scored; `entry_dataset`: the one the entry was trained on (they differ under `on=`);
    `predictions_file`: where each question's answer and option scores were written (JSONL), if asked."""

    task: str
    accuracy: float | None = None
    macro_precision: float | None = None
    macro_recall: float | None = None
    macro_f1: float | None = None
    chance: float | None = None
    n_train: int | None = None
    n_eval: int | None = None
    accuracy_interval: list[float] | None = None
    eval_split: str | None = None
    seconds: float | None = None
    bank_file: str | None = None
    version: int | None = None
    notes: list[str] = field(default_factory=list)
    backbone: str | None = None
    device: str | None = None
    predictions: list[int] | None = None
    dataset: str | None = None
    entry_dataset: str | None = None
    predictions_file: str | None = None

    def __post_init__(self):
        if self.accuracy_interval is None:
            self.accuracy_interval = accuracy_interval(self.accuracy, self.n_eval)


@dataclass(kw_only=True)
class TrainResult(EvalResult):
    """A trained entry (`baas train-task`): its evaluation, with how it was trained. `reused`: the store already
    held an entry made with the same data and settings, and this is it (nothing was trained)."""

    max_eval: int | None = None
    trainable_parameters: int | None = None
    best_epoch: int | None = None
    history: list[dict] | None = None
    start_accuracy: float | None = None
    resumed: bool = False
    reused: bool = False
    config: dict | None = None
    pooling: str | None = None
    processes: int | None = None
    precision: str | None = None


@dataclass(kw_only=True)
class InitResult(Result):
    """A task's data-driven start (`baas init-prompts`): the topic labels of the prefix, the question clusters
    and chains of the suffix (each None when that init is not data-driven), the vectors' shapes, and whether
    it was read back from the store (kept in `store`)."""

    task: str
    backbone: str
    store: str
    n_train: int
    prefix_init: str
    suffix_init: str
    prefix_shape: list[int]
    suffix_shape: list[int]
    topics: dict | None = None
    chain: dict | None = None
    llm: dict | None = None
    from_store: bool = False


@dataclass(kw_only=True)
class FuseResult(Result):
    """A router fitted over the bank and scored with no task id (`baas fuse`). `strategies`: one report per
    strategy and space scored (per-task accuracy, macro F1, oracle and routing accuracy, the routing confusion);
    `best`: the best deployable one; `router`: the name of the saved router `predict` now uses (best's)."""

    strategies: list[dict]
    best: dict
    router: str

    @property
    def accuracy(self) -> float:
        """The best strategy's mean accuracy over the tasks."""
        return self.best["mean_accuracy"]

    def to_dict(self) -> dict:
        """One report scored: that report (its `router` key names the saved router); several: all three fields."""
        if len(self.strategies) == 1:
            return dict(self.best)
        return {"strategies": self.strategies, "best": self.best, "router": self.router}


@dataclass(kw_only=True)
class ForgettingResult(Result):
    """The continual protocol's report (`baas eval-forgetting`), as written to `folder`/report.json: `tasks` in
    the order learned, `methods` (each one's accuracy matrix, metrics with intervals, parameters, time), `failed`
    (methods that stopped, with the task and the error), `findings`."""

    report: dict
    folder: Path

    @property
    def tasks(self) -> list[str]:
        return self.report["tasks"]

    @property
    def methods(self) -> dict:
        return self.report["methods"]

    @property
    def failed(self) -> dict:
        return self.report["failed"]

    def to_dict(self) -> dict:
        return self.report


@dataclass(kw_only=True)
class DemoResult(Result):
    """`baas demo`: per generated task its chance, its test questions `n` and the final accuracy for baas (no
    task id), the oracle and naive, each with its 95% Wilson interval (`accuracy_interval`, ...); per method the
    forgetting metrics with their bootstrap `intervals`; the backbone; where the bank (`store`) and the report
    folder (`report`) are."""

    backbone: str
    store: str
    report: str
    tasks: list[dict]
    forgetting: dict


@dataclass(kw_only=True)
class Answer:
    """One question answered with no task id: the option chosen (`answer`, its index, and `answer_text`), every
    option's probability, and the bank entries used with their weights (largest first)."""

    id: str
    question: str
    answer: int
    answer_text: str
    probabilities: list[float]
    entries: list[dict]


@dataclass(kw_only=True)
class PredictResult(Result):
    """Answers from the fused bank (`baas predict`): which saved router answered (its strategy, rule and space),
    one Answer per question, the router's `warnings` (an entry it does not know), and, when some questions carry
    a label, the `accuracy` on those `n_labelled` questions and its 95% Wilson interval (`accuracy_interval`)."""

    router: str
    strategy: str
    rule: str
    space: str
    predictions: list[Answer]
    warnings: list[str] = field(default_factory=list)
    accuracy: float | None = None
    n_labelled: int = 0
    accuracy_interval: list[float] | None = None

    def __post_init__(self):
        if self.accuracy_interval is None:
            self.accuracy_interval = accuracy_interval(self.accuracy, self.n_labelled)

    def to_dict(self) -> dict:
        """`warnings` only when there are some; `accuracy`, `n_labelled` and `accuracy_interval` only when a
        question had a label."""
        out = {k: getattr(self, k) for k in ("router", "strategy", "rule", "space")}
        out["predictions"] = [asdict(a) for a in self.predictions]
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.n_labelled:
            out.update(accuracy=self.accuracy, n_labelled=self.n_labelled, accuracy_interval=self.accuracy_interval)
        return out


@dataclass(kw_only=True)
class Removal:
    """What `Bank.remove` is about to delete (given to its `confirm`): the versions of `task`, and the saved
    routers fitted on them (they refuse to answer until `fuse` is rerun)."""

    task: str
    version: int | None
    versions: list[int]
    routers: list[str]


@dataclass(kw_only=True)
class RemoveResult(Result):
    """`baas bank rm`: what went (`version` None: every version) and the routers that were fitted on it."""

    task: str
    version: int | None
    removed_versions: int
    routers: list[str]


@dataclass(kw_only=True)
class ExportResult(Result):
    """`baas bank export`: the folder written and its files."""

    task: str
    folder: str
    files: list[str]


@dataclass(kw_only=True)
class ImportResult(Result):
    """`baas bank import`: the entry added (a new version of `task`)."""

    task: str
    version: int


@dataclass(kw_only=True)
class DatasetList(Result):
    """`baas datasets`: the local data directory used (None: the hub) and, per known dataset, its hub id,
    where it would load from and its splits."""

    data_dir: str | None
    datasets: list[dict]


@dataclass(kw_only=True)
class SeedsResult(Result):
    """`baas train-task --seeds`: one TrainResult per seed (`runs`, in seed order; each a version of `task`),
    and the accuracy over them: `mean_accuracy`, `sd_accuracy` (sample standard deviation over the seeds; None
    for one seed), `n_eval` (the questions every seed was scored on, the same ones; None if they differ) and
    `accuracy_interval`, the 95% Wilson interval of the mean over those n_eval questions: the questions' share
    of the uncertainty (a bootstrap over them would be no wider, to first order; the seeds' share is `sd_accuracy`)."""

    task: str
    seeds: list[int]
    runs: list[TrainResult]
    mean_accuracy: float | None = None
    sd_accuracy: float | None = None
    n_eval: int | None = None
    accuracy_interval: list[float] | None = None

    def __post_init__(self):
        counts = {r.n_eval for r in self.runs}
        if self.n_eval is None and len(counts) == 1:
            self.n_eval = counts.pop()
        if self.accuracy_interval is None and self.mean_accuracy is not None and self.n_eval:
            self.accuracy_interval = wilson_interval(self.mean_accuracy * self.n_eval, self.n_eval)  # not rounded: a mean

    def to_dict(self) -> dict:
        return {"task": self.task, "seeds": list(self.seeds), "mean_accuracy": self.mean_accuracy,
                "sd_accuracy": self.sd_accuracy, "n_eval": self.n_eval, "accuracy_interval": self.accuracy_interval,
                "runs": [r.to_dict() for r in self.runs]}


@dataclass(kw_only=True)
class RunList(Result):
    """`baas runs`: the store's runs log, oldest first. Each run: id, task, kind (train or eval), status (running,
    done, failed, interrupted), started and finished (Unix time), seconds, accuracy with `n_eval`, `accuracy_interval`
    (95% Wilson) and `eval_split`,
    `settings` (the backbone, an evaluation's entry version, the TrainConfig fields that differ from their defaults,
    the device aside; precision when not fp32) and the whole `config`;
    an evaluation logged since eval-task's --on also has `dataset`, whose questions it scored."""

    store: str
    runs: list[dict]
