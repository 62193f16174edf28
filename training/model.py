"""Scoring: a prompt source + the frozen backbone + a scoring head -> logits over each question's options."""

from __future__ import annotations

import torch

from baas.prompts_bank.pair import PromptPair, ScoringHead
from baas.training.backbone import Backbone
from baas.training.batching import Batch, Encoded, batch_indices, collate


def score(backbone: Backbone, batch: Batch, pair: PromptPair, head: ScoringHead, pooling: str) -> torch.Tensor:
    """logits [B, K_max]; slots of options a question does not have are -inf."""
    counts = batch.options_per_question
    rows = pair.per_row(counts)
    pooled = backbone.forward(batch.input_ids, batch.attention_mask, rows.prefix, rows.suffix, pooling)
    scores = head.per_row(counts)(pooled)
    logits = scores.new_full(batch.option_mask.shape, float("-inf"))
    return logits.masked_scatter(batch.option_mask, scores)


@torch.inference_mode()
def predict(
    backbone: Backbone, encoded: list[Encoded], pair: PromptPair, head: ScoringHead, pooling: str,
    batch_size: int = 32, on_batch=None,
) -> list[int]:
    """Predicted option index per question, in the order of `encoded`."""
    predictions = [0] * len(encoded)
    for idx in batch_indices(encoded, batch_size, shuffle=False):
        batch = collate([encoded[i] for i in idx], backbone.pad_id)
        for i, p in zip(idx, score(backbone, batch, pair, head, pooling).argmax(-1).tolist()):
            predictions[i] = p
        if on_batch:
            on_batch(len(idx))
    return predictions


@torch.inference_mode()
def query_embeddings(backbone: Backbone, texts: list[str], batch_size: int = 64, max_length: int = 128) -> torch.Tensor:
    """[n, d] mean-pooled backbone states of the bare texts (no prompts): task keys and routing queries."""
    tok = backbone.tokenizer
    d = backbone.hidden_size
    empty = torch.zeros(1, 1, 0, d)
    out = []
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tok([texts[i] for i in idx], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        n = enc["input_ids"].shape[0]
        pooled = backbone.forward(enc["input_ids"], enc["attention_mask"], empty.expand(n, -1, -1, -1), empty.expand(n, -1, -1, -1), "mean_input")
        out.append(pooled)
    result = torch.empty(len(texts), d)
    result[torch.tensor(order)] = torch.cat(out)
    return result
