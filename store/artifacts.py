"""Named artifacts: fitted routers, the entries' query summaries and continual baselines' states, one
safetensors file each, named by its content and checked against its catalog row."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import torch
from safetensors.torch import save as save_safetensors

from baas.store.catalog import Catalog
from baas.store.files import atomic_write
from baas.store.names import StoreError


class Artifacts(Catalog):
    """Routers (`routers/`), query summaries (`summaries/`) and baselines' states (`states/`) by kind and name."""

    ARTIFACTS = {"router": "routers", "summary": "summaries", "state": "states"}

    def artifact_path(self, kind: str, name: str, sha256: str = "") -> Path:
        """Where an artifact's file goes: `FOLDER/NAME.SHA.safetensors`, named by its content, so that replacing
        an artifact writes a new file and then moves the catalog row to it in one transaction. A kill between
        the two leaves the old row and file as they were (plus an orphan that `store check --repair` removes),
        never a row whose checksum does not match its file."""
        if kind not in self.ARTIFACTS or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}", name):
            raise StoreError(f"invalid {kind} name {name!r}")
        return self.root / self.ARTIFACTS[kind] / (f"{name}.{sha256[:16]}.safetensors" if sha256 else f"{name}.safetensors")

    def save_artifact(self, kind: str, name: str, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> Path:
        """Write (or replace) a named artifact: a new file first, then its catalog row with the checksum, then the
        file it replaces (and any a killed writer left) goes."""
        payload = save_safetensors({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=meta)
        sha = hashlib.sha256(payload).hexdigest()
        path = self.artifact_path(kind, name, sha)
        atomic_write(path, lambda f: f.write(payload))
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?, ?)",
                       (kind, name, str(path.relative_to(self.root)), sha, json.dumps(meta), time.time()))
            kept = {self.root / r[0] for r in db.execute("SELECT file FROM artifacts WHERE kind = ?", (kind,))}
        for old in [self.artifact_path(kind, name), *path.parent.glob(f"{name}.{'[0-9a-f]' * 16}.safetensors")]:
            if old not in kept:
                old.unlink(missing_ok=True)
        return path

    def load_artifact(self, kind: str, name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
        """(tensors, metadata) of a named artifact, verified against its checksum; None when there is none."""
        self.artifact_path(kind, name)  # (checks the name)
        with self._db() as db:
            row = db.execute("SELECT * FROM artifacts WHERE kind = ? AND name = ?", (kind, name)).fetchone()
        if row is None:
            return None
        _, payload, tensors = self._read_verified(row, kind, "rebuild it (`baas fuse` remakes routers and summaries)")
        header = int.from_bytes(payload[:8], "little")  # safetensors: 8-byte header length, then the JSON header
        return tensors, json.loads(payload[8 : 8 + header]).get("__metadata__") or {}

    def artifacts(self, kind: str) -> list[dict]:
        """Every artifact of a kind, newest first (of two saved within the clock's resolution, the one saved last)."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM artifacts WHERE kind = ? ORDER BY created DESC, rowid DESC", (kind,)).fetchall()
        return [dict(r, meta=json.loads(r["meta"]), path=str(self.root / r["file"])) for r in rows]
