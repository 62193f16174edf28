"""Render `baas fuse --strategy all --json` output as the markdown table of benchmarks/results/fuse.md.

    baas fuse --strategy all --space both --data-dir DIR --store STORE --max-eval N --json > fuse.json
    python benchmarks/fuse_report.py fuse.json [--validation fuse_validation.json] > benchmarks/results/fuse.md
"""

from __future__ import annotations

import argparse
import json


def table(result: dict) -> list[str]:
    lines = ["| strategy | space | mean accuracy | mean macro F1 | mean oracle accuracy | routing accuracy | entries per question | ms per question (model passes) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in sorted(result["strategies"], key=lambda r: -r["mean_accuracy"]):
        lines.append(f"| {r['strategy']} | {r['space']} | {r['mean_accuracy']:.3f} | {r['mean_macro_f1']:.3f} | "
                     f"{r['mean_oracle_accuracy']:.3f} | {r['routing_accuracy']:.3f} | {r['entries_per_question']:.2f} | "
                     f"{1000 * r['seconds_per_question']:.0f} |")
    return lines


def per_task(r: dict) -> list[str]:
    """Per task, and each task's share of the mean's gap to the oracle (its gap / number of tasks)."""
    n = len(r["per_task"])
    lines = ["| task | split (n) | accuracy | macro F1 | oracle accuracy | routing accuracy | share of the mean gap (points) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {t['task']} | {t['eval_split']} ({t['n']}) | {t['accuracy']:.3f} | {t['macro_f1']:.3f} | "
              f"{t['oracle_accuracy']:.3f} | {t['routing_accuracy']:.3f} | {100 * (t['oracle_accuracy'] - t['accuracy']) / n:+.2f} |"
              for t in r["per_task"]]
    arc = [t for t in r["per_task"] if t["task"] in ("arc_easy", "arc_challenge")]
    gap = 100 * (r["mean_oracle_accuracy"] - r["mean_accuracy"])
    if len(arc) == 2:
        share = sum(100 * (t["oracle_accuracy"] - t["accuracy"]) / n for t in arc)
        lines += ["", f"Mean gap to the oracle: {gap:.2f} points, of which arc_easy + arc_challenge: {share:.2f} points "
                  f"(their routing accuracy: {arc[0]['routing_accuracy']:.2f} and {arc[1]['routing_accuracy']:.2f})."]
    return lines


def confusion(r: dict) -> list[str]:
    tasks, counts = r["confusion"]["tasks"], r["confusion"]["counts"]
    lines = ["| true \\ routed | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    lines += [f"| {name} | " + " | ".join(str(c) for c in row) + " |" for name, row in zip(tasks, counts)]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("result")
    ap.add_argument("--validation")
    args = ap.parse_args()
    result = json.load(open(args.result))
    best = result["best"]
    out = [f"## Evaluation splits: rule {best['rule']}, {best['query']} queries", ""] + table(result)
    out += ["", f"Best deployable: **{best['strategy']}** ({best['space']} space), per task:", ""] + per_task(best)
    out += ["", "Its routing confusion (rows: true task; columns: entry with the largest weight):", ""] + confusion(best)
    if args.validation:
        val = json.load(open(args.validation))
        out = [f"## Validation splits (where choices are made): rule {val['best']['rule']}, {val['best']['query']} queries",
               ""] + table(val) + [""] + out
    print("\n".join(out))


if __name__ == "__main__":
    main()
