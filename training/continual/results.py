"""The results file of a protocol run, `DIR/cells.jsonl`: every cell of every accuracy matrix and every step
of every method, appended the moment it is known, so a stopped run resumes where it was."""

from __future__ import annotations

import json
import os
from pathlib import Path

from baas.prompts_bank.errors import BaasError

CELLS = "cells.jsonl"


def read_records(path: Path) -> list[dict]:
    """The records of a results file; a half-written last line (a kill mid-write) is dropped, any other bad line
    is an error naming it."""
    lines = path.read_text().splitlines()
    records = []
    for n, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if n < len(lines):
                raise BaasError(f"{path}:{n}: not a JSON line; the results file is damaged (move it away to start over)") from None
    return records


class Results:
    """`DIR/cells.jsonl`: a header naming the run's settings, then one line per cell and per step, each
    flushed and fsynced as it is written. A half-written last line (a kill mid-write) is ignored."""

    def __init__(self, out: Path, identity: dict, writer: bool = True):
        self.path, self.writer = out / CELLS, writer  # under a launch, the main process writes; the others keep count
        self.cells: dict[tuple, dict | None] = {}
        self.steps: dict[tuple, dict] = {}
        self.failures: dict[tuple, dict] = {}  # (order, method) -> its last failure, until a later step of it lands
        out.mkdir(parents=True, exist_ok=True)
        records = read_records(self.path) if self.path.is_file() else []
        if records and records[0].get("identity") != json.loads(json.dumps(identity)):
            raise BaasError(f"{out} holds results of a run with other settings ({self.path}); pass another --out, or "
                            "delete that folder to start over")
        if not records:
            self._append({"type": "run", "identity": identity})
        for r in records[1:]:
            if r["type"] == "cell":
                self.cells[(r["order"], r["matrix"], r["k"], r["i"])] = r["value"]
            elif r["type"] == "step":
                self._step(r)
            elif r["type"] == "failure":
                self.failures[(r["order"], r["method"])] = r

    def _append(self, record: dict) -> None:
        if not self.writer:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def has(self, o: int, matrix: str, k: int, i: int) -> bool:
        return (o, matrix, k, i) in self.cells

    def add_cell(self, o: int, matrix: str, k: int, i: int, value: dict | None) -> None:
        self.cells[(o, matrix, k, i)] = value
        self._append({"type": "cell", "order": o, "matrix": matrix, "k": k, "i": i, "value": value})

    def _step(self, record: dict) -> None:
        o, method, k = record["order"], record["method"], record["k"]
        self.steps[(o, method, k)] = record
        if (o, method) in self.failures and k >= self.failures[(o, method)]["k"]:
            del self.failures[(o, method)]

    def add_step(self, o: int, method: str, k: int, **fields) -> None:
        record = {"type": "step", "order": o, "method": method, "k": k, **fields}
        self._step(record)
        self._append(record)

    def add_failure(self, o: int, method: str, k: int, error: str) -> None:
        record = {"type": "failure", "order": o, "method": method, "k": k, "error": error}
        self.failures[(o, method)] = record
        self._append(record)

    def baas_first(self, o: int, strategies: list[str]) -> str | None:
        """The strategy whose cells this folder names `baas` in order o: the first of the --strategies recorded
        with baas's steps; for a folder from before they were recorded, the one strategy of `strategies` with no
        `baas:NAME` cells (None when no `baas` cell exists)."""
        for (order, method, _), step in sorted(self.steps.items()):
            if order == o and method == "baas" and step.get("strategies"):
                return step["strategies"][0]
        named = {m for (order, m, _, _) in self.cells if order == o}
        unnamed = [s for s in strategies if f"baas:{s}" not in named]
        if "baas" not in named:
            return None
        if len(unnamed) != 1:
            raise BaasError(f"{self.path}: cannot tell which strategy its `baas` cells are (the run did not record its "
                            f"--strategies, and {', '.join(unnamed) or 'none'} of {', '.join(strategies)} have no "
                            "cells of their own); pass --strategies as the run had them")
        return unnamed[0]

    def relabel_baas(self, o: int, recorded: str, first: str) -> None:
        """Order o's cells read with `first` as `baas` and `recorded` (the folder's `baas`) as `baas:recorded`;
        in memory only, the file keeps its names. `first` must have cells of its own in that order."""
        if not any(order == o and m == f"baas:{first}" for (order, m, _, _) in self.cells):
            raise BaasError(f"{self.path.parent}: no cells of the strategy '{first}' to show as baas")
        swap = {"baas": f"baas:{recorded}", f"baas:{first}": "baas"}
        self.cells = {(order, swap.get(m, m) if order == o else m, k, i): v for (order, m, k, i), v in self.cells.items()}

    def matrix(self, o: int, matrix: str, T: int, field: str = "accuracy") -> list[list[float | None]]:
        return [[(self.cells.get((o, matrix, k, i)) or {}).get(field) for i in range(T)] for k in range(T)]
