"""The README's headline table from an eval-forgetting report: one row per method, ordered by average accuracy
(95% bootstrap interval over questions), with the paired bootstrap of baas − method and its verdict (ahead,
level, behind: the interval above, holding or below zero), the learnable-task view, forgetting and BWT, size
and time. References that are not task-agnostic sequential learners are marked; methods not finished say how
far they got.

Usage, from the repository root: python benchmarks/continual/forgetting_headline.py [benchmarks/results/forgetting/report.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MARKS = {"oracle": " (task id)", "multitask": " (all tasks at once)", "zero_shot": " (nothing trained)"}


def fmt(value, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def with_interval(value, interval, spec: str = ".3f") -> str:
    if value is None:
        return "–"
    return fmt(value, spec) + (f" [{fmt(interval[0], spec)}, {fmt(interval[1], spec)}]" if interval else "")


def versus(v: dict | None) -> str:
    """baas − method in points: `+4.1 [+1.2, +7.0] ahead`."""
    if not v or v.get("difference") is None:
        return "–"
    text = f"{100 * v['difference']:+.1f}"
    return text + (f" [{100 * v['interval'][0]:+.1f}, {100 * v['interval'][1]:+.1f}] {v['verdict']}" if v.get("interval") else "")


def headline(report: dict) -> str:
    methods, tasks = report["methods"], len(report["tasks"])
    order = sorted(methods, key=lambda m: (methods[m]["average_accuracy"] is None, -(methods[m]["average_accuracy"] or 0)))
    learnable = (report.get("learnable") or {}).get("tasks")
    lines = ["| method | avg acc [95%] | baas − method, points [95% paired] | "
             f"learnable tasks ({len(learnable) if learnable else '–'}) avg acc | forgetting [95%] | BWT | "
             "trained / task | time (min) |", "|---|---|---|---|---|---|---|---|"]
    for name in order:
        m = methods[name]
        iv = m.get("intervals") or {}
        label = (f"**{name}**" if name == "baas" else name) + MARKS.get(name, "")
        if m["average_accuracy"] is None:
            label += f" — {m['steps_done']} of {tasks} tasks so far"
        shared = name.startswith("baas:") or name == "oracle"  # one bank: its cost is baas's row
        minutes = None if shared or not m.get("seconds") else m["seconds"] / 60
        p = m.get("parameters") or {}
        lines.append(f"| {label} | {with_interval(m['average_accuracy'], iv.get('average_accuracy'))} | "
                     f"{'–' if name == 'baas' else versus(m.get('versus_baas'))} | "
                     f"{with_interval(m.get('learnable_average_accuracy'), iv.get('learnable_average_accuracy'))} | "
                     f"{with_interval(m['forgetting'], iv.get('forgetting'))} | {fmt(m['bwt'], '+.3f')} | "
                     f"{fmt(p.get('trainable'), ',')} | {fmt(minutes, '.0f')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", nargs="?", default="benchmarks/results/forgetting/report.json",
                    help="an eval-forgetting report.json (default: %(default)s)")
    print(headline(json.loads(Path(ap.parse_args().report).read_text())))


if __name__ == "__main__":
    main()
