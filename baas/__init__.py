"""baas: continual, parameter-efficient multiple-choice QA on a frozen transformer.

The Python API has the CLI's reach (every `baas` command is a thin call of one of these)::

    import baas

    baas.train_task("arc_easy", data_dir="DIR", max_train=600)     # baas train-task: one entry in the bank
    baas.eval_task("arc_easy@v1", data_dir="DIR")                    # baas eval-task: one entry on its questions
    baas.train_seeds("arc_easy", 3, data_dir="DIR")                  # baas train-task --seeds 3: mean and sd of accuracy
    baas.init_prompts("arc_easy", data_dir="DIR")                    # baas init-prompts: the data-driven start
    baas.runs()                                                      # baas runs: the train runs in the store's log
    baas.eval_forgetting(["arc_easy", "qasc"], "baas,naive", out="DIR2", data_dir="DIR")  # baas eval-forgetting
    baas.demo()                                                      # baas demo: the offline tour
    baas.list_datasets("DIR")                                        # baas datasets
    baas.check_store()                                               # baas store check
    bank = baas.Bank()                    # the default store ($BAAS_HOME, else ~/.baas); Bank("path") for another
    bank.entries()                        # baas bank list
    bank.describe("arc_easy@v1")          # baas bank show: an entry's metadata, metrics and tensor shapes
    bank.load("arc_easy@v1")              # an entry's tensors and metadata
    bank.export("arc_easy", "SHARED")     # baas bank export
    bank.import_entry("SHARED", "easy")   # baas bank import
    bank.remove("easy")                   # baas bank rm (names the routers fitted on it)
    bank.fuse()                           # fit a router (cluster, the default) and save it; no evaluation
    bank.fuse_and_evaluate("all", data_dir="DIR")  # baas fuse: every strategy scored, the best saved for predict
    bank.routers()                        # the saved routers, and whether each still fits the bank
    bank.predict("Which gas do plants take in?", ["oxygen", "carbon dioxide"])   # baas predict

Also: `load_backbone`, `load_task_data`, `TrainConfig` (the settings `train_task` takes as keywords),
`questions` (questions from plain values), `BaasError` (every user-facing error) and
`StaleRouterWarning` (a saved router that does not know an entry added since). Results are small
dataclasses (`TrainResult`, `EvalResult`, `InitResult`, `FuseResult`, `ForgettingResult`, `DemoResult`,
`PredictResult` of `Answer`s, ...; in baas.training.api) with attributes, and `to_dict()`: the JSON the CLI
prints with `--json`. Training and evaluation show progress bars (tqdm: a widget in a notebook);
`progress=False` turns them off. Names are imported on first use, so `import baas` stays light.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("baas")
except PackageNotFoundError:  # pragma: no cover - running from a checkout that was never installed
    __version__ = "0+unknown"

_EXPORTS = {
    "train_task": "baas.training.api",
    "train_seeds": "baas.training.api",
    "runs": "baas.training.api",
    "eval_task": "baas.training.api",
    "eval_forgetting": "baas.training.api",
    "init_prompts": "baas.training.api",
    "demo": "baas.training.api",
    "list_datasets": "baas.training.api",
    "check_store": "baas.training.api",
    "Bank": "baas.training.api",
    "questions": "baas.training.api",
    "StaleRouterWarning": "baas.training.fusion",
    "load_backbone": "baas.training.backbone",
    "load_task_data": "baas.training.data",
    "TrainConfig": "baas.training.config",
    "BaasError": "baas.prompts_bank.errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'baas' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API (imported on first use, so not yet in the module's globals) and the module's own dunders."""
    return sorted({*__all__, *(k for k in globals() if k.startswith("__"))})
