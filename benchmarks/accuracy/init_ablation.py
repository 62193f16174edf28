"""Does a data-driven start help? Initialisation x reparameterisation ablation against PEFT prompt tuning.

    python benchmarks/accuracy/init_ablation.py run --data-dir DIR     # every (dataset, method, seed) not yet in the log
    (here: two processes side by side, `--threads 1 --datasets arc_easy,openbookqa` and
     `--threads 1 --datasets arc_challenge,mmlu`, appending to the same log)
    python benchmarks/accuracy/init_ablation.py report                 # benchmarks/results/init_ablation.md from the log

Every run: the offline MiniLM frozen, the same training questions, epochs, batches, learning rates and
schedule for every method; the epoch with the best validation accuracy is kept and evaluated on the
test split (never used for a choice). Offline chains (no LLM is reachable here). Methods:

    head-only         no prompts, scoring head only (the floor every prompt method must beat)
    random            random prefix + random suffix, no reparameterisation
    vocab             vocab + vocab, none (baas's default)
    topic+autocot     topic-label prefix + Auto-CoT chain suffix, none
    full              topic + autocot + BAP-Encoder (the method as designed)
    prefix-only       topic prefix + BAP-Encoder, no suffix
    suffix-only       autocot suffix + BAP-Encoder, no prefix
    peft              PEFT prompt tuning (PromptTuningConfig, Lp+Ls virtual tokens from sampled vocabulary):
                      eval-forgetting's `prompt_tuning` learner, trained by baas's own loop (`loop.fit`)
                      with the same head, batches, learning rates, schedule and best-epoch rule

Runs append to benchmarks/results/init_ablation.jsonl, so an interrupted `run` continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from baas.store import Store
from baas.training.backbone import load_backbone
from baas.training.config import TrainConfig
from baas.training.data import load_task_data
from baas.training.trainer import train_pair

sys.path.insert(0, str(Path(__file__).parent))
from recipe import baseline_run  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
LOG = RESULTS / "init_ablation.jsonl"
DATASETS = ("arc_easy", "openbookqa", "arc_challenge", "mmlu")
METHODS = {
    "head-only": dict(prefix_len=0, suffix_len=0),
    "random": dict(prefix_init="random", suffix_init="random"),
    "vocab": dict(prefix_init="vocab", suffix_init="vocab"),
    "topic+autocot": dict(prefix_init="topic", suffix_init="autocot"),
    "full": dict(prefix_init="topic", suffix_init="autocot", reparam="bap"),
    "prefix-only": dict(prefix_init="topic", suffix_len=0, reparam="bap"),
    "suffix-only": dict(suffix_init="autocot", prefix_len=0, reparam="bap"),
    "peft": {},
}


def run(args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    backbone = load_backbone(None)
    log = Path(args.log)
    done = set()
    if log.exists():
        done = {(r["dataset"], r["method"], r["seed"]) for r in map(json.loads, log.read_text().splitlines())}
    # The settings of the recorded ablation: a shallow pair and head lr 3e-2 (the defaults before deep pairs).
    base = TrainConfig(epochs=args.epochs, depth=1, head_lr=3e-2)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp)  # one store: a topic/chain start is made once per dataset and seed
        for dataset in args.datasets.split(","):
            data = load_task_data(dataset, args.data_dir, max_train=args.max_train, max_eval=args.max_eval)
            for seed in map(int, args.seeds.split(",")):
                for method in args.methods.split(","):
                    if (dataset, method, seed) in done:
                        continue
                    config = replace(base, seed=seed, **METHODS[method])
                    started = time.time()
                    if method == "peft":
                        r = baseline_run(backbone, args.data_dir, dataset, config, "prompt", args.max_train, args.max_eval)
                    else:
                        r = train_pair(dataset, data, backbone, store, config)
                    row = {"dataset": dataset, "method": method, "seed": seed, "eval_split": r["eval_split"],
                           "accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "chance": r["chance"],
                           "validation_accuracy": max(h["validation_accuracy"] for h in r["history"]),
                           "n_train": len(data.train.examples), "n_eval": len(data.eval.examples),
                           "seconds": round(time.time() - started, 1), "config": asdict(config),
                           "time": time.strftime("%Y-%m-%d %H:%M")}
                    with log.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(f"{dataset:12s} {method:14s} seed {seed}  val {row['validation_accuracy']:.3f}  "
                          f"test {row['accuracy']:.3f}  f1 {row['macro_f1']:.3f}  ({row['seconds']:.0f}s)", flush=True)


def _ms(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0:.3f}"


def report(args) -> None:
    rows = list({(r["dataset"], r["method"], r["seed"]): r  # one row per run, should two processes both make it
                 for r in reversed([json.loads(line) for line in LOG.read_text().splitlines()])}.values())[::-1]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    by = {}
    for r in rows:
        by.setdefault((r["dataset"], r["method"]), []).append(r)
    first = rows[0]
    lines = [
        "# Initialisation ablation: does a data-driven start help?", "",
        "Command: `python benchmarks/accuracy/init_ablation.py run --data-dir DIR` then `python benchmarks/accuracy/init_ablation.py report`.",
        f"MiniLM frozen; {first['n_train']} training questions, {first['config']['epochs']} epochs, batch "
        f"{first['config']['batch_size']}, prompt lr {first['config']['lr']}, head lr {first['config']['head_lr']}, "
        f"5+5 vectors (prefix-only / suffix-only: 5 on one side; PEFT: 10 virtual tokens); best epoch on validation, "
        f"then the test split ({first['n_eval']} questions, fixed subset). Offline chains (no LLM reachable). "
        "Mean ± std over seeds " + ", ".join(str(s) for s in sorted({r['seed'] for r in rows})) + ".", "",
        "## Test accuracy", "",
        "| method | " + " | ".join(datasets) + " | mean |", "|---" * (len(datasets) + 2) + "|",
    ]
    for metric, title in (("accuracy", None), ("macro_f1", "## Test macro F1"), ("validation_accuracy", "## Validation accuracy (best epoch; what choices may use)")):
        if title:
            lines += ["", title, "", "| method | " + " | ".join(datasets) + " | mean |", "|---" * (len(datasets) + 2) + "|"]
        for m in methods:
            cells, means = [], []
            for d in datasets:
                vals = [r[metric] for r in by.get((d, m), [])]
                cells.append(_ms(vals) + (f" (n={len(vals)})" if len(vals) != 3 else "") if vals else "-")
                if vals:
                    means.append(statistics.mean(vals))
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {statistics.mean(means):.3f} |")
    lines += ["", "Chance: " + ", ".join(f"{d} {by[(d, methods[0])][0]['chance']:.3f}" for d in datasets) + "."]
    (RESULTS / "init_ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--data-dir", required=True)
    r.add_argument("--datasets", default=",".join(DATASETS))
    r.add_argument("--methods", default=",".join(METHODS))
    r.add_argument("--seeds", default="0,1,2")
    r.add_argument("--max-train", type=int, default=240)
    r.add_argument("--max-eval", type=int, default=200)
    r.add_argument("--epochs", type=int, default=2)
    r.add_argument("--log", default=str(LOG), help="JSON lines to append to (default: %(default)s)")
    r.add_argument("--threads", type=int, default=None, help="torch threads (two 1-thread runs side by side use 2 cores best)")
    sub.add_parser("report")
    args = parser.parse_args()
    run(args) if args.cmd == "run" else report(args)


if __name__ == "__main__":
    main()
