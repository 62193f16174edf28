"""The README's headline table from an eval-forgetting report: one row per method, baas first, then the
task-agnostic baselines by average accuracy, the task-aware oracle and multitask last. Rows that beat baas
are shown as they are (marked); methods not finished say how far they got.

Usage, from the repository root: python benchmarks/continual/forgetting_headline.py [benchmarks/results/forgetting/report.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REFERENCES = ("oracle", "multitask")  # not task-agnostic sequential learners: shown last, for reference


def fmt(value, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def headline(report: dict) -> str:
    methods, tasks = report["methods"], len(report["tasks"])
    baas = methods["baas"]["average_accuracy"]
    strategies = [m for m in methods if m.startswith("baas:")]  # baas with another router strategy
    others = [m for m in methods if m != "baas" and m not in strategies and m not in REFERENCES]
    finished = sorted((m for m in others if methods[m]["average_accuracy"] is not None),
                      key=lambda m: -methods[m]["average_accuracy"])
    order = ["baas", *strategies, *finished, *(m for m in others if m not in finished),
             *(m for m in REFERENCES if m in methods)]
    lines = ["| method | avg acc | BWT | forgetting | trained / task | stored / task | stored in all | time (min) |",
             "|---|---|---|---|---|---|---|---|"]
    for name in order:
        m = methods[name]
        p = m.get("parameters") or {}
        label = f"**{name}**" if name == "baas" else name
        if name in REFERENCES:
            label += " (task id)" if name == "oracle" else " (all tasks at once)"
        elif baas is not None and (m["average_accuracy"] or 0) > baas:
            label += " (above baas)"
        if m["average_accuracy"] is None:
            label += f" — {m['steps_done']} of {tasks} tasks so far"
        shared = name.startswith("baas:") or name == "oracle"  # one bank: its cost is baas's row
        minutes = None if shared or not m.get("seconds") else m["seconds"] / 60
        lines.append(f"| {label} | {fmt(m['average_accuracy'])} | {fmt(m['bwt'], '+.3f')} | {fmt(m['forgetting'])} | "
                     f"{fmt(p.get('trainable'), ',')} | {fmt(p.get('stored_per_task'), ',')} | {fmt(p.get('stored_total'), ',')} | "
                     f"{fmt(minutes, '.0f')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", nargs="?", default="benchmarks/results/forgetting/report.json",
                    help="an eval-forgetting report.json (default: %(default)s)")
    print(headline(json.loads(Path(ap.parse_args().report).read_text())))


if __name__ == "__main__":
    main()
