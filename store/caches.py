"""What the store keeps so that work is not redone: training checkpoints (resuming a run), data-driven
starting pairs, and cached tensors (token ids, query vectors, entries' answers). None has a catalog row."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from baas.store.catalog import Catalog
from baas.store.files import atomic_write
from baas.store.names import StoreError, validate_task_name


class Caches(Catalog):
    """Checkpoints (`checkpoints/`), initialisations (`inits/`) and caches (`tokens/`, `queries/`, `logits/`)."""

    # ---- checkpoints --------------------------------------------------------------------------

    def checkpoint_path(self, task: str, key: str) -> Path:
        return self.root / "checkpoints" / validate_task_name(task) / f"{key}.pt"

    def save_checkpoint(self, task: str, key: str, state: dict) -> None:
        atomic_write(self.checkpoint_path(task, key), lambda f: torch.save(state, f))

    def load_checkpoint(self, task: str, key: str) -> dict | None:
        path = self.checkpoint_path(task, key)
        if not path.is_file():
            return None
        try:
            return torch.load(path, weights_only=True, map_location="cpu")
        except Exception as exc:  # a checkpoint we cannot read is an error to report, never to ignore
            raise StoreError(f"{path}: unreadable checkpoint ({type(exc).__name__}); delete it to start over") from None

    def drop_checkpoint(self, task: str, key: str) -> None:
        self.checkpoint_path(task, key).unlink(missing_ok=True)

    # ---- initialisations ----------------------------------------------------------------------

    def init_path(self, task: str, key: str) -> Path:
        return self.root / "inits" / validate_task_name(task) / f"{key}.safetensors"

    def save_init(self, task: str, key: str, tensors: dict[str, torch.Tensor], info: dict) -> Path:
        """A starting pair and the JSON record of how it was made, in one safetensors file."""
        path = self.init_path(task, key)
        blob = save_safetensors({k: v.contiguous() for k, v in tensors.items()}, metadata={"info": json.dumps(info)})
        atomic_write(path, lambda f: f.write(blob))
        return path

    def load_init(self, task: str, key: str) -> tuple[dict[str, torch.Tensor], dict] | None:
        path = self.init_path(task, key)
        if not path.is_file():
            return None
        try:
            with safe_open(path, "pt") as f:
                info = json.loads((f.metadata() or {})["info"])
                return {k: f.get_tensor(k) for k in f.keys()}, info
        except (SafetensorError, KeyError, ValueError, OSError) as exc:
            raise StoreError(f"{path}: unreadable initialisation ({type(exc).__name__}); delete it to make it again") from None

    # ---- caches: token ids, query vectors, entries' answers --------------------------------------

    CACHES = ("tokens", "queries", "logits")

    def cache_path(self, kind: str, key: str) -> Path:
        if kind not in self.CACHES or not re.fullmatch(r"[0-9a-f]{16,64}", key):
            raise StoreError(f"invalid cache entry {kind}/{key!r}")
        return self.root / kind / f"{key}.safetensors"

    def save_cached(self, kind: str, key: str, tensors: dict[str, torch.Tensor]) -> None:
        blob = save_safetensors({k: v.contiguous() for k, v in tensors.items()})
        atomic_write(self.cache_path(kind, key), lambda f: f.write(blob))

    def load_cached(self, kind: str, key: str) -> dict[str, torch.Tensor] | None:
        """The cached tensors, or None when absent; an unreadable file is removed and reported as absent
        (it is a cache: the caller computes it again and rewrites it)."""
        path = self.cache_path(kind, key)
        if not path.is_file():
            return None
        try:
            return load_safetensors(path.read_bytes())
        except (SafetensorError, OSError):
            path.unlink(missing_ok=True)
            return None
