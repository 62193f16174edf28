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
    full_both    the same, both: full fine-tuning scored as the default is (the seeds' goal compares with it)
    st_ft        the sentence encoder fine-tuned by the sentence-transformers trainer with a ranking loss, the
                 wrong options as hard negatives (eval-forgetting's st_ft on one task), scored by its cosine
    deep_both_bf16  deep_both with the frozen backbone's forward under bf16 autocast (`--precision bf16`); a
                 twin of deep_both, reported in its own section (paired against it), not in the main table

Budget: 600 training questions, 2 epochs, at most 200 validation and 200 evaluation questions per dataset,
seed 0 (`--seeds 0,1,2` adds seeds). Each row's epoch is chosen on validation; dual and both also consider
the untrained start (epoch 0). Every run appends one line to benchmarks/results/scoring_runs.jsonl with its
validation and test accuracy, each test question's prediction (for paired intervals), the time spent and
the trained numbers; a run already there is not run again, so a stopped command resumes. Several workers
may share the job list (`--worker`-free: per-job lock files).

    python benchmarks/accuracy/scoring.py run --data-dir DIR [--rows a,b] [--datasets a,b] [--seeds 0]
    python benchmarks/accuracy/scoring.py report        # benchmarks/results/scoring.md from the log
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"
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
    "full_both": dict(scoring="both", lr=3e-5),
    "st_ft": dict(scoring="dual", lr=3e-5),  # sentence-transformers' usual rate, full_ft's (ST_FT_LR)
    "deep_both_bf16": dict(scoring="both", precision="bf16"),
}
TWINS = {"deep_both_bf16": "deep_both"}  # a row that differs from another only in precision: its own section
DEFAULT_ROW = "deep_both"  # the row the default was chosen from (mean validation accuracy over the ten)
SEED_DATASETS = ("arc_easy", "commonsense_qa", "cosmos_qa")  # where the goals ask for 3 seeds
FULL_FT_BEFORE = {"arc_easy": 0.503, "commonsense_qa": 0.363, "cosmos_qa": 0.559}  # full_ft, joint, before (zero_shot.md)
BUDGET = dict(max_train=600, max_eval=200, epochs=2)


def done() -> dict[tuple, dict]:
    rows = [json.loads(line) for line in LOG.read_text().splitlines()] if LOG.is_file() else []
    return {(r["dataset"], r["row"], r["seed"]): r for r in rows}


def one(dataset: str, row: str, seed: int, data_dir: str, backbone, store) -> dict:
    """Train and evaluate one (dataset, row, seed) with the library; returns the logged line."""
    import torch

    from baas.training.cache import encode_cached
    from baas.training.config import TrainConfig
    from baas.training.data import load_task_data
    from baas.training.loop import PairLearner, evaluate, learner_scorer
    from baas.training.trainer import make_trainable, train_pair

    data = load_task_data(dataset, data_dir, max_train=BUDGET["max_train"], max_eval=BUDGET["max_eval"])
    # fp32 unless the row says otherwise: the rows were run in fp32, and `auto` is bf16 on a CPU with native bf16
    config = TrainConfig(**{"precision": "fp32", **ROWS[row]}, epochs=BUDGET["epochs"], seed=seed)
    started = time.perf_counter()
    if row == "zero_shot":
        val_enc, test_enc = (encode_cached(s.examples, backbone, config.max_length, store) for s in (data.validation, data.eval))
        learner = PairLearner(backbone, make_trainable(backbone, val_enc, config)[0], "mean_input")
        learner.module.load_state_dict(learner.untrained_start())  # nothing trained: exactly the cosine
        val, test = (evaluate(learner_scorer(learner), enc, backbone.pad_id, 32) for enc in (val_enc, test_enc))
        record = dict(validation_accuracy=val["accuracy"], accuracy=test["accuracy"], predictions=test["predictions"],
                      trainable_parameters=0, history=[], best_epoch=0)
    elif row.startswith("full_") or row == "st_ft":
        record = one_task_baseline("st_ft" if row == "st_ft" else "full_ft", data, config, backbone, store)
    else:
        result = train_pair(f"{dataset}-{row}-s{seed}", data, backbone, store, config, force=True)
        best = max([h["validation_accuracy"] for h in result["history"]] + [result.get("start_accuracy") or 0.0])
        record = {k: result[k] for k in ("accuracy", "predictions", "trainable_parameters", "history", "best_epoch",
                                         "start_accuracy")}
        record["validation_accuracy"] = best
    labels = [e.label for e in data.eval.examples]
    return dict(dataset=dataset, row=row, seed=seed, **record, labels=labels, n_eval=len(labels),
                n_validation=len(data.validation.examples), eval_split=data.eval_split,
                seconds=round(time.perf_counter() - started, 1), threads=torch.get_num_threads())


def one_task_baseline(key: str, data, config, backbone, store) -> dict:
    """eval-forgetting's `key` method (full_ft, st_ft) on one task at `config.lr`, trained as the protocol trains
    it (the one loop for full_ft, the sentence-transformers trainer for st_ft) and scored by the one evaluator."""
    import torch

    from baas.training.continual import METHODS, Budget, Context, Settings, fit
    from baas.training.loop import evaluate, learner_scorer
    from baas.training.progress import Reporter

    ctx = Context(Settings(tasks=[data.name], budget=Budget(None, None, config.epochs, config.seed), config=config),
                  backbone, store, None, Reporter())
    ctx.add_data(data)
    method = METHODS[key](ctx, [data.name], "scoring")
    learner = method.new_learner()
    torch.manual_seed(config.seed * 1000)
    if key == "st_ft":  # (its trainer reads the task's examples and validation rows itself)
        validation = method.fit(learner, 0, config.lr)
    else:
        train, val = (ctx.encoded(data.name, split) for split in ("train", "validation"))
        validation = fit(ctx, learner, train, val, f"{data.name} {key}", lr=config.lr)
    metrics = evaluate(learner_scorer(learner), ctx.encoded(data.name, "eval"), backbone.pad_id, config.eval_batch_size,
                       device=learner.device)  # the one evaluator, as learner_metrics runs it, keeping the predictions
    return dict(validation_accuracy=validation, accuracy=metrics["accuracy"], predictions=metrics["predictions"],
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


def report(args) -> None:
    """benchmarks/results/scoring.md: test accuracy per (row, dataset) with the chosen epoch's validation accuracy, each
    row's mean over the datasets it has, and paired bootstrap intervals (questions resampled within each
    dataset) of each row's mean minus zero-shot's and minus the former default's (deep_joint). `auto` is a
    per-dataset choice between deep_dual and deep_joint by validation accuracy (it trains both)."""
    from baas.training.metrics import percentile_interval, resampled_cells, verdict, wilson_interval

    all_runs = done()
    runs = {k: dict(r, correct=[int(p == y) for p, y in zip(r["predictions"], r["labels"])])
            for k, r in all_runs.items() if k[2] == 0}
    for d in DATASETS:  # auto: the mode that did better on validation, per dataset
        dual, joint = runs.get((d, "deep_dual", 0)), runs.get((d, "deep_joint", 0))
        if dual and joint:
            runs[(d, "auto", 0)] = dual if dual["validation_accuracy"] >= joint["validation_accuracy"] else joint
    rows = [r for r in [*ROWS, "auto"] if r not in TWINS and any(k[1] == r for k in runs)]
    datasets = [d for d in DATASETS if (d, "zero_shot", 0) in runs]
    samples = resampled_cells({k: (k[0], r["correct"]) for k, r in runs.items()})
    mean = lambda vals: sum(vals) / len(vals)  # noqa: E731

    def paired(row: str, ref: str, ds: list[str]) -> tuple[str, str]:
        """(the paired difference of the means over the datasets both rows have, as text; its verdict: ahead,
        level or behind, or '' when the rows share no dataset). The text names the count when not all ten."""
        ds = [d for d in ds if (d, row, 0) in samples and (d, ref, 0) in samples]
        if not ds or row == ref:
            return "–", ""
        diff = mean([samples[(d, row, 0)] - samples[(d, ref, 0)] for d in ds])
        point = mean([runs[(d, row, 0)]["accuracy"] - runs[(d, ref, 0)]["accuracy"] for d in ds])
        low, high = percentile_interval(diff)
        over = "" if len(ds) == len(datasets) else f" (on {len(ds)})"
        said = verdict([low, high])
        return f"{100 * point:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}] {said}{over}", said

    versus = lambda row, ref, ds: paired(row, ref, ds)[0]  # noqa: E731

    lines = ["# Scoring modes: joint, dual, both", "",
             "`python benchmarks/accuracy/scoring.py run --data-dir DIR` then `report`. MiniLM, frozen; 600 training questions, "
             "2 epochs, at most 200 validation and 200 evaluation questions per dataset (test; validation where a "
             "dataset has no labelled test), seed 0, rates as `baas train-task` defaults (head-only joint: head rate "
             "3e-2; full fine-tuning: 3e-5). Each cell: test accuracy, then the validation accuracy of the epoch kept "
             "(dual and both may keep the untrained start, epoch 0). `auto` picks deep_dual or deep_joint per dataset "
             "by validation accuracy (it trains both). A cell of 200 questions has a 95% interval of about +-7 points.", "",
             "| row | " + " | ".join(datasets) + " | mean test | mean val | vs zero-shot (points, 95% paired) | "
             "vs deep_joint | trained |",
             "|---|" + "---|" * (len(datasets) + 5)]
    for row in rows:
        have = [d for d in datasets if (d, row, 0) in runs]
        cells = [f"{runs[(d, row, 0)]['accuracy']:.3f} ({runs[(d, row, 0)]['validation_accuracy']:.3f})"
                 if (d, row, 0) in runs else "–" for d in datasets]
        complete = len(have) == len(datasets)
        tests = mean([runs[(d, row, 0)]["accuracy"] for d in have]) if complete else None
        vals = mean([runs[(d, row, 0)]["validation_accuracy"] for d in have]) if complete else None
        if not complete and have:  # the mean over the datasets the row has so far, marked
            tests, vals = (mean([runs[(d, row, 0)][k] for d in have]) for k in ("accuracy", "validation_accuracy"))
        trained = runs[(have[0], row, 0)]["trainable_parameters"] if have and row != "auto" else "–"
        mark = "" if complete else f" (on {len(have)})"
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {'–' if tests is None else f'{tests:.3f}'}{mark} | "
                     f"{'–' if vals is None else f'{vals:.3f}'}{mark} | {versus(row, 'zero_shot', have) if have else '–'} | "
                     f"{versus(row, 'deep_joint', have) if have else '–'} | {trained} |")
    def cell_interval(d: str) -> str:
        r = runs[(d, "zero_shot", 0)]
        low, high = wilson_interval(sum(r["correct"]), r["n_eval"])
        return f"{d} zero-shot {r['accuracy']:.3f} [{low:.3f}, {high:.3f}]"

    lines += ["", "Intervals: each dataset's questions resampled (2,000 times, seeded), the same resamples for every row, "
              "so differences are paired; over the datasets a row has when it is not complete. 'ahead', 'level', "
              "'behind': the interval above, holding, or below zero. Wilson intervals of single cells: "
              + "; ".join(cell_interval(d) for d in datasets[:3]) + "."]
    lines += seeds_section(all_runs) + goals_section(runs, all_runs, paired) + twins_section(runs, paired)
    (RESULTS / "scoring.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def seed_means(all_runs: dict, row: str) -> dict[str, tuple[float, list[float]]]:
    """Per seed dataset where `row` has every seed 0, 1, 2: (mean test accuracy, the three accuracies)."""
    out = {}
    for d in SEED_DATASETS:
        accs = [all_runs[(d, row, s)]["accuracy"] for s in (0, 1, 2) if (d, row, s) in all_runs]
        if len(accs) == 3:
            out[d] = (sum(accs) / 3, accs)
    return out


def seeds_section(all_runs: dict) -> list[str]:
    """Rows run with seeds 0, 1, 2 on the seed datasets: the mean over seeds and each seed's accuracy."""
    rows = [r for r in ROWS if seed_means(all_runs, r)]
    if not rows:
        return ["", "## Three seeds", "", f"No row has seeds 0, 1 and 2 on {', '.join(SEED_DATASETS)} yet."]
    lines = ["", "## Three seeds", "", "Test accuracy, mean of seeds 0, 1, 2 (each seed's in brackets).", "",
             "| row | " + " | ".join(SEED_DATASETS) + " |", "|---|" + "---|" * len(SEED_DATASETS)]
    for row in rows:
        means = seed_means(all_runs, row)
        lines.append(f"| {row} | " + " | ".join(
            f"{means[d][0]:.3f} ({', '.join(f'{a:.3f}' for a in means[d][1])})" if d in means else "–"
            for d in SEED_DATASETS) + " |")
    return lines


def goals_section(runs: dict, all_runs: dict, paired) -> list[str]:
    """The issue's goals for the default, each from the figures above (`runs`: seed 0; `all_runs`: every seed), or
    'not measured yet' where a row is missing."""
    default = DEFAULT_ROW
    have = lambda row: all((d, row, 0) in runs for d in DATASETS)  # noqa: E731
    lines = ["", f"## Goals for the default ({default})", ""]
    if have(default) and have("zero_shot"):
        below = [f"{d} {runs[(d, default, 0)]['accuracy']:.3f} < {runs[(d, 'zero_shot', 0)]['accuracy']:.3f}"
                 for d in DATASETS if runs[(d, default, 0)]["accuracy"] < runs[(d, "zero_shot", 0)]["accuracy"]]
        lines.append(f"- At or above zero-shot on each of the ten, on test: "
                     + (f"missed on {len(below)}: {'; '.join(below)}." if below else "met (every dataset)."))
    if have(default) and have("deep_joint"):
        gain = 100 * sum(runs[(d, default, 0)]["accuracy"] - runs[(d, "deep_joint", 0)]["accuracy"] for d in DATASETS) / len(DATASETS)
        lines.append(f"- At least 7 points above the former default (deep_joint) on the ten-dataset mean: "
                     f"{'met' if gain >= 7 else 'missed'}, {paired(default, 'deep_joint', list(DATASETS))[0]} (points, 95% paired).")
    mine, before = seed_means(all_runs, default), FULL_FT_BEFORE
    if len(mine) == len(SEED_DATASETS):
        short = [f"{d} {mine[d][0]:.3f} < {before[d]:.3f}" for d in SEED_DATASETS if mine[d][0] < before[d]]
        lines.append("- At least the former full fine-tuning (joint: " + " / ".join(f"{before[d]:.3f}" for d in SEED_DATASETS)
                     + ") on 3 seeds: " + (f"missed on {'; '.join(short)}." if short else "met."))
    else:
        lines.append(f"- 3 seeds on {', '.join(SEED_DATASETS)}: not measured yet.")
    full = seed_means(all_runs, "full_both")
    if len(mine) == len(SEED_DATASETS) and len(full) == len(SEED_DATASETS):
        ratios = "; ".join(f"{d} {mine[d][0] / full[d][0]:.0%}" for d in SEED_DATASETS)
        share = runs[(DATASETS[0], default, 0)]["trainable_parameters"] / all_runs[(SEED_DATASETS[0], "full_both", 0)]["trainable_parameters"]
        reached = all(mine[d][0] >= 0.95 * full[d][0] for d in SEED_DATASETS)
        lines.append(f"- At least 95% of full fine-tuning scored the same way (full_both), 3 seeds: "
                     f"{'met' if reached else 'missed'}, {ratios}; with {share:.3%} of its trained numbers: "
                     f"{'met' if share <= 0.002 else 'missed'} (goal: at most 0.2%).")
    else:
        lines.append("- Against full fine-tuning scored the same way (full_both, 3 seeds): not measured yet.")
    if have(default) and have("st_ft"):
        share = runs[(DATASETS[0], default, 0)]["trainable_parameters"] / runs[(DATASETS[0], "st_ft", 0)]["trainable_parameters"]
        said, side = paired(default, "st_ft", list(DATASETS))
        lines.append(f"- Level with or ahead of st_ft on the ten-dataset mean: {'missed' if side == 'behind' else 'met'}, "
                     f"{said} points; with {share:.3%} of its trained numbers: "
                     f"{'met' if share <= 0.001 else 'missed'} (goal: at most 0.1%).")
    else:
        lines.append("- Against st_ft on the ten-dataset mean: not measured yet.")
    lines.append("- Speed of dual against joint: `benchmarks/results/scoring_speed.md`.")
    return lines


def twins_section(runs: dict, paired) -> list[str]:
    """Each precision twin against its fp32 row on the datasets both have (seed 0): test and validation per
    dataset, the paired difference of the means, and each run's seconds (a rough guide: the runs did not share
    the machine's load; interleaved speed ratios are in benchmarks/results/train_effects_bf16.md)."""
    lines = []
    for twin, base in TWINS.items():
        ds = [d for d in DATASETS if (d, twin, 0) in runs and (d, base, 0) in runs]
        if not ds:
            continue
        lines += ["", f"## {twin} against {base} (only the precision differs)", "",
                  f"| dataset | {base} test (val) | {twin} test (val) | epoch kept ({base}, {twin}) | seconds ({base}, {twin}) |",
                  "|---|---|---|---|---|"]
        for d in ds:
            a, b = runs[(d, base, 0)], runs[(d, twin, 0)]
            lines.append(f"| {d} | {a['accuracy']:.3f} ({a['validation_accuracy']:.3f}) | {b['accuracy']:.3f} "
                         f"({b['validation_accuracy']:.3f}) | {a['best_epoch']}, {b['best_epoch']} | {a['seconds']:.0f}, {b['seconds']:.0f} |")
        lines += ["", f"{twin} − {base} on the mean over these {len(ds)}: {paired(twin, base, ds)[0]} points (95% paired)."]
    return lines


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
