"""Everything on disk: the SQLite catalog, safetensors bank entries and training checkpoints."""

from baas.store.store import Store, StoreError, default_store_path

__all__ = ["Store", "StoreError", "default_store_path"]
