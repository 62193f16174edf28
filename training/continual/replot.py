"""Redraw a results folder's figures (accuracy_matrix.png, forgetting_curves.png) from its report.json, without
rerunning anything: `python -m baas.training.continual.replot DIR`. Reports made before question counts were
kept get them from the folder's cells.jsonl, so the figures have interval bars."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from baas.training.continual.plots import plots


def with_counts(report: dict, folder: Path) -> dict:
    """`report` with each method's question counts (n_matrix) filled in from the folder's cells.jsonl when the
    report predates them, so that its figures get interval bars."""
    cells = Path(folder) / "cells.jsonl"
    missing = [name for name, m in report["methods"].items() if not m.get("n_matrix")]
    if not missing or not cells.is_file():
        return report
    T = len(report["orders"][0])
    counts = {name: [[None] * T for _ in range(T)] for name in missing}
    for line in cells.read_text().splitlines():
        c = json.loads(line)
        if c.get("type") == "cell" and c["order"] == 0 and c["matrix"] in counts and c["value"]:
            counts[c["matrix"]][c["k"]][c["i"]] = c["value"].get("n")
    for name in missing:
        report["methods"][name]["n_matrix"] = counts[name]
    return report


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    for path in plots(with_counts(json.loads((folder / "report.json").read_text()), folder), folder):
        print(path)
