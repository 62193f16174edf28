"""Everything on disk: the SQLite catalog, safetensors bank entries, artifacts, caches and training checkpoints.

    store.py      Store: one store folder (the layout on disk), made of the parts below
    catalog.py    Catalog: the SQLite catalog, one transaction per call; the runs log, the LLM answer cache
    entries.py    bank entries: one safetensors file per version, checked against the catalog
    artifacts.py  routers, query summaries, baselines' states
    caches.py     checkpoints, data-driven starting pairs, cached tensors (tokens, queries, logits)
    transfer.py   export an entry to a folder, import one
    check.py      `store check`: every file against the catalog, orphans, unreadable caches
    names.py      StoreError, the default store path, task names and entry references
    files.py      atomic_write, and the temporary files of killed writers
"""

from baas.store.files import atomic_write
from baas.store.names import TASK_NAME, StoreError, default_store_path, parse_entry_ref, validate_task_name
from baas.store.store import Store

__all__ = ["TASK_NAME", "Store", "StoreError", "atomic_write", "default_store_path", "parse_entry_ref",
           "validate_task_name"]
