"""The results file of a protocol run, `DIR/cells.jsonl`: every cell of every accuracy matrix and every step
of every method, appended the moment it is known, so a stopped run resumes where it was."""

from __future__ import annotations

import json
import os
from pathlib import Path

from baas.prompts_bank.errors import BaasError

CELLS = "cells.jsonl"


class Results:
    """`DIR/cells.jsonl`: a header naming the run's settings, then one line per cell and per step, each
    flushed and fsynced as it is written. A half-written last line (a kill mid-write) is ignored."""

    def __init__(self, out: Path, identity: dict, writer: bool = True):
        self.path, self.writer = out / CELLS, writer  # under a launch, the main process writes; the others keep count
        self.cells: dict[tuple, dict | None] = {}
        self.steps: dict[tuple, dict] = {}
        self.failures: dict[tuple, dict] = {}  # (order, method) -> its last failure, until a later step of it lands
        out.mkdir(parents=True, exist_ok=True)
        lines = self.path.read_text().splitlines() if self.path.is_file() else []
        records = []
        for n, line in enumerate(lines, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if n < len(lines):
                    raise BaasError(f"{self.path}:{n}: not a JSON line; the results file is damaged (move it away to start over)") from None
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

    def matrix(self, o: int, matrix: str, T: int, field: str = "accuracy") -> list[list[float | None]]:
        return [[(self.cells.get((o, matrix, k, i)) or {}).get(field) for i in range(T)] for k in range(T)]
