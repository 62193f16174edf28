"""baas: continual, parameter-efficient multiple-choice QA on a frozen transformer.

The public Python API (the CLI is built on the same calls)::

    import baas

    result = baas.train_task("arc_easy", data_dir="DIR", max_train=600)   # one entry in the bank
    bank = baas.Bank()                                                     # the default store
    bank.entries()                                                         # what it holds
    bank.fuse("hard", data_dir="DIR")                                      # fit and save a router
    bank.predict("Which gas do plants take in?", ["oxygen", "carbon dioxide"])

Names are imported on first use, so `import baas` stays light.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("baas")
except PackageNotFoundError:  # pragma: no cover - running from a checkout that was never installed
    __version__ = "0+unknown"

_EXPORTS = {
    "train_task": "baas.training.api",
    "Bank": "baas.training.api",
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
