"""Everything on disk: the SQLite catalog, safetensors bank entries and training checkpoints."""

from baas.store.store import Store, default_store_path

__all__ = ["Store", "default_store_path"]
