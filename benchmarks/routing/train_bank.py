"""Train one default bank entry per dataset into one store: the bank `baas fuse` is measured on.

    python benchmarks/routing/train_bank.py --data-dir DIR --store STORE [--tasks a,b] [--max-train 600] [--max-eval 200]

The same as running `baas train-task NAME --data-dir DIR --max-train 600 --max-eval 200 --store STORE`
for each dataset in turn (today's defaults otherwise), in one process so the backbone loads once.
A task that already has an entry trained on the same data is skipped, so a stopped run resumes.
Writes one JSON line per task to STORE/train_bank.jsonl.
"""

from __future__ import annotations

import argparse
import json

from baas.store import Store
from baas.training.backbone import load_backbone
from baas.training.config import TrainConfig
from baas.training.data import fingerprint, load_task_data
from baas.training.trainer import train_pair

TASKS = "arc_easy,arc_challenge,openbookqa,commonsense_qa,qasc,mmlu,medqa,medmcqa,dream,cosmos_qa"


def bank_arguments() -> argparse.ArgumentParser:
    """The options every script over the ten-dataset bank takes (the bank's own budget as defaults)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--max-train", type=int, default=600)
    ap.add_argument("--max-eval", type=int, default=200)
    return ap


def main() -> None:
    args = bank_arguments().parse_args()
    store, backbone = Store(args.store), load_backbone(None)
    done = {r["task"]: r["meta"].get("data_fingerprint") for r in store.list_entries()}
    for task in args.tasks.split(","):
        data = load_task_data(task, args.data_dir, max_train=args.max_train, max_eval=args.max_eval)
        if done.get(task) == fingerprint(data.train.examples):
            print(f"{task}: already in the bank", flush=True)
            continue
        result = train_pair(task, data, backbone, store, TrainConfig())
        with open(store.root / "train_bank.jsonl", "a") as f:
            f.write(json.dumps({k: result[k] for k in ("task", "accuracy", "macro_f1", "chance", "n_train", "n_eval",
                                                       "eval_split", "best_epoch", "seconds")}) + "\n")
        print(json.dumps({k: result[k] for k in ("task", "accuracy", "seconds")}), flush=True)


if __name__ == "__main__":
    main()
