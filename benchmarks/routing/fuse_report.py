"""Render `baas fuse --strategy all --json` output as the markdown table of benchmarks/results/fuse.md.

    python benchmarks/routing/fuse_report.py eval.json [--chosen eval_chosen.json] [--choice choice.json] > fuse.md
(benchmarks/routing/fuse_bank.sh makes the JSON files with `baas fuse ... --json` and calls this.)
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
    ap.add_argument("--chosen", help="the evaluation run with the rule and temperature chosen on validation")
    ap.add_argument("--choice")
    args = ap.parse_args()
    result = json.load(open(args.result))
    best = result["best"]
    out = [f"## Evaluation splits: rule {best['rule']}, temperature {best['temperature']:g}, {best['query']} queries", ""] + table(result)
    out += ["", f"Best deployable: **{best['strategy']}** ({best['space']} space), per task:", ""] + per_task(best)
    out += ["", "Its routing confusion (rows: true task; columns: entry with the largest weight):", ""] + confusion(best)
    if args.choice:
        choice = json.load(open(args.choice))
        grid = ["| rule | temperature | best strategy (output space) | mean accuracy | routing accuracy |", "|---|---|---|---|---|"]
        best_per = {}
        for c in choice["candidates"]:
            k = (c["rule"], c["temperature"])
            if k not in best_per or c["mean_accuracy"] > best_per[k]["mean_accuracy"]:
                best_per[k] = c
        grid += [f"| {c['rule']} | {c['temperature']:g} | {c['strategy']} | {c['mean_accuracy']:.3f} | {c['routing_accuracy']:.3f} |"
                 for c in sorted(best_per.values(), key=lambda c: -c["mean_accuracy"])]
        out = [f"## Choosing the rule and temperature on validation (output space, cached answers): "
               f"{choice['rule']}, temperature {choice['temperature']:g}", ""] + grid + [""] + out
    if args.chosen:
        chosen = json.load(open(args.chosen))
        out += ["", f"## Evaluation splits with the choice made on validation: rule {chosen['best']['rule']}, temperature "
                f"{chosen['best']['temperature']:g} (output space)", ""] + table(chosen)
    print("\n".join(out))


if __name__ == "__main__":
    main()
