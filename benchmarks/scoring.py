"""Scoring modes side by side on the shared datasets: which scoring should be the default?

Rows (MiniLM, frozen unless said):
    zero_shot    the option whose pooled embedding is nearest the question's: a head-only `dual` head at its
                 untrained start (exactly the cosine), nothing trained
    head_joint   head-only, joint scoring (a linear head on [context question; option]), head rate 3e-2
    head_dual    head-only, dual scoring (scale x cosine through I + low-rank P)
    head_both    head-only, both
    deep_joint   the gated deep pair with joint scoring: the default before this benchmark
    deep_dual    the gated deep pair, dual
    deep_both    the gated deep pair, both
    full_joint   every backbone weight and the head trained (eval-forgetting's full_ft learner), joint
    full_dual    the same, dual

Budget: 600 training questions, 2 epochs, at most 200 validation and 200 evaluation questions per dataset,
seed 0 (`--seeds 0,1,2` adds seeds). Each row's epoch is chosen on validation; dual and both also consider
the untrained start (epoch 0). Every run appends one line to results/scoring_runs.jsonl with its
validation and test accuracy, each test question's prediction (for paired intervals), the time spent and
the trained numbers; a run already there is not run again, so a stopped command resumes. Several workers
may share the job list (`--worker`-free: per-job lock files).

    python benchmarks/scoring.py run --data-dir DIR [--rows a,b] [--datasets a,b] [--seeds 0]
    python benchmarks/scoring.py report        # results/scoring.md from the log
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
LOG = Path(os.environ.get("BAAS_SCORING_LOG", RESULTS / "scoring_runs.jsonl"))
LOCKS = Path(tempfile.gettempdir()) / "baas-scoring-locks"
DATASETS = ("arc_easy", "commonsense_qa", "cosmos_qa", "openbookqa", "qasc", "arc_challenge", "mmlu", "medqa",
            "medmcqa", "dream")
HEAD_ONLY = dict(prefix_len=0, suffix_len=0, depth=1, gate=None)
ROWS = {
    "zero_shot": dict(HEAD_ONLY, scoring="dual"),
    "head_joint": dict(HEAD_ONLY, scoring="joint", head_lr=3e-2),
    "head_dual": dict(HEAD_ONLY, scoring="dual"),
    "head_both": dict(HEAD_ONLY, scoring="both"),
    "deep_joint": dict(scoring="joint"),
    "deep_dual": dict(scoring="dual"),
    "deep_both": dict(scoring="both"),
    "full_joint": dict(scoring="joint", lr=3e-5),  # full_ft's rate chosen on arc_easy validation (recipe_chosen.json)
    "full_dual": dict(scoring="dual", lr=3e-5),
}
BUDGET = dict(max_train=600, max_eval=200, epochs=2)


def done() -> dict[tuple, dict]:
    rows = [json.loads(line) for line in LOG.read_text().splitlines()] if LOG.is_file() else []
    return {(r["dataset"], r["row"], r["seed"]): r for r in rows}


def one(dataset: str, row: str, seed: int, data_dir: str, backbone, store) -> dict:
    """Train and evaluate one (dataset, row, seed) with the library; returns the logged line."""
    import torch

    from baas.training.config import TrainConfig
    from baas.training.data import load_task_data
    from baas.training.loop import PairLearner, evaluate, learner_scorer
    from baas.training.trainer import encode_cached, make_trainable, train_task

    data = load_task_data(dataset, data_dir, max_train=BUDGET["max_train"], max_eval=BUDGET["max_eval"])
    config = TrainConfig(**ROWS[row], epochs=BUDGET["epochs"], seed=seed)
    started = time.perf_counter()
    if row == "zero_shot":
        val_enc, test_enc = (encode_cached(s.examples, backbone, config.max_length, store) for s in (data.validation, data.eval))
        learner = PairLearner(backbone, make_trainable(backbone, val_enc, config)[0], "mean_input")
        learner.module.load_state_dict(learner.untrained_start())  # nothing trained: exactly the cosine
        val, test = (evaluate(learner_scorer(learner), enc, backbone.pad_id, 32) for enc in (val_enc, test_enc))
        record = dict(validation_accuracy=val["accuracy"], accuracy=test["accuracy"], predictions=test["predictions"],
                      trainable_parameters=0, history=[], best_epoch=0)
    elif row.startswith("full_"):
        record = full_fine_tuning(data, config, backbone, store)
    else:
        result = train_task(f"{dataset}-{row}-s{seed}", data, backbone, store, config, force=True)
        best = max([h["validation_accuracy"] for h in result["history"]] + [result.get("start_accuracy") or 0.0])
        record = {k: result[k] for k in ("accuracy", "predictions", "trainable_parameters", "history", "best_epoch",
                                         "start_accuracy")}
        record["validation_accuracy"] = best
    labels = [e.label for e in data.eval.examples]
    return dict(dataset=dataset, row=row, seed=seed, **record, labels=labels, n_eval=len(labels),
                n_validation=len(data.validation.examples), eval_split=data.eval_split,
                seconds=round(time.perf_counter() - started, 1), threads=torch.get_num_threads())


def full_fine_tuning(data, config, backbone, store) -> dict:
    """eval-forgetting's full_ft learner on one task, through the protocol's own loop and evaluator."""
    import torch

    from baas.training.baselines import BASELINES
    from baas.training.continual import Budget, Context, Settings, fit, learner_metrics
    from baas.training.trainer import Reporter

    ctx = Context(Settings(tasks=[data.name], budget=Budget(None, None, config.epochs, config.seed), config=config),
                  backbone, store, None, Reporter())
    ctx._data[data.name] = data
    learner = BASELINES["full_ft"](ctx, [data.name], "scoring").new_learner()
    torch.manual_seed(config.seed * 1000)
    train, val, test = (ctx.encoded(data.name, split) for split in ("train", "validation", "eval"))
    validation = fit(ctx, learner, train, val, f"{data.name} full_ft", lr=config.lr)
    metrics = learner_metrics(ctx, learner, test, "test")
    return dict(validation_accuracy=validation, accuracy=metrics["accuracy"], predictions=metrics.get("predictions"),
                trainable_parameters=sum(t.numel() for t in learner.trainable().values()), history=[], best_epoch=None)


def run(args) -> None:
    import torch

    from baas.store import Store
    from baas.training.backbone import load_backbone

    torch.set_num_threads(args.threads)
    backbone = load_backbone(None)
    rows = args.rows.split(",") if args.rows else list(ROWS)
    datasets = args.datasets.split(",") if args.datasets else list(DATASETS)
    seeds = [int(s) for s in args.seeds.split(",")]
    LOCKS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "store")
        for seed in seeds:  # row by row (in the order given), so the first rows are complete first
            for row in rows:
                for dataset in datasets:
                    if (dataset, row, seed) in done():
                        continue
                    with open(LOCKS / f"{dataset}-{row}-{seed}.lock", "w") as lock:
                        try:
                            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        except BlockingIOError:
                            continue  # another worker has it
                        if (dataset, row, seed) in done():
                            continue
                        line = one(dataset, row, seed, args.data_dir, backbone, store)
                        with LOG.open("a") as f:
                            f.write(json.dumps(line) + "\n")
                        print(f"{dataset} {row} seed {seed}: validation {line['validation_accuracy']:.3f} "
                              f"test {line['accuracy']:.3f} ({line['seconds']:.0f} s)", flush=True)


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = correct / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * ((p * (1 - p) + z * z / (4 * n)) / n) ** 0.5 / (1 + z * z / n)
    return centre - half, centre + half


def report(args) -> None:
    runs = done()
    rows = [r for r in ROWS if any(k[1] == r for k in runs)]
    datasets = [d for d in DATASETS if any(k[0] == d for k in runs)]
    lines = ["# Scoring modes: joint, dual, both", "",
             "`python benchmarks/scoring.py run --data-dir DIR` then `report`. MiniLM; 600 training questions, 2 epochs, "
             "at most 200 validation / 200 evaluation questions (test; validation where a dataset has no labelled test), "
             "seed 0. Each cell: test accuracy (validation accuracy of the chosen epoch). The mean is over the datasets "
             "a row has; 95% interval half-width at 200 questions is about 0.07.", "",
             "| row | " + " | ".join(datasets) + " | mean test | mean val | trained |",
             "|---|" + "---|" * (len(datasets) + 3)]
    for row in rows:
        cells, tests, vals, trained = [], [], [], None
        for d in datasets:
            r = runs.get((d, row, 0))
            if r is None:
                cells.append("–")
                continue
            cells.append(f"{r['accuracy']:.3f} ({r['validation_accuracy']:.3f})")
            tests.append(r["accuracy"])
            vals.append(r["validation_accuracy"])
            trained = r["trainable_parameters"]
        mean = lambda v: f"{sum(v) / len(v):.3f}" if v and len(v) == len(datasets) else "–"  # noqa: E731
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {mean(tests)} | {mean(vals)} | {trained if trained is not None else '–'} |")
    (RESULTS / "scoring.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--data-dir", required=True)
    r.add_argument("--rows")
    r.add_argument("--datasets")
    r.add_argument("--seeds", default="0")
    r.add_argument("--threads", type=int, default=1)
    sub.add_parser("report")
    args = ap.parse_args()
    run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    main()
