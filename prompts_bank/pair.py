"""Prompt pairs: the vectors placed before (prefix) and after (suffix) every input.

`PromptPair` is what the injection path consumes: per-example tensors `[B, D, L, d]` (B = 1 broadcasts
one task's pair to every question; D = 1 is a pair at the input embeddings only, D > 1 a deep pair
with vectors for the inputs of the backbone's first D layers). `ScoringHead` is the task's small linear scorer in the same
per-example form, so a router can fuse heads as it fuses prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

@dataclass
class PromptPair:
    prefix: torch.Tensor  # [B or 1, D, Lp, d]
    suffix: torch.Tensor  # [B or 1, D, Ls, d]
    gate: torch.Tensor | None = None  # [B or 1]: the input's attention-score shift for the pair; None: no gate

    def per_row(self, counts: torch.Tensor) -> "PromptPair":
        """Repeat each question's pair for its options (counts [B]); a shared pair is broadcast."""
        n = int(counts.sum())
        gate = None if self.gate is None else _rows(self.gate, counts, n)
        return PromptPair(_rows(self.prefix, counts, n), _rows(self.suffix, counts, n), gate)


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
