"""What a protocol run is made of: its `Settings` (tasks, orders, `Budget`, train config, router settings),
and the `Context` every method of the run shares (backbone, store, each task's data loaded once)."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

from baas.store import Store
from baas.training.backbone import Backbone
from baas.training.batching import Encoded
from baas.training.cache import encode_cached
from baas.training.config import TrainConfig
from baas.training.data import TaskData, load_task_data
from baas.training.fusion import DEFAULT_QUERY, DEFAULT_RULE
from baas.training.parallel import Processes
from baas.training.progress import Reporter

# The shared pack's ten datasets, from grade-school science to medicine to reading comprehension.
DEFAULT_ORDER = ("arc_easy", "arc_challenge", "openbookqa", "commonsense_qa", "qasc", "mmlu", "medqa", "medmcqa",
                 "dream", "cosmos_qa")


@dataclass
class Budget:
    max_train: int | None = 600
    max_eval: int | None = 200
    epochs: int = 2
    seed: int = 0


@dataclass
class Settings:
    """Everything that decides the figures; a results folder holds one run of one Settings."""

    tasks: list[str]
    orders: int = 1
    budget: Budget = field(default_factory=Budget)
    config: TrainConfig = field(default_factory=TrainConfig)
    rule: str = DEFAULT_RULE
    query: str = str(DEFAULT_QUERY)
    space: str = "output"  # where baas mixes entries: output (cached answers) or prompt (a fused pass per row)
    ewc_lambda: float | None = None  # None: chosen on validation over the first two tasks (EWC.lambda_grid)
    # None: each method picks its learning rate from its own grid on the first task's validation split; a
    # tuple: every method's grid (`baas demo` gives the config's one rate, so nothing is tried twice)
    lr_grid: tuple[float, ...] | None = None

    def identity(self, backbone: str, precision: str = "fp32") -> dict:
        """What a results folder was made with. `precision`: the resolved one (resolve_precision); the device is
        not part of it (a run stopped on one device resumes on another)."""
        identity = dict(asdict(self), backbone=backbone, data_dir=None)
        if self.lr_grid is None:  # the default: results folders made before this setting existed stay resumable
            del identity["lr_grid"]
        identity["config"].pop("device", None)
        if identity["config"].pop("precision", None) is not None and precision != "fp32":  # (fp32: as before)
            identity["config"]["precision"] = precision
        return identity

    def order(self, o: int) -> list[str]:
        """Order 0 is the tasks as given; orders 1.. are seeded shuffles of them."""
        if o == 0:
            return list(self.tasks)
        return random.Random(self.budget.seed * 1000 + o).sample(self.tasks, len(self.tasks))


class Context:
    """What every method shares: backbone, store, data (loaded once per task), settings, reporter."""

    def __init__(self, settings: Settings, backbone: Backbone, store: Store, data_dir, reporter: Reporter):
        self.settings, self.backbone, self.store, self.data_dir, self.reporter = settings, backbone, store, data_dir, reporter
        self.config = settings.config
        self.pooling = self.config.pooling or backbone.default_pooling
        self.max_length = min(self.config.max_length, backbone.max_positions - self.config.prefix_len - self.config.suffix_len)
        self._data: dict[str, TaskData] = {}
        self.processes = Processes()  # under a launch: data-parallel training and evaluation, the main process writes

    def data(self, task: str) -> TaskData:
        if task not in self._data:
            b = self.settings.budget
            self._data[task] = load_task_data(task, self.data_dir, max_train=b.max_train, max_eval=b.max_eval)
        return self._data[task]

    def add_data(self, data: TaskData) -> None:
        """Use `data` for its task instead of loading it by name (a benchmark's own subsets of a dataset)."""
        self._data[data.name] = data

    def encoded(self, task: str, split: str) -> list[Encoded]:
        return encode_cached(getattr(self.data(task), split).examples, self.backbone, self.max_length, self.store)
