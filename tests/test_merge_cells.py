"""benchmarks/continual/merge_cells.py: the headline's parallel streams merge into one results folder that the
protocol's own reader loads; streams of other settings, or two values for one cell, stop the merge."""

import json
import subprocess
import sys
from pathlib import Path

from baas.training.continual import Results

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "continual" / "merge_cells.py"
IDENTITY = {"tasks": ["a", "b"], "budget": {"max_train": 600}}


def stream(folder: Path, method: str, accuracy: float, identity=IDENTITY) -> Path:
    results = Results(folder, identity)
    results.add_cell(0, method, 0, 0, {"accuracy": accuracy, "n": 2, "correct": [True, accuracy > 0.5]})
    results.add_step(0, method, 0, learn_seconds=1.0)
    return folder


def merge(out: Path, *inputs: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(out), *map(str, inputs)], capture_output=True, text=True)


def test_two_streams_merge_into_one_run(tmp_path):
    a = stream(tmp_path / "a", "baas", 1.0)
    b = stream(tmp_path / "b", "naive", 0.5)
    with open(b / "cells.jsonl", "a") as f:  # a kill mid-write leaves half a line: dropped, as the reader does
        f.write('{"type": "cell", "ord')
    ran = merge(a, a, b)
    assert ran.returncode == 0, ran.stderr
    merged = Results(a, IDENTITY)
    assert merged.cells[(0, "baas", 0, 0)]["accuracy"] == 1.0
    assert merged.cells[(0, "naive", 0, 0)]["accuracy"] == 0.5
    assert set(merged.steps) == {(0, "baas", 0), (0, "naive", 0)}
    assert merge(a, a, b).returncode == 0  # merging again adds nothing
    assert len((a / "cells.jsonl").read_text().splitlines()) == 5


def test_other_settings_or_a_conflicting_cell_stop_the_merge(tmp_path):
    a = stream(tmp_path / "a", "baas", 1.0)
    other = stream(tmp_path / "other", "naive", 0.5, identity=dict(IDENTITY, tasks=["a"]))
    ran = merge(tmp_path / "out", a, other)
    assert ran.returncode != 0 and "other settings" in ran.stderr
    conflict = stream(tmp_path / "c", "baas", 0.0)
    ran = merge(tmp_path / "out", a, conflict)
    assert ran.returncode != 0 and "differs" in ran.stderr
    assert not (tmp_path / "out" / "cells.jsonl").exists()
    assert json.loads((a / "cells.jsonl").read_text().splitlines()[0])["type"] == "run"
