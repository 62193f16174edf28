"""Recipe search (choices on validation only) and the head-only vs prompt-pair comparison.

    python benchmarks/accuracy/recipe.py search --data-dir DIR      # staged search on arc_easy, validation accuracy decides
    benchmarks/accuracy/recipe_stage2.sh DIR                        # stage 2: 500 validation questions, batch size, head lr
    python benchmarks/accuracy/recipe.py report                     # renders recipe_search.md from both stages' logs
    python benchmarks/accuracy/recipe.py compare --data-dir DIR     # head-only vs the chosen pairs, 3 datasets x 3 seeds
    python benchmarks/accuracy/recipe.py compare-report             # renders core_results.md from the latest logged runs
    python benchmarks/accuracy/recipe.py peft-probe --data-dir DIR  # PEFT prefix tuning's lr (--lrs) on arc_easy validation
    python benchmarks/accuracy/recipe.py full-probe --data-dir DIR  # full fine-tuning's lr (baselines.FULL_GRID), arc_easy validation
    benchmarks/accuracy/compare.sh DIR                              # the comparison as 36 single runs, two at a time

Every run: MiniLM frozen, 600 training questions, 2 epochs, validation/test capped at 300 questions
for the search and at 500 (`--max-eval`) for compare and peft-probe (a fixed subset). Results are appended to benchmarks/results/recipe_runs.jsonl and summarised in
benchmarks/results/recipe_search.md / core_results.md.
"""

from __future__ import annotations

import argparse
import json
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

RESULTS = Path(__file__).resolve().parents[1] / "results"
BASE = TrainConfig(epochs=2, depth=1)  # the search predates deep pairs (probes/depth_probe.sh covers them)
HEAD_ONLY = dict(prefix_len=0, suffix_len=0)
# A recipe's "peft" -> the eval-forgetting baseline that runs it (training/continual/registry.py BASELINES)
PEFT_BASELINES = {"prompt": "prompt_tuning", "prefix": "prefix_tuning", "full": "full_ft"}


def baseline_context(backbone, config: TrainConfig, data_dir, dataset: str, max_train: int | None,
                     max_eval: int | None, store: Store):
    """The continual protocol's context for one task, with these subsets of it (what its learners see)."""
    from baas.training.continual import Budget, Context, Settings
    from baas.training.progress import Reporter

    settings = Settings(tasks=[dataset], budget=Budget(max_train, max_eval, config.epochs, config.seed), config=config)
    return Context(settings, backbone, store, data_dir, Reporter())


def baseline_run(backbone, data_dir, dataset: str, config: TrainConfig, peft: str, max_train: int | None = 600,
                 max_eval: int | None = 300) -> dict:
    """A PEFT method or full fine-tuning (`peft`: a key of PEFT_BASELINES) on one task: eval-forgetting's learner
    for it (`BASELINES[...].new_learner()`, seeded with `config.seed`: a `peft.PeftLearner` with the same
    head and pooling as baas's pair), trained by the library's one loop (`loop.fit`: baas's batches, schedule,
    clipping and best-epoch rule, at `config.lr`) and scored by its one evaluator (`loop.evaluate`)."""
    from baas.training.continual import BASELINES
    from baas.training.loop import evaluate, fit, learner_scorer

    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = baseline_context(backbone, config, data_dir, dataset, max_train, max_eval, Store(tmp))
        learner = BASELINES[PEFT_BASELINES[peft]](ctx, [dataset], "benchmark").new_learner()
        train, val, test = (ctx.encoded(dataset, split) for split in ("train", "validation", "eval"))
        state = fit(learner, train, val, config, backbone.pad_id, label=f"{dataset} {peft}", lr=config.lr)
        metrics = evaluate(learner_scorer(learner), test, backbone.pad_id, config.eval_batch_size)
    metrics.pop("predictions")
    return dict(metrics, history=state["history"], best_epoch=state["best_epoch"], eval_split=ctx.data(dataset).eval_split,
                n_eval=len(test), seconds=round(time.time() - started, 2),
                trainable_parameters=sum(t.numel() for t in learner.trainable().values()))


def run(backbone, data_dir, dataset, config, label, log, max_eval=300, peft=None, max_train=600):
    """One training run (baas's trainer, or with `peft` a PEFT method on the same batches and schedule), logged."""
    if peft:
        r = baseline_run(backbone, data_dir, dataset, config, peft, max_train, max_eval)
    else:
        data = load_task_data(dataset, data_dir, max_train=max_train, max_eval=max_eval)
        with tempfile.TemporaryDirectory() as tmp:
            r = train_pair(dataset, data, backbone, Store(tmp), config)
    row = {"label": label, "dataset": dataset, "config": asdict(config), "peft": peft, "n_eval": r["n_eval"],
           "trainable_parameters": r.get("trainable_parameters"),
           "validation_accuracy": max(h["validation_accuracy"] for h in r["history"]),
           "eval_split": r["eval_split"], "eval_accuracy": r["accuracy"], "eval_macro_f1": r["macro_f1"],
           "chance": r["chance"], "seconds": r["seconds"], "time": time.strftime("%Y-%m-%d %H:%M")}
    with log.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"{dataset:15s} {label:40s} val {row['validation_accuracy']:.3f}  {r['eval_split']} {r['accuracy']:.3f}  ({r['seconds']:.0f}s)", flush=True)
    return row


def search(backbone, data_dir, log):
    """Stages; each keeps the validation-best setting of the one before."""
    rows = [run(backbone, data_dir, "arc_easy", replace(BASE, head_lr=hl, **HEAD_ONLY), f"head-only head_lr={hl}", log)
            for hl in (1e-3, 1e-2)]
    best_head = max(rows, key=lambda r: r["validation_accuracy"])
    head_lr = best_head["config"]["head_lr"]
    stage = [run(backbone, data_dir, "arc_easy", replace(BASE, head_lr=head_lr, lr=lr), f"pair 20+20 vocab lr={lr}", log)
             for lr in (3e-3, 1e-2, 3e-2)]
    best = max(stage, key=lambda r: r["validation_accuracy"])
    cfg = TrainConfig(**best["config"])
    stage += [run(backbone, data_dir, "arc_easy", replace(cfg, prefix_len=n, suffix_len=n), f"pair {n}+{n} lr={cfg.lr}", log)
              for n in (5, 50)]
    best = max(stage, key=lambda r: r["validation_accuracy"])
    cfg = TrainConfig(**best["config"])
    stage += [run(backbone, data_dir, "arc_easy", replace(cfg, pooling="mean_all"), "best + pooling mean_all", log),
              run(backbone, data_dir, "arc_easy", replace(cfg, prefix_init="random", suffix_init="random"), "best + random init", log)]
    best = max(stage, key=lambda r: r["validation_accuracy"])
    return best_head, best, rows + stage


def report() -> None:
    """recipe_search.md from the logs of stage 1 (recipe_runs.jsonl, search rows) and stage 2 (recipe_stage2.jsonl)."""
    stage1 = [json.loads(line) for line in (RESULTS / "recipe_runs.jsonl").read_text().splitlines()]
    stage1 = [r for r in stage1 if "seed" not in r["label"]]
    stage2 = [json.loads(line) for line in (RESULTS / "recipe_stage2.jsonl").read_text().splitlines()]
    chosen = json.loads((RESULTS / "recipe_chosen.json").read_text())
    lines = ["# Recipe search on arc_easy (choices on validation only)", "",
             "MiniLM frozen, 600 training questions, 2 epochs. Test accuracy is shown for reference and was not used.", "",
             "## Stage 1: `python benchmarks/accuracy/recipe.py search --data-dir DIR` (300 validation / 300 test questions)", "",
             "| run | best validation acc | test acc | seconds |", "|---|---|---|---|"]
    lines += [f"| {r['label']} | {r['validation_accuracy']:.3f} | {r['eval_accuracy']:.3f} | {r['seconds']:.0f} |" for r in stage1]
    lines += ["", "'best' is stage 1's validation best pair (20+20, lr 3e-3, head lr 1e-2, batch 8). Wall times in stage 1 "
              "were taken while tests ran beside them; compare seconds within stage 2 only.",
              "With 300 questions one standard error is about 2.8 points, so stage 1 could not separate the settings.", "",
              "## Stage 2: `benchmarks/accuracy/recipe_stage2.sh DIR` (500 validation / 500 test questions)", "",
              "| run | validation acc per epoch | train loss per epoch | test acc | seconds |", "|---|---|---|---|---|"]
    for r in stage2:
        val = " / ".join(f"{h['validation_accuracy']:.3f}" for h in r["history"])
        loss = " / ".join(f"{h['train_loss']:.3f}" for h in r["history"])
        lines.append(f"| {r['label']} | {val} | {loss} | {r['accuracy']:.3f} | {r['seconds']:.0f} |")
    lines += ["", "## Chosen (best validation accuracy of stage 2, per method)", "",
              f"- head-only: `{json.dumps(chosen['head_only'])}`", f"- pair: `{json.dumps(chosen['pair'])}`"]
    (RESULTS / "recipe_search.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["search", "report", "compare", "compare-report", "peft-probe", "full-probe"])
    ap.add_argument("--data-dir")
    ap.add_argument("--recipe", default=str(RESULTS / "recipe_chosen.json"))
    ap.add_argument("--datasets", default="arc_easy,commonsense_qa,cosmos_qa")
    ap.add_argument("--seeds", default="0,1,2", help="compare: seeds per dataset and method")
    ap.add_argument("--max-eval", type=int, default=500, help="compare: cap on validation/test questions")
    ap.add_argument("--lrs", default="3e-3,1e-2,3e-2", help="peft-probe: prompt learning rates to try")
    ap.add_argument("--methods", help="compare: which of the recipe file's methods to run (default: all)")
    ap.add_argument("--max-train", type=int, default=600,
                    help="compare: training questions; other than 600, a budget step, logged as 'METHOD n=N seed S'")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / "recipe_runs.jsonl"
    if args.mode == "report":
        report()
        return
    if args.mode == "compare-report":
        compare_report(json.loads(Path(args.recipe).read_text()), args.datasets.split(","), args.max_eval)
        return
    if not args.data_dir:
        ap.error("--data-dir is required for search and compare")
    backbone = load_backbone(None)
    if args.mode == "peft-probe":
        # The PEFT counterpart of the deep pair (prefix tuning, 10 virtual tokens at every layer) gets its
        # own learning-rate choice on arc_easy validation, as baas's recipes did.
        deep = json.loads(Path(args.recipe).read_text())["deep_pair"]
        for lr in (float(x) for x in args.lrs.split(",")):
            settings = {k: v for k, v in dict(deep, lr=lr).items() if k != "depth"}
            run(backbone, args.data_dir, "arc_easy", TrainConfig(**settings), f"peft-prefix probe lr={lr}", log,
                args.max_eval, "prefix")
        return
    if args.mode == "full-probe":
        # Full fine-tuning (the plasticity reference) gets its backbone learning rate on arc_easy validation,
        # from the grid the continual protocol uses; the head keeps the deep pair's rate.
        from baas.training.continual.methods.full_ft import FULL_GRID

        deep = json.loads(Path(args.recipe).read_text())["deep_pair"]
        for lr in FULL_GRID:
            settings = {k: v for k, v in dict(deep, lr=lr).items() if k != "depth"}
            run(backbone, args.data_dir, "arc_easy", TrainConfig(**settings), f"full-ft probe lr={lr}", log,
                args.max_eval, "full")
        return
    if args.mode == "search":
        search(backbone, args.data_dir, log)
        report()
    else:
        chosen = json.loads(Path(args.recipe).read_text())
        methods = args.methods.split(",") if args.methods else [m for m in chosen if m != "chosen_by"]
        for ds in args.datasets.split(","):
            for seed in (int(x) for x in args.seeds.split(",")):
                for method in methods:
                    settings = dict(chosen[method], seed=seed)
                    peft = settings.pop("peft", None)
                    step = "" if args.max_train == 600 else f" n={args.max_train}"
                    run(backbone, args.data_dir, ds, TrainConfig(**settings), f"{label(method)}{step} seed {seed}", log,
                        args.max_eval, peft, args.max_train)


def trained_parameters(backbone, settings: dict) -> int:
    """The numbers a recipe trains per task, counted from the tensors it builds on `backbone` (nothing trained)."""
    settings = dict(settings)
    peft = settings.pop("peft", None)
    config = TrainConfig(**settings)
    if peft == "full":
        return sum(p.numel() for p in backbone.model.parameters()) + backbone.hidden_size + 1  # every weight + head
    if peft:  # the learner its runs train, on a context that loads no data
        from baas.training.continual import BASELINES

        ctx = baseline_context(backbone, config, None, "count", 0, 0, None)
        learner = BASELINES[PEFT_BASELINES[peft]](ctx, ["count"], "count").new_learner()
        return sum(t.numel() for t in learner.trainable().values())
    from baas.training.batching import Encoded
    from baas.training.trainer import make_trainable

    module, _ = make_trainable(backbone, [Encoded([[101, 102]], 0)], config)
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def label(method: str) -> str:
    return method.replace("_", "-")


def compare_report(chosen: dict, datasets: list[str], max_eval: int) -> None:
    """core_results.md from the latest logged run of each (dataset, method, seed); each method's
    difference to head-only is paired by seed."""
    latest = {}
    for line in (RESULTS / "recipe_runs.jsonl").read_text().splitlines():
        row = json.loads(line)
        latest[(row["dataset"], row["label"])] = row
    methods = [m for m in chosen if m != "chosen_by"]
    others = [m for m in methods if m != "head_only"]
    lines = ["# Head-only baseline vs trained prompt pairs", "",
             f"MiniLM frozen, 600 training questions, 2 epochs, at most {max_eval} validation/test questions; "
             "mean ± std over seeds. Recipes chosen on arc_easy validation (recipe_search.md, depth_probe.md, "
             "recipe_chosen.json). pair: the shallow pair (`--depth 1`); deep-pair: the deep pair with no gate (every layer; "
             "the default before issue 12, `--no-gate`); deep-gated: baas's default (the same with the attention gate "
             "from -4, deep_start.md); "
             "peft-prefix: PEFT prefix tuning (P-tuning v2), eval-forgetting's `prefix_tuning` learner trained by "
             "baas's own loop on the same batches and schedule (`recipe.py baseline_run`); "
             "full-ft: every backbone weight trained (the plasticity reference), its learning rate chosen on "
             "arc_easy validation (`recipe.py full-probe`).",
             "Command: `benchmarks/accuracy/compare.sh DIR` (each run once, two at a time), then "
             "`python benchmarks/accuracy/recipe.py compare-report`.", ""]
    lines += [f"- {label(m)}: `{json.dumps(chosen[m])}`" for m in methods]
    backbone = load_backbone(None)
    counts = {m: trained_parameters(backbone, chosen[m]) for m in methods}
    lines += ["", "Trained parameters per task, counted from the tensors each recipe builds on MiniLM (head included; "
              "`recipe.py trained_parameters`): " + ", ".join(f"{label(m)} {counts[m]:,}" for m in methods) + "."]
    logged = {m: next((r["trainable_parameters"] for (d, lb), r in latest.items()
                       if lb.startswith(label(m) + " seed ") and r.get("trainable_parameters")), None) for m in methods}
    assert all(logged[m] in (None, counts[m]) for m in methods), (logged, counts)  # the runs trained what is counted
    lines += ["", "| dataset | eval split (n) | chance | " + " | ".join(f"{label(m)} acc" for m in methods) + " | "
              + " | ".join(f"{label(m)} - head-only (acc, per seed)" for m in others) + " |",
              "|---" * (3 + len(methods) + len(others)) + "|"]

    def stat(rows):
        values = torch.tensor([r["eval_accuracy"] for r in rows])
        if len(values) <= 1:
            return f"{values[0]:.3f} (1 seed)" if rows else "-"
        return f"{values.mean():.3f} ± {values.std():.3f}"

    for ds in datasets:
        runs = {m: {int(lb.rsplit(" ", 1)[1]): r for (d, lb), r in latest.items()
                    if d == ds and lb.startswith(label(m) + " seed ")} for m in methods}
        any_row = next((r for rows in runs.values() for r in rows.values()), None)
        if any_row is None:
            continue
        cells = [stat(list(runs[m].values())) for m in methods]
        for m in others:
            seeds = sorted(set(runs[m]) & set(runs["head_only"]))
            cells.append(", ".join(f"{runs[m][s]['eval_accuracy'] - runs['head_only'][s]['eval_accuracy']:+.3f}" for s in seeds) or "-")
        lines.append(f"| {ds} | {any_row['eval_split']} ({any_row['n_eval']}) | {any_row['chance']:.3f} | " + " | ".join(cells) + " |")
    steps = [r for (d, lb), r in latest.items() if " n=" in lb]
    if steps:
        lines += ["", "## Budget steps (the same recipes with more training questions; `recipe.py compare --max-train N`)", "",
                  "| dataset | method | training questions | seed | validation acc | eval acc | seconds |", "|---|---|---|---|---|---|---|"]
        for r in sorted(steps, key=lambda r: (r["dataset"], r["label"])):
            name, rest = r["label"].split(" n=")
            n, seed = rest.split(" seed ")
            lines.append(f"| {r['dataset']} | {name} | {n} | {seed} | {r['validation_accuracy']:.3f} | "
                         f"{r['eval_accuracy']:.3f} | {r['seconds']:.0f} |")
    (RESULTS / "core_results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
