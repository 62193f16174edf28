"""Scoring: a prompt source + the frozen backbone + a scoring head -> logits over each question's options."""

from __future__ import annotations

from typing import Callable, Union

import torch

from baas.prompts_bank.errors import BaasError
from baas.prompts_bank.pair import HEAD_FIELDS, PromptPair, ScoringHead
from baas.training.backbone import Backbone
from baas.training.batching import Batch, Encoded, MemoryBackOff, batch_indices, collate
from baas.training.parallel import Processes

PromptSource = Union[tuple[PromptPair, ScoringHead], Callable[[list[int]], tuple[PromptPair, ScoringHead]]]


def score(backbone: Backbone, batch: Batch, pair: PromptPair, head: ScoringHead, pooling: str,
          precision: str | None = None) -> torch.Tensor:
    """logits [B, K_max]; slots of options a question does not have are -inf. The head's mode says which
    passes are made (see `head_logits`); every pass goes through the one injection path with the pair.
    Everything runs on the backbone's device: a batch or a prompt found elsewhere is moved there (callers
    keep theirs there, so these are no-ops in the hot path). `precision`: the backbone's forward (its own
    by default)."""
    device = backbone.device
    batch = batch.to(device)
    pair, head = on_device(pair, head, device)
    counts = batch.options_per_question

    def encode(ids: torch.Tensor, mask: torch.Tensor, per_option: bool) -> torch.Tensor:
        rows = pair.per_row(counts if per_option else torch.ones_like(counts), ids.shape[0])
        return backbone.forward(ids, mask, rows.prefix, rows.suffix, pooling, rows.gate, precision)

    return head_logits(batch, head, encode)


def on_device(pair: PromptPair, head: ScoringHead, device: torch.device) -> tuple[PromptPair, ScoringHead]:
    """`pair` and `head` with every tensor on `device` (the same objects when they are there already)."""
    if pair.prefix.device == device:
        return pair, head
    move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
    return (PromptPair(move(pair.prefix), move(pair.suffix), move(pair.gate)),
            ScoringHead(*(move(getattr(head, f)) for f in HEAD_FIELDS)))


def head_logits(batch: Batch, head: ScoringHead, encode: Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor]
                ) -> torch.Tensor:
    """Option logits [B, K_max] (-inf where a question has no option) from a head and an encoder of token rows.

    `encode(ids, mask, per_option)` pools rows to [rows, d]; `per_option` says whether the rows are one per
    option (joint rows, options alone) or one per question (questions alone). `joint` scores each joint
    `[question; option]` row linearly; `dual` reads each question once and each option alone and scores
    their cosine (through the head's projection); `both` adds the two. Used by baas's pairs and by the
    baselines' own networks alike, so every method is scored the same way."""
    counts = batch.options_per_question
    rows = head.per_row(counts, batch.input_ids.shape[0])  # (one row per real option: no count read back)
    scores = 0
    if rows.weight is not None:
        scores = rows(encode(batch.input_ids, batch.attention_mask, True))
    if rows.scale is not None:
        if batch.query_ids is None:
            raise BaasError(f"scoring '{head.mode}' needs each question and option encoded alone; this batch has "
                            "joint rows only")
        query = encode(batch.query_ids, batch.query_mask, False).repeat_interleave(counts.to(batch.query_ids.device), 0)
        scores = scores + rows.similarity(query, encode(batch.answer_ids, batch.answer_mask, True))
    logits = scores.new_full(batch.option_mask.shape, float("-inf"))
    return logits.masked_scatter(batch.option_mask, scores)


@torch.inference_mode()
def logits(
    backbone: Backbone, encoded: list[Encoded], prompt: PromptSource, pooling: str, batch_size: int = 32, on_batch=None,
    backoff: MemoryBackOff | None = None,
) -> torch.Tensor:
    """[N, K_max] logits of every question in the order of `encoded` (-inf where a question has fewer options).

    `prompt` is one (pair, head) for every question, or a function from a batch's question indices to
    that batch's per-question (pair, head): how a router gives each question its own fused prompt. The
    logits come back on the CPU (one copy at the end)."""

    return score_questions(encoded, prompt_scorer(backbone, prompt, pooling), backbone.pad_id, batch_size, on_batch, backoff,
                           backbone.device).cpu()


def prompt_scorer(backbone: Backbone, prompt: PromptSource, pooling: str) -> Callable[[Batch, list[int]], torch.Tensor]:
    """`scorer(batch, question indices) -> logits` of a prompt source (see `logits`), for `loop.evaluate`."""
    def scorer(batch: Batch, idx: list[int]) -> torch.Tensor:
        pair, head = prompt(idx) if callable(prompt) else prompt
        return score(backbone, batch, pair, head, pooling)

    return scorer


@torch.inference_mode()
def score_questions(encoded: list[Encoded], scorer: Callable[[Batch, list[int]], torch.Tensor], pad_id: int,
                    batch_size: int = 32, on_batch=None, backoff: MemoryBackOff | None = None,
                    device: torch.device | None = None) -> torch.Tensor:
    """[N, K_max] `scorer(batch, question indices)` over every question, in length-bucketed batches (a batch that
    does not fit is scored in pieces). Under a launch of several processes (`Processes`), each scores its share
    of the questions and every process gets all the logits back, so every process must make the same call.

    `device` (None: the CPU): where the batches are sent (pinned, non-blocking copies to CUDA) and the logits
    gathered, so nothing waits on the host between batches."""
    device = device or torch.device("cpu")
    processes = Processes()
    share = processes.share(list(range(len(encoded))))
    mine = [encoded[i] for i in share]
    out = torch.full((len(mine), max(len(e.options) for e in encoded)), float("-inf"), device=device)

    def attempt(pieces: list[list[int]]) -> None:
        for idx in pieces:
            scores = scorer(collate([mine[i] for i in idx], pad_id).to(device), [share[i] for i in idx])
            out[torch.tensor(idx, device=device), : scores.shape[1]] = scores.to(device)

    backoff = backoff or MemoryBackOff()
    for idx in batch_indices(mine, batch_size, shuffle=False):
        backoff.run(idx, attempt)
        if on_batch:
            on_batch(len(idx))
    return processes.gather(out, len(encoded))


def predict(backbone: Backbone, encoded: list[Encoded], prompt: PromptSource, pooling: str, batch_size: int = 32,
            on_batch=None, backoff: MemoryBackOff | None = None) -> list[int]:
    """Predicted option index per question, in the order of `encoded`."""
    return logits(backbone, encoded, prompt, pooling, batch_size, on_batch, backoff).argmax(-1).tolist()


@torch.inference_mode()
def query_embeddings(backbone: Backbone, texts: list[str], seconds: list[str] | None = None, batch_size: int = 64,
                     max_length: int = 128, layers: tuple[int, ...] | None = None) -> torch.Tensor:
    """[n, len(layers) * d] mean-pooled backbone states of the bare texts (no prompts): task keys and routing
    queries. `layers` (default: the last) are the layers whose outputs are pooled and concatenated; the
    pass stops after the deepest. `seconds` pairs each text with a second one (a passage), which is cut
    first when the pair is too long."""
    tok = backbone.tokenizer
    layers = layers or (backbone.num_layers,)
    out = []
    size = [len(t) + (len(seconds[i]) if seconds else 0) for i, t in enumerate(texts)]
    order = sorted(range(len(texts)), key=size.__getitem__)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        pair = [seconds[i] for i in idx] if seconds else None
        enc = tok([texts[i] for i in idx], pair, truncation="longest_first", max_length=max_length, padding=True,
                  return_tensors="pt")
        out.append(backbone.layer_means(enc["input_ids"].to(backbone.device, non_blocking=True),
                                        enc["attention_mask"].to(backbone.device, non_blocking=True), layers))
    result = torch.empty(len(texts), len(layers) * backbone.hidden_size)
    result[torch.tensor(order)] = torch.cat(out).cpu()  # keys and queries are kept (and routed) on the CPU
    return result
