"""Prompt pairs: the vectors placed before (prefix) and after (suffix) every input.

`PromptPair` is what the injection path consumes: per-example tensors `[B, L, d]` (B = 1 broadcasts
one task's pair to every question). `TrainablePromptPair` holds one task's parameters while it
trains and produces a `PromptPair`; `ScoringHead` is the task's small linear scorer in the same
per-example form, so a router can fuse heads as it fuses prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

INITS = ("vocab", "random")


@dataclass
class PromptPair:
    prefix: torch.Tensor  # [B or 1, Lp, d]
    suffix: torch.Tensor  # [B or 1, Ls, d]

    def per_row(self, counts: torch.Tensor) -> "PromptPair":
        """Repeat each question's pair for its options (counts [B]); a shared pair is broadcast."""
        n = int(counts.sum())
        return PromptPair(*(_rows(t, counts, n) for t in (self.prefix, self.suffix)))


@dataclass
class ScoringHead:
    weight: torch.Tensor  # [B or 1, d]
    bias: torch.Tensor  # [B or 1]

    def per_row(self, counts: torch.Tensor) -> "ScoringHead":
        n = int(counts.sum())
        return ScoringHead(_rows(self.weight, counts, n), _rows(self.bias, counts, n))

    def __call__(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled [N, d] (weights already per row) -> scores [N]."""
        return (pooled * self.weight).sum(-1) + self.bias


def _rows(t: torch.Tensor, counts: torch.Tensor, n: int) -> torch.Tensor:
    if t.shape[0] == 1:
        return t.expand(n, *t.shape[1:])
    return t.repeat_interleave(counts.to(t.device), dim=0)


def init_vectors(
    kind: str, length: int, embeddings: torch.Tensor, candidate_ids: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """`vocab`: embeddings of tokens drawn from `candidate_ids` (the task's own frequent tokens);
    `random`: Gaussian with the embedding table's own scale."""
    if kind == "vocab":
        picks = candidate_ids[torch.randint(len(candidate_ids), (length,), generator=generator)]
        return embeddings[picks].detach().clone()
    if kind == "random":
        return torch.randn(length, embeddings.shape[1], generator=generator) * embeddings.std().item()
    raise ValueError(f"unknown prompt init '{kind}'; expected one of {', '.join(INITS)}")


class TrainablePromptPair(nn.Module):
    """One task's trainable prefix, suffix and scoring head."""

    def __init__(self, prefix: torch.Tensor, suffix: torch.Tensor, hidden: int):
        super().__init__()
        self.prefix = nn.Parameter(prefix.clone())
        self.suffix = nn.Parameter(suffix.clone())
        self.head = nn.Linear(hidden, 1)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self) -> tuple[PromptPair, ScoringHead]:
        return PromptPair(self.prefix.unsqueeze(0), self.suffix.unsqueeze(0)), ScoringHead(self.head.weight, self.head.bias)

    def prompt_parameters(self) -> list[nn.Parameter]:
        return [p for p in (self.prefix, self.suffix) if p.numel()]
