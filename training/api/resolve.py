"""What an API caller passes, made into the objects the library works on: a store (a path, a Store, or the
default one), a backbone (a hub id, a folder or a loaded Backbone), and names given as "a,b" or as a list."""

from __future__ import annotations

from pathlib import Path

from baas.store import Store, StoreError, default_store_path
from baas.training.backbone import Backbone, load_backbone


def open_store(store: str | Path | Store | None = None, *, create: bool = True) -> Store:
    """The store at `store` (default: $BAAS_HOME, else ~/.baas). With `create=False` a folder that holds no store
    is an error, and nothing is made there: reading a bank that is not there is a mistake to name, not an empty bank."""
    if isinstance(store, Store):
        return store
    root = (Path(store) if store else default_store_path()).expanduser()
    if not create and not (root / "catalog.sqlite").is_file():
        raise StoreError(f"no store at {root} (no catalog.sqlite there); train a task into it first, or pass the --store "
                         "that holds your bank")
    return Store(root)


def backbone_of(backbone: str | Backbone | None, device: str | None = None, precision: str | None = None) -> Backbone:
    """A Backbone as given (it stays where it is), or loaded onto `device` (None: auto) in `precision`."""
    return backbone if isinstance(backbone, Backbone) else load_backbone(backbone, device, precision)


def names(value: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    """Names from "a, b" or a list, blanks dropped; None when there are none."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [t.strip() for t in items if t.strip()] or None
