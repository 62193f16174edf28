"""How a deep pair's layers 1..D-1 start and learn (issue 12), chosen on validation accuracy.

    python benchmarks/probes/deep_start.py run --data-dir DIR [--seeds 0] [--variants replace,add,add-lr0.1]
    python benchmarks/probes/deep_start.py report     # renders benchmarks/results/deep_start.md from deep_start.jsonl

Variants, all on baas's default deep recipe (recipe_chosen.json's deep_pair: every layer, lr 1e-2,
head lr 1e-2, 600 training questions, 2 epochs):
    replace    layer i's vectors replace the prompt positions' states entering layer i, started from the
               states the prompt reaches when the backbone reads [prefix; suffix] alone (the old default)
    add        layer i's vectors are added to those states, started at zero, so step 0 is the shallow pair
    add-lr0.1  add, with layers 1..D-1 at a tenth of the prompt learning rate (a depth-wise rate)
    gate-lr10  replace, with the gate (give its start with --set gate=-4) learning at ten times the prompt rate
Runs (dataset, variant, seed) already in the log are skipped, so a stopped run resumes.

Archived: `run` needs the library hooks `Backbone.deep_mode` and `loop.DEEP_LR_SCALE`, which were removed after
commit 705cb0c; it stops at HEAD. Rerun it from a checkout of 705cb0c (benchmarks/probes/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "accuracy"))
import recipe  # noqa: E402  (benchmarks/accuracy/recipe.py)

from baas.training import loop  # noqa: E402
from baas.training.backbone import Backbone, load_backbone  # noqa: E402
from baas.training.config import TrainConfig  # noqa: E402

LOG = recipe.RESULTS / "deep_start.jsonl"
# variant: (deep mode, learning-rate scale of layers 1..D-1, learning-rate scale of the gate)
VARIANTS = {"replace": ("replace", 1.0, 1.0), "add": ("add", 1.0, 1.0), "add-lr0.1": ("add", 0.1, 1.0),
            "gate-lr10": ("replace", 1.0, 10.0)}
DATASETS = "demo_animal_sounds,demo_categories,demo_opposites,arc_easy,commonsense_qa,cosmos_qa"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["run", "report"])
    ap.add_argument("--data-dir")
    ap.add_argument("--datasets", default=DATASETS)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--max-eval", type=int, default=500)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a TrainConfig field of the deep recipe (the label says so), e.g. --set head_lr=0.03")
    args = ap.parse_args()
    if args.mode == "report":
        report()
        return
    if not hasattr(Backbone, "deep_mode"):
        sys.exit("deep_start.py run: the library no longer has the hooks this probe switches (Backbone.deep_mode, "
                 "loop.DEEP_LR_SCALE); run it from a checkout of commit 705cb0c (see benchmarks/probes/README.md)")
    done = {(r["dataset"], r["label"]) for r in map(json.loads, LOG.read_text().splitlines())} if LOG.exists() else set()
    deep = json.loads((recipe.RESULTS / "recipe_chosen.json").read_text())["deep_pair"]
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    backbone = load_backbone(None)
    for ds in args.datasets.split(","):
        for seed in map(int, args.seeds.split(",")):
            for variant in args.variants.split(","):
                label = " ".join([variant, *args.set, f"seed {seed}"])
                if (ds, label) in done:
                    continue
                Backbone.deep_mode, loop.DEEP_LR_SCALE, loop.GATE_LR_SCALE = VARIANTS[variant]  # read by loop.make_optimizer
                config = TrainConfig(**dict(deep, seed=seed, **overrides))
                recipe.run(backbone, args.data_dir, ds, config, label, LOG, args.max_eval)


def report() -> None:
    rows = {}
    for r in map(json.loads, LOG.read_text().splitlines()):
        rows[(r["dataset"], r["label"])] = r
    datasets = list(dict.fromkeys(d for d, _ in rows))
    labels = list(dict.fromkeys(lb for _, lb in rows))
    lines = ["# Deep pair: how layers 1..D-1 start (issue 12)", "",
             "MiniLM frozen, baas's deep recipe (every layer, lr 1e-2, head lr 1e-2, 600 training questions, "
             "2 epochs), validation/test capped at 500. Validation accuracy (best epoch) decides; test shown "
             "beside it. Command: `python benchmarks/probes/deep_start.py run --data-dir DIR`, then `... report`.",
             "Rows with `gate=G` have the attention gate (`Backbone.forward`) started at G: learned at the prompt rate "
             "under `replace`, at ten times it under `gate-lr10`. Rows without it are ungated.", "",
             "| variant | " + " | ".join(f"{ds} val / test" for ds in datasets) + " |",
             "|---" * (1 + len(datasets)) + "|"]
    lines.append("| chance | " + " | ".join(f"{next(r for (d, _), r in rows.items() if d == ds)['chance']:.3f}"
                                            for ds in datasets) + " |")
    for lb in labels:
        cells = [f"{rows[(ds, lb)]['validation_accuracy']:.3f} / {rows[(ds, lb)]['eval_accuracy']:.3f}" if (ds, lb) in rows else "-"
                 for ds in datasets]
        lines.append(f"| {lb} | " + " | ".join(cells) + " |")
    complete = [lb for lb in labels if all((ds, lb) in rows for ds in datasets)]
    lines += ["", "Mean validation accuracy over the datasets (variants with every dataset run):", ""]
    lines += [f"- {lb}: {sum(rows[(ds, lb)]['validation_accuracy'] for ds in datasets) / len(datasets):.3f}" for lb in complete]
    (recipe.RESULTS / "deep_start.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
