"""Checking the whole store: every file against its catalog row, orphans, unreadable caches and SQLite's own
integrity check; with repair, what no row needs is removed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from baas.store.artifacts import Artifacts
from baas.store.caches import Caches
from baas.store.files import TMP_SUFFIX


class Check(Artifacts, Caches):
    """`check` (`baas store check [--repair]`)."""

    CATALOGUED = ("bank", *Artifacts.ARTIFACTS.values())  # folders whose every file has a catalog row

    def check(self, repair: bool = False) -> dict:
        """Verify every file against the catalog. Returns the problems found, by kind:
        `missing` (a row whose file is gone), `corrupt` (a file whose sha256 or format does not match its
        row), `orphans` (a file in a catalogued folder that no row names), `bad_caches` (an unreadable
        cache, initialisation or checkpoint) and `catalog` (SQLite's own integrity check). With `repair`,
        orphans and bad caches are deleted (no catalog row needs them); missing and corrupt entries are
        left for the user (`baas bank rm`, or rerun what made them) and still reported. `removed` lists
        what went, including the half-written files of killed writers that opening the store removed."""
        problems: dict[str, list] = {k: [] for k in ("missing", "corrupt", "orphans", "bad_caches", "catalog")}
        with self._db() as db:
            verdict = [r[0] for r in db.execute("PRAGMA integrity_check")]
            if verdict != ["ok"]:
                problems["catalog"] = verdict
            rows = [("entry", f"{r['task']}@v{r['version']}", r["file"], r["sha256"]) for r in db.execute("SELECT * FROM entries")]
            rows += [(r["kind"], r["name"], r["file"], r["sha256"]) for r in db.execute("SELECT * FROM artifacts")]
        named = set()
        for kind, name, file, sha in rows:
            path = self.root / file
            named.add(path.resolve())
            where = {"kind": kind, "name": name, "file": file}
            if not path.is_file():
                problems["missing"].append(where)
                continue
            payload = path.read_bytes()
            if hashlib.sha256(payload).hexdigest() != sha:
                problems["corrupt"].append(dict(where, why="sha256 does not match the catalog"))
                continue
            try:
                load_safetensors(payload)
            except (SafetensorError, ValueError) as exc:
                problems["corrupt"].append(dict(where, why=f"not a readable safetensors file: {exc}"))
        for folder in self.CATALOGUED:
            for path in sorted((self.root / folder).rglob("*")) if (self.root / folder).is_dir() else []:
                if path.is_file() and not path.name.endswith(TMP_SUFFIX) and path.resolve() not in named:
                    problems["orphans"].append(str(path.relative_to(self.root)))
        for path in self._cache_files():
            if not self._readable(path):
                problems["bad_caches"].append(str(path.relative_to(self.root)))
        removed = list(self.cleaned)
        if repair:
            for rel in problems["orphans"] + problems["bad_caches"]:
                (self.root / rel).unlink(missing_ok=True)
                removed.append(rel)
            problems["orphans"], problems["bad_caches"] = [], []
        return {"store": str(self.root), "files_checked": len(rows), "ok": not any(problems.values()),
                "problems": problems, "removed": removed}

    def _cache_files(self) -> list[Path]:
        folders = [*self.CACHES, "inits", "checkpoints"]
        return sorted(p for f in folders if (self.root / f).is_dir() for p in (self.root / f).rglob("*")
                      if p.is_file() and not p.name.endswith(TMP_SUFFIX))

    @staticmethod
    def _readable(path: Path) -> bool:
        try:
            if path.suffix == ".pt":
                torch.load(path, weights_only=True, map_location="cpu")
            else:
                load_safetensors(path.read_bytes())
            return True
        except Exception:  # any failure to read means the same here: the file cannot be used
            return False
