"""The Python API `import baas` offers, with the CLI's reach; every `baas` command is a thin call of one of these.

    tasks.py     train_task, train_seeds, eval_task, init_prompts (one task at a time); runs (the runs log),
                 questions, list_datasets, check_store
    protocol.py  eval_forgetting (the continual protocol), demo (the same in small, offline)
    bank.py      Bank: one store's entries (list, show, remove, export, import), routers (fuse), predict
    results.py   what these return: small dataclasses whose `to_dict()` is the CLI's `--json` output
    progress.py  ProgressBars (tqdm) for the calls that train or evaluate (`progress=False`: silence)
    resolve.py   open_store, and the backbone and names a caller passes
"""

from baas.training.api.bank import Bank
from baas.training.api.progress import ProgressBars
from baas.training.api.protocol import demo, eval_forgetting
from baas.training.api.resolve import open_store
from baas.training.api.results import (Answer, DatasetList, DemoResult, EvalResult, ExportResult, ForgettingResult, FuseResult,
                                       ImportResult, InitResult, PredictResult, Removal, RemoveResult, Result, RunList, SeedsResult,
                                       TrainResult)
from baas.training.api.tasks import (check_store, eval_task, init_prompts, list_datasets, questions, runs, train_seeds,
                                     train_task)
from baas.training.fusion import StaleRouterWarning

__all__ = ["Bank", "ProgressBars", "StaleRouterWarning", "check_store", "demo", "eval_forgetting", "eval_task", "init_prompts",
           "list_datasets", "open_store", "questions", "runs", "train_seeds", "train_task",
           "Answer", "DatasetList", "DemoResult", "EvalResult", "ExportResult", "ForgettingResult", "FuseResult", "ImportResult",
           "InitResult", "PredictResult", "Removal", "RemoveResult", "Result", "RunList", "SeedsResult", "TrainResult"]
