"""Merge the cells of protocol runs made in parallel streams (headline.sh with METHODS/OUT) into one folder.

Every input must hold a run with the same settings (its header line); the output keeps that header, then every
cell, step and failure of every input in the order read. A record that two inputs both hold must be identical
(the same cell computed twice from the same settings); two different values for one cell stop the merge.

Usage, from the repository root:
    python benchmarks/continual/merge_cells.py OUT_DIR IN_DIR [IN_DIR ...]
When OUT_DIR already holds cells, they are read first and kept (whether or not it is also named as an input):
the merge only ever adds to a folder, and the file is rewritten in place, atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from baas.prompts_bank.errors import BaasError
from baas.training.continual.results import CELLS, read_records

KEYS = {"cell": ("order", "matrix", "k", "i"), "step": ("order", "method", "k"), "failure": ("order", "method", "k")}


def records(folder: Path) -> list[dict]:
    path = folder / CELLS
    try:
        out = read_records(path)
    except (OSError, BaasError) as exc:
        sys.exit(str(exc))
    if not out or out[0].get("type") != "run":
        sys.exit(f"{path}:1: expected the run's header line (type 'run')")
    return out


def merge(inputs: list[Path]) -> list[dict]:
    header, merged, seen = None, [], {}
    for folder in inputs:
        lines = records(folder)
        if header is None:
            header = lines[0]
        elif lines[0] != header:
            sys.exit(f"{folder / CELLS}:1: a run with other settings than {inputs[0] / CELLS}; "
                     "only streams of one run can be merged")
        for n, r in enumerate(lines[1:], 2):
            key = (r["type"], *(r[f] for f in KEYS[r["type"]]))
            if key in seen:
                if r["type"] == "cell" and seen[key] != r:
                    sys.exit(f"{folder / CELLS}:{n}: cell {key[1:]} differs from the one already read")
                if r["type"] == "cell" or seen[key] == r:
                    continue
            seen[key] = r
            merged.append(r)
    return [header, *merged]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("inputs", type=Path, nargs="+")
    args = ap.parse_args()
    inputs = [args.out] * (args.out / CELLS).exists() + args.inputs  # what OUT holds is never dropped
    inputs = [f for n, f in enumerate(inputs) if f.resolve() not in {g.resolve() for g in inputs[:n]}]
    lines = merge(inputs)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = args.out / f"{CELLS}.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in lines))
    os.replace(tmp, args.out / CELLS)
    print(f"{args.out / CELLS}: {len(lines) - 1} records from {len(inputs)} folders")


if __name__ == "__main__":
    main()
