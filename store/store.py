"""The store: one folder with a SQLite catalog, one safetensors file per bank entry, and checkpoints.

    <store>/catalog.sqlite            tasks, entries (versions, checksums, metrics), runs, llm_cache
    <store>/bank/<task>/v<N>.safetensors
    <store>/checkpoints/<task>/<run-key>.pt
    <store>/inits/<task>/<init-key>.safetensors   data-driven starting pairs (topic labels, chains)
    <store>/tokens/<key>.safetensors              token ids of a dataset split for one tokenizer
    <store>/queries/<key>.safetensors             routing query vectors of a dataset split for one backbone
    <store>/logits/<key>.safetensors              one entry's answers on one split's questions (those run so far)
    <store>/summaries/<task>@v<N>-<query>.safetensors  an entry's query statistics (what a router keeps)
    <store>/routers/<name>.safetensors            fitted routers
    <store>/states/<name>.safetensors             a continual baseline's model after each task (eval-forgetting)

Every file is written to a temporary name, fsynced and renamed before its catalog row is committed,
so a crash leaves either the old state or the new one. Every read of a bank file checks its sha256
against the catalog. Nothing is pickled: tensors go to safetensors, metadata to JSON, and checkpoints
are read back with `torch.load(weights_only=True)`.
"""

from baas.store.artifacts import Artifacts
from baas.store.caches import Caches
from baas.store.catalog import Catalog
from baas.store.check import Check
from baas.store.entries import Entries
from baas.store.transfer import Transfer


class Store(Transfer, Check, Entries, Artifacts, Caches, Catalog):
    """One store folder. Each part is a class in its own file: `Catalog` (the SQLite catalog, runs, the LLM
    cache), `Entries` (bank entries), `Artifacts` (routers, summaries, states), `Caches` (checkpoints,
    initialisations, cached tensors), `Transfer` (export and import) and `Check` (`store check`)."""
