"""Render benchmarks/results/depth_probe.md from depth_probe.jsonl (written by depth_probe.sh).

    python benchmarks/probes/depth_probe.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    rows = [json.loads(line) for line in (RESULTS / "depth_probe.jsonl").read_text().splitlines()]
    lines = ["# Prompt depth probe on arc_easy (choices on validation only)", "",
             "Command: `benchmarks/probes/depth_probe.sh DIR`, then `python benchmarks/probes/depth_probe.py`. MiniLM frozen, seed 0, "
             "600 training questions, 2 epochs, 500 validation / 500 test questions; every other setting is "
             "`baas train-task`'s default (5+5 vectors from frequent task tokens, lr 1e-2, head lr 3e-2, batch 4). "
             "Head-only on the same questions (recipe_search.md, stage 2): validation 0.362 / 0.424, test 0.376. "
             "Two runs shared the 2 cores; the second pair (lr 3e-2, 10+10) also ran beside the test suite, so its "
             "seconds are inflated. The depth-1 rerun differs slightly from stage 2 (0.426 against 0.434 at epoch 2): "
             "the code changed in between (the initialisation refactor of issue 3), so every method of "
             "core_results.md is rerun in one go.", "",
             "| run | options | validation acc per epoch | train loss per epoch | test acc | seconds |", "|---|---|---|---|---|---|"]
    for row in rows:
        r = row["result"]
        val = " / ".join(f"{h['validation_accuracy']:.3f}" for h in r["history"])
        loss = " / ".join(f"{h['train_loss']:.3f}" for h in r["history"])
        lines.append(f"| {row['label']} | `{row['options']}` | {val} | {loss} | {r['accuracy']:.3f} | {r['seconds']:.0f} |")
    best = max(rows, key=lambda row: max(h["validation_accuracy"] for h in row["result"]["history"]))
    lines += ["", f"Best on validation: **{best['label']}** (`{best['options']}`)."]
    (RESULTS / "depth_probe.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
