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
    # a folder that holds cells keeps them when it is not named as an input too (it was overwritten once)
    c = stream(tmp_path / "c", "ewc", 0.5)
    assert merge(a, c).returncode == 0
    assert {m for (_, m, _, _) in Results(a, IDENTITY).cells} == {"baas", "naive", "ewc"}


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


CARRY = SCRIPT.parent / "carry_states.py"


def carry(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CARRY), *map(str, args)], capture_output=True, text=True, check=True)


def test_the_latest_state_of_each_run_carries_to_a_new_store(tmp_path):
    """carry_states.py: a run's state after its latest task goes from one store to a fresh one, metadata and tensors
    as they were; earlier states stay behind, a newer one replaces the carried one, an oversized one is refused."""
    import torch

    from baas.store import Store

    old, folder = Store(tmp_path / "old"), tmp_path / "carried"
    for k in (0, 1):
        old.save_artifact("state", f"naive-abc-o0-k{k}", {"module.w": torch.full((3,), float(k))}, {"task": f"t{k}", "lr": "0.01"})
    old.save_artifact("state", "full_ft-abc-o0-k0", {"module.w": torch.zeros(2**20)}, {"task": "t0"})  # 4 MB
    said = carry("save", tmp_path / "old", folder, "--max-mb", 1).stdout
    assert "full_ft-abc-o0: the state after task 1 is 4 MB, over --max-mb 1: not carried" in said
    assert sorted(p.name for p in folder.iterdir()) == ["naive-abc-o0-k1.safetensors"]
    carry("load", folder, tmp_path / "new")
    tensors, meta = Store(tmp_path / "new").load_artifact("state", "naive-abc-o0-k1")
    assert torch.equal(tensors["module.w"], torch.full((3,), 1.0)) and meta == {"task": "t1", "lr": "0.01"}
    assert Store(tmp_path / "new").load_artifact("state", "naive-abc-o0-k0") is None
    old.save_artifact("state", "naive-abc-o0-k2", {"module.w": torch.full((3,), 2.0)}, {"task": "t2", "lr": "0.01"})
    carry("save", tmp_path / "old", folder, "--max-mb", 1)
    assert sorted(p.name for p in folder.iterdir()) == ["naive-abc-o0-k2.safetensors"]
    # a file it did not write stops the load before anything goes into the store
    (folder / "stray.safetensors").write_bytes((folder / "naive-abc-o0-k2.safetensors").read_bytes())
    refused = subprocess.run([sys.executable, str(CARRY), "load", str(folder), str(tmp_path / "third")],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "stray.safetensors: not a state file" in refused.stderr
    assert Store(tmp_path / "third").artifacts("state") == []
