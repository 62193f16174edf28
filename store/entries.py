"""Bank entries: one safetensors file per version of a task (`<store>/bank/<task>/v<N>.safetensors`),
its catalog row with the file's sha256, and reads that verify the checksum and the backbone."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

from safetensors.torch import save as save_safetensors

from baas.prompts_bank.bank import BankEntry
from baas.store.catalog import Catalog
from baas.store.files import atomic_write
from baas.store.names import StoreError, validate_task_name

FORMAT = "baas-bank-entry/1"


class Entries(Catalog):
    """Saving, finding, reading and removing the versions of each task's bank entry."""

    def save_entry(self, entry: BankEntry, dataset: str, metrics: dict) -> BankEntry:
        """Write a new version of `entry.task`; returns the entry with its version and file set.

        The version is allocated under SQLite's write lock (`BEGIN IMMEDIATE`), held until the row is in:
        two processes saving the same task get distinct versions (the second waits a few milliseconds)."""
        task = validate_task_name(entry.task)
        tensors = {k: v.detach().contiguous().cpu().float() for k, v in entry.tensors().items()}
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT MAX(version) AS v FROM entries WHERE task = ?", (task,)).fetchone()
            version = (row["v"] or 0) + 1
            meta = dict(entry.meta, task=task, version=version, metrics=metrics, created=time.time())
            payload = save_safetensors(tensors, metadata={"format": FORMAT, "baas": json.dumps(meta, sort_keys=True)})
            path = self.root / "bank" / task / f"v{version}.safetensors"
            atomic_write(path, lambda f: f.write(payload))  # file first: a crash leaves no row without its file
            db.execute("INSERT OR IGNORE INTO tasks VALUES (?, ?, ?)", (task, dataset, meta["created"]))
            db.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (task, version, str(path.relative_to(self.root)), hashlib.sha256(payload).hexdigest(),
                 meta["backbone"], meta["hidden_size"], meta["created"], json.dumps(metrics), json.dumps(meta)),
            )
        entry.meta, entry.version = meta, version
        return entry

    def entry_path(self, task: str, version: int | None = None) -> Path:
        return self.root / self._entry_row(task, version)["file"]

    def _entry_row(self, task: str, version: int | None) -> sqlite3.Row:
        validate_task_name(task)
        with self._db() as db:
            if version is None:
                row = db.execute("SELECT * FROM entries WHERE task = ? ORDER BY version DESC LIMIT 1", (task,)).fetchone()
            else:
                row = db.execute("SELECT * FROM entries WHERE task = ? AND version = ?", (task, version)).fetchone()
        if row is None:
            which = f"version {version} of " if version else ""
            raise StoreError(f"no bank entry for {which}task '{task}' in store {self.root} (see `baas bank list`)")
        return row

    def load_entry(
        self, task: str, version: int | None = None, *, backbone: str | None = None, hidden_size: int | None = None
    ) -> BankEntry:
        """Read and verify an entry; refuse one made for another backbone when `backbone` is given."""
        row = self._entry_row(task, version)
        path, _, tensors = self._read_verified(
            row, "bank", f"retrain it with `baas train-task {task}` or remove that version with `baas bank rm {task}@v{row['version']}`")
        meta = json.loads(row["meta"])
        if backbone is not None and (meta["backbone"] != backbone or meta["hidden_size"] != hidden_size):
            raise StoreError(
                f"{path}: entry '{task}' was trained on backbone {meta['backbone']} (hidden size {meta['hidden_size']}), "
                f"not {backbone} (hidden size {hidden_size}); pass --backbone {meta['backbone']} or retrain"
            )
        return BankEntry.from_tensors(task, tensors, meta, row["version"])

    def list_entries(self) -> list[dict]:
        """The latest version of every task, in the order tasks were first learned."""
        with self._db() as db:
            rows = db.execute(
                "SELECT e.*, t.dataset, (SELECT COUNT(*) FROM entries x WHERE x.task = e.task) AS versions "
                "FROM entries e JOIN tasks t ON t.name = e.task "
                "WHERE e.version = (SELECT MAX(version) FROM entries x WHERE x.task = e.task) ORDER BY t.created"
            ).fetchall()
        return [self._describe(r) for r in rows]

    def describe(self, task: str, version: int | None = None) -> dict:
        return self._describe(self._entry_row(task, version))

    def _describe(self, row: sqlite3.Row) -> dict:
        meta = json.loads(row["meta"])
        out = {k: row[k] for k in row.keys() if k not in ("meta", "metrics")}
        out.update(metrics=json.loads(row["metrics"]), meta=meta, path=str(self.root / row["file"]))
        return out

    def find_version(self, task: str, run_key: str) -> int | None:
        """The newest version of `task` trained by the run `run_key` names (same data, backbone and
        settings; see `baas.training.cache.run_key`), or None."""
        with self._db() as db:
            row = db.execute("SELECT MAX(version) AS v FROM entries WHERE task = ? AND json_extract(meta, '$.run_key') = ?",
                             (validate_task_name(task), run_key)).fetchone()
        return row["v"]

    def versions(self, task: str) -> list[dict]:
        """Every version of a task, newest first (as `describe` gives them)."""
        validate_task_name(task)
        with self._db() as db:
            rows = db.execute("SELECT * FROM entries WHERE task = ? ORDER BY version DESC", (task,)).fetchall()
        return [self._describe(r) for r in rows]

    def remove(self, task: str, version: int | None = None) -> int:
        """Delete one version of a task, or every version; returns how many entries went."""
        validate_task_name(task)
        which, args = ("task = ? AND version = ?", (task, version)) if version is not None else ("task = ?", (task,))
        with self._db() as db:
            files = [r["file"] for r in db.execute(f"SELECT file FROM entries WHERE {which}", args)]
            if not files:
                what = f"version {version} of " if version is not None else ""
                raise StoreError(f"no bank entry for {what}task '{task}' in store {self.root} (see `baas bank list`)")
            db.execute(f"DELETE FROM entries WHERE {which}", args)
            if db.execute("SELECT COUNT(*) FROM entries WHERE task = ?", (task,)).fetchone()[0] == 0:
                db.execute("DELETE FROM tasks WHERE name = ?", (task,))
        for f in files:  # catalog first: a crash here leaves orphan files, never dangling rows
            (self.root / f).unlink(missing_ok=True)
        return len(files)
