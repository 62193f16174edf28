"""Recipe search (choices on validation only) and the head-only vs prompt-pair comparison.

    python benchmarks/recipe.py search --data-dir DIR   # staged search on arc_easy, validation accuracy decides
    python benchmarks/recipe.py compare --data-dir DIR  # head-only vs the chosen recipe on three datasets

Every run: MiniLM frozen, 600 training questions, 2 epochs, validation/test capped at 300 questions
(a fixed subset). Results are appended to benchmarks/results/recipe_runs.jsonl and summarised in
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
from baas.training.data import load_task_data
from baas.training.trainer import TrainConfig, train_task

RESULTS = Path(__file__).parent / "results"
BASE = TrainConfig(epochs=2)
HEAD_ONLY = dict(prefix_len=0, suffix_len=0)


def run(backbone, data_dir, dataset, config, label, log, max_eval=300):
    data = load_task_data(dataset, data_dir, max_train=600, max_eval=max_eval)
    with tempfile.TemporaryDirectory() as tmp:
        r = train_task(dataset, data, backbone, Store(tmp), config)
    row = {"label": label, "dataset": dataset, "config": asdict(config), "n_eval": r["n_eval"],
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["search", "compare"])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--recipe", default=str(RESULTS / "recipe_chosen.json"))
    ap.add_argument("--datasets", default="arc_easy,commonsense_qa,cosmos_qa")
    ap.add_argument("--seeds", default="0,1,2", help="compare: seeds per dataset and method")
    ap.add_argument("--max-eval", type=int, default=500, help="compare: cap on validation/test questions")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / "recipe_runs.jsonl"
    backbone = load_backbone(None)
    if args.mode == "search":
        best_head, best, rows = search(backbone, args.data_dir, log)
        Path(args.recipe).write_text(json.dumps({"head_only": best_head["config"], "pair": best["config"]}, indent=1))
        lines = ["# Recipe search (arc_easy, MiniLM frozen, 600 train, 2 epochs, 300 validation / 300 test)", "",
                 "Chosen on validation accuracy only; test shown for reference.", "",
                 "| run | validation acc | test acc | seconds |", "|---|---|---|---|"]
        lines += [f"| {r['label']} | {r['validation_accuracy']:.3f} | {r['eval_accuracy']:.3f} | {r['seconds']:.0f} |" for r in rows]
        lines += ["", f"Chosen pair recipe: `{json.dumps(best['config'])}`"]
        (RESULTS / "recipe_search.md").write_text("\n".join(lines) + "\n")
    else:
        chosen = json.loads(Path(args.recipe).read_text())
        seeds = [int(x) for x in args.seeds.split(",")]
        lines = ["# Head-only baseline vs trained prompt pair", "",
                 f"MiniLM frozen, 600 training questions, 2 epochs, at most {args.max_eval} validation/test questions, "
                 f"seeds {seeds}; mean ± std over seeds. Recipes chosen on arc_easy validation (recipe_search.md).", "",
                 f"- head-only: `{json.dumps(chosen['head_only'])}`", f"- pair: `{json.dumps(chosen['pair'])}`", "",
                 "| dataset | eval split (n) | chance | head-only acc | pair acc | head-only macro F1 | pair macro F1 | pair - head-only (acc, per seed) |",
                 "|---|---|---|---|---|---|---|---|"]

        def stat(rows, key):
            values = torch.tensor([r[key] for r in rows])
            return f"{values.mean():.3f} ± {values.std(unbiased=len(values) > 1) if len(values) > 1 else 0:.3f}"

        for ds in args.datasets.split(","):
            heads, pairs = [], []
            for seed in seeds:
                heads.append(run(backbone, args.data_dir, ds, TrainConfig(**dict(chosen["head_only"], seed=seed)),
                                 f"head-only seed {seed}", log, args.max_eval))
                pairs.append(run(backbone, args.data_dir, ds, TrainConfig(**dict(chosen["pair"], seed=seed)),
                                 f"pair seed {seed}", log, args.max_eval))
            diffs = ", ".join(f"{p['eval_accuracy'] - h['eval_accuracy']:+.3f}" for h, p in zip(heads, pairs))
            lines.append(f"| {ds} | {pairs[0]['eval_split']} ({pairs[0]['n_eval']}) | {pairs[0]['chance']:.3f} | "
                         f"{stat(heads, 'eval_accuracy')} | {stat(pairs, 'eval_accuracy')} | {stat(heads, 'eval_macro_f1')} | "
                         f"{stat(pairs, 'eval_macro_f1')} | {diffs} |")
        (RESULTS / "core_results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
