"""A frozen bank entry's answers: its logits on one task's evaluation questions, computed at most once per
question and kept in the store's cache (kind `logits`, keyed by `cache.logits_key`). An entry never changes
once saved, so neither do its answers: the trainer's final evaluation of a new entry writes the block that
fused evaluation (`fusion.evaluate_fused`, the protocol's oracle and routed passes) later reads.

A block holds, for the task's questions in order, the logits [n, width] (width: the most options a question
of that task has; -inf in the slots of options a question lacks, and in rows not run yet), which rows are
done, and the seconds spent with the number of rows run (for the per-question cost)."""

from __future__ import annotations

import time

import torch

from baas.store import Store
from baas.training.backbone import Backbone
from baas.training.batching import Encoded
from baas.training.cache import logits_key
from baas.training.parallel import Processes
from baas.training.scoring import logits, on_device


def empty_block(n: int, width: int) -> dict[str, torch.Tensor]:
    return {"logits": torch.full((n, width), float("-inf")), "done": torch.zeros(n, dtype=torch.bool),
            "seconds": torch.zeros(2)}  # seconds spent, rows run


def entry_answers(entry, backbone: Backbone, encoded: list[Encoded], questions: str, max_length: int,
                  store: Store | None, rows: torch.Tensor | None = None, batch_size: int = 32, on_batch=None
                  ) -> dict[str, torch.Tensor]:
    """The entry's block on a task's questions (`encoded`, whose fingerprint is `questions`), with at least
    `rows` (a bool mask; None: all) done: read from the store's cache, the missing rows run now and the block
    saved back (`store` None, or an entry not saved yet: nothing is read or kept; see `keep_answers`).
    Under a launch of several processes every process makes the same call (the scoring is shared); the main
    process writes the cache."""
    n, width = len(encoded), max(len(e.options) for e in encoded)
    key = logits_key(entry, questions, max_length) if store is not None and entry.version else None  # (0: not saved)
    block = store.load_cached("logits", key) if key is not None else None
    if block is None or block["logits"].shape != (n, width):
        block = empty_block(n, width)
    wanted = torch.ones(n, dtype=torch.bool) if rows is None else rows
    todo = (wanted & ~block["done"]).nonzero().flatten().tolist()
    if todo:
        started = time.perf_counter()
        prompt = on_device(*entry.prompt(), backbone.device)
        scores = logits(backbone, [encoded[i] for i in todo], prompt, entry.meta["pooling"], batch_size, on_batch)
        block["logits"][todo, : scores.shape[1]] = scores
        block["seconds"] += torch.tensor([time.perf_counter() - started, len(todo)])
        block["done"][todo] = True
        if key is not None:
            keep_answers(store, entry, questions, max_length, block)
    return block


def keep_answers(store: Store, entry, questions: str, max_length: int, block: dict[str, torch.Tensor]) -> None:
    """Keep `entry`'s block in the store's cache (the main process writes it). The trainer calls it itself for a
    block computed before `entry` was saved (a new entry is evaluated before the store gives it its version)."""
    if Processes().main:
        store.save_cached("logits", logits_key(entry, questions, max_length), block)
