"""Carry a long protocol run's baseline states from one machine to the next.

A sequential baseline (naive, EWC, the PEFT methods, O-LoRA) resumes from the state it reached after its
last finished task; that state lives in the run's store, and a store does not outlive the machine it is on.
`save` copies, for every run and method in STORE, the state after its latest task (a safetensors file whose
header holds the catalog metadata) into DIR, dropping the ones it supersedes there; `load` writes DIR's states
into another store through the store's own API, so that the same eval-forgetting command, given the run's
cells.jsonl, picks up after the last task instead of from the first. States over --max-mb (full fine-tuning's
and st_ft's whole encoder) are left out and said so: those methods start again.

Usage, from the repository root:
    python benchmarks/continual/carry_states.py save STORE DIR [--max-mb 20]
    python benchmarks/continual/carry_states.py load DIR STORE
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file

from baas.store import Store

NAME = re.compile(r"(?P<run>.+)-k(?P<k>\d+)")  # sequential.py's state names: METHOD-RUN-oO-kK


def latest(store: Store) -> dict[str, tuple[int, dict]]:
    """{METHOD-RUN-oO: (k, artifact row)} for the latest task of each."""
    out: dict[str, tuple[int, dict]] = {}
    for row in store.artifacts("state"):
        m = NAME.fullmatch(row["name"])
        if m and int(m["k"]) >= out.get(m["run"], (-1, None))[0]:
            out[m["run"]] = (int(m["k"]), row)
    return out


def save(store_dir: Path, folder: Path, max_mb: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for run, (k, row) in sorted(latest(Store(store_dir)).items()):
        size = Path(row["path"]).stat().st_size / 2**20
        if size > max_mb:
            print(f"{run}: the state after task {k + 1} is {size:.0f} MB, over --max-mb {max_mb:g}: not carried")
            continue
        target = folder / f"{row['name']}.safetensors"
        shutil.copyfile(row["path"], target.with_suffix(".tmp"))
        target.with_suffix(".tmp").replace(target)  # the newer state is in place before the one it supersedes goes
        for old in folder.glob(f"{run}-k*.safetensors"):
            if old != target:
                old.unlink()
        print(f"{run}: the state after task {k + 1} ({size:.2f} MB)")


def load(folder: Path, store_dir: Path) -> None:
    paths = sorted(folder.glob("*.safetensors"))
    for path in paths:  # every name checked before anything is written
        if not NAME.fullmatch(path.name.removesuffix(".safetensors")):
            sys.exit(f"{path}: not a state file this script wrote (expected METHOD-RUN-oO-kK.safetensors)")
    store = Store(store_dir)
    for path in paths:
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
        name = path.name.removesuffix(".safetensors")
        store.save_artifact("state", name, load_file(path), meta)
        print(f"{name}: into {store_dir} ({meta.get('method', '?')}, task {meta.get('task', '?')})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("save", help="STORE's latest state of each run into DIR")
    s.add_argument("store", type=Path)
    s.add_argument("folder", type=Path)
    s.add_argument("--max-mb", type=float, default=20.0)
    loading = sub.add_parser("load", help="DIR's states into STORE")
    loading.add_argument("folder", type=Path)
    loading.add_argument("store", type=Path)
    args = parser.parse_args()
    if args.command == "save":
        save(args.store, args.folder, args.max_mb)
    else:
        load(args.folder, args.store)


if __name__ == "__main__":
    main()
