"""The SQLite catalog (`<store>/catalog.sqlite`): its schema, one transaction per call, errors in one
line, and the rows that have no file: the runs log and the LLM answer cache.

`Catalog` is the base of `Store`: it opens the folder and the catalog, and removes the half-written files
of killed writers. The parts of the store built on it (entries, artifacts, caches, transfer, check) are
classes in their own files that `Store` combines.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from baas.store.files import TMP_SUFFIX, writer_gone
from baas.store.names import StoreError, default_store_path, validate_task_name

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    name TEXT PRIMARY KEY, dataset TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    task TEXT NOT NULL REFERENCES tasks(name), version INTEGER NOT NULL, file TEXT NOT NULL,
    sha256 TEXT NOT NULL, backbone TEXT NOT NULL, hidden_size INTEGER NOT NULL, created REAL NOT NULL,
    metrics TEXT NOT NULL, meta TEXT NOT NULL, PRIMARY KEY (task, version));
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, kind TEXT NOT NULL, started REAL NOT NULL,
    finished REAL, status TEXT NOT NULL, config TEXT NOT NULL, metrics TEXT);
CREATE TABLE IF NOT EXISTS artifacts (
    kind TEXT NOT NULL, name TEXT NOT NULL, file TEXT NOT NULL, sha256 TEXT NOT NULL, meta TEXT NOT NULL,
    created REAL NOT NULL, PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS llm_cache (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, request TEXT NOT NULL, response TEXT NOT NULL, created REAL NOT NULL);
"""


def lock_timeout() -> float:
    """Seconds a command waits for another process's write lock on the catalog ($BAAS_STORE_TIMEOUT, default 30)."""
    raw = os.environ.get("BAAS_STORE_TIMEOUT", "30")
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise StoreError(f"BAAS_STORE_TIMEOUT={raw!r}: expected a number of seconds") from None


def _catalog_problem(exc: sqlite3.DatabaseError, wait: float) -> str:
    """What a catalog error means for the user, in one line."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return (f"the catalog is locked by another process and stayed locked for {wait:g} s; "
                "wait for it to finish, or raise $BAAS_STORE_TIMEOUT")
    if "readonly" in text or "read-only" in text:
        return "the catalog is read-only (its file or folder cannot be written); nothing was changed"
    if "disk is full" in text:
        return f"the catalog cannot be written ({text}); free some space and rerun: nothing was changed"
    if "disk I/O" in text:
        return f"the catalog's disk failed a read or write ({text}); nothing was changed"
    if "not a database" in text or "malformed" in text:
        return f"the catalog is damaged ({text}); restore it from a copy, or move the store aside and start a new one"
    return f"catalog error: {text}"


class Catalog:
    """The store folder and its catalog: the base every part of `Store` builds on."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root else default_store_path()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot create the store folder ({exc.strerror or exc})") from None
        self.catalog_path = self.root / "catalog.sqlite"
        with self._db() as db:
            db.executescript(SCHEMA)
        self.cleaned = []  # half-written files of processes that were killed, removed now
        for tmp in self._temporary_files():
            if writer_gone(tmp):
                tmp.unlink(missing_ok=True)
                self.cleaned.append(str(tmp.relative_to(self.root)))

    def _temporary_files(self) -> list[Path]:
        return [Path(d) / f for d, _, files in os.walk(self.root) for f in files
                if f.startswith(".") and f.endswith(TMP_SUFFIX)]

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        wait = lock_timeout()
        try:
            db = sqlite3.connect(self.catalog_path, timeout=wait)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.catalog_path}: cannot open catalog: {exc}") from None
        db.row_factory = sqlite3.Row
        try:
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.catalog_path}: {_catalog_problem(exc, wait)}") from None
        finally:
            db.close()

    def _read_verified(self, row: sqlite3.Row, what: str, remedy: str) -> tuple[Path, bytes, dict[str, torch.Tensor]]:
        """(path, bytes, tensors) of the safetensors file a catalog row names, refused with a StoreError that names
        the file when it cannot be read, when its sha256 is not the catalog's (then `remedy` says what to do), or
        when it is not safetensors. `what`: the kind of file, for the message."""
        path = self.root / row["file"]
        try:
            payload = path.read_bytes()
        except OSError as exc:
            raise StoreError(f"{path}: cannot read {what} file: {exc.strerror}") from None
        if hashlib.sha256(payload).hexdigest() != row["sha256"]:
            raise StoreError(f"{path}: {what} file is corrupt or truncated (sha256 does not match the catalog); {remedy}")
        try:
            return path, payload, load_safetensors(payload)
        except (SafetensorError, ValueError) as exc:
            raise StoreError(f"{path}: not a readable safetensors file: {exc}") from None

    # ---- runs ---------------------------------------------------------------------------------

    def start_run(self, task: str, kind: str, config: dict) -> int:
        with self._db() as db:
            cur = db.execute(
                "INSERT INTO runs (task, kind, started, status, config) VALUES (?, ?, ?, 'running', ?)",
                (validate_task_name(task), kind, time.time(), json.dumps(config, sort_keys=True)),
            )
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str, metrics: dict | None = None) -> None:
        with self._db() as db:
            db.execute("UPDATE runs SET finished = ?, status = ?, metrics = ? WHERE id = ?",
                       (time.time(), status, json.dumps(metrics) if metrics else None, run_id))

    def runs(self, task: str | None = None) -> list[dict]:
        with self._db() as db:
            query = "SELECT * FROM runs" + (" WHERE task = ?" if task else "") + " ORDER BY id"
            return [dict(r) for r in db.execute(query, (task,) if task else ())]

    # ---- LLM answer cache ---------------------------------------------------------------------

    def llm_cache_get(self, key: str) -> str | None:
        """The cached answer for a request hash (see `baas.training.init.llm`), or None."""
        with self._db() as db:
            row = db.execute("SELECT response FROM llm_cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["response"]

    def llm_cache_put(self, key: str, model: str, request: dict, response: str) -> None:
        """Store (or replace) the answer for a request hash; the request is kept as JSON for audits."""
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO llm_cache VALUES (?, ?, ?, ?, ?)",
                       (key, model, json.dumps(request, sort_keys=True), response, time.time()))
