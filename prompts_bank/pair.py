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

    def per_row(self, counts: torch.Tensor, n: int | None = None) -> "PromptPair":
        """Repeat each question's pair for its options (counts [B]); a shared pair is broadcast. `n`: counts'
        sum when the caller knows it (then nothing is read back from a GPU)."""
        n = int(counts.sum()) if n is None else n
        gate = None if self.gate is None else _rows(self.gate, counts, n)
        return PromptPair(_rows(self.prefix, counts, n), _rows(self.suffix, counts, n), gate)


HEAD_FIELDS = ("weight", "bias", "scale", "proj_in", "proj_out")


@dataclass
class ScoringHead:
    """How a task turns pooled vectors into option scores, per example (so a router can fuse heads).

    Joint part (`joint`, `both`): a linear score of the pooled `[question; option]` row, weight [B, d],
    bias [B]. Similarity part (`dual`, `both`): exp(scale) * cos(P q, P o) of the pooled question q and the
    pooled option o, with P = I + proj_out proj_in^T (proj_in, proj_out [B, d, r]; proj_out starts at zero,
    so P starts as the identity). A part that is absent is None; which parts are there is the mode."""

    weight: torch.Tensor | None  # [B or 1, d]
    bias: torch.Tensor | None  # [B or 1]
    scale: torch.Tensor | None = None  # [B or 1]: log of the cosine's multiplier
    proj_in: torch.Tensor | None = None  # [B or 1, d, r]
    proj_out: torch.Tensor | None = None  # [B or 1, d, r]

    @property
    def mode(self) -> str:
        if self.scale is None:
            return "joint"
        return "dual" if self.weight is None else "both"

    def per_row(self, counts: torch.Tensor, n: int | None = None) -> "ScoringHead":
        n = int(counts.sum()) if n is None else n
        return ScoringHead(*(None if t is None else _rows(t, counts, n) for t in (getattr(self, f) for f in HEAD_FIELDS)))

    def __call__(self, pooled: torch.Tensor) -> torch.Tensor:
        """The joint part: pooled rows [N, d] (weights already per row) -> scores [N]."""
        return (pooled * self.weight).sum(-1) + self.bias

    def similarity(self, query: torch.Tensor, option: torch.Tensor) -> torch.Tensor:
        """The similarity part: pooled question and option [N, d] (one row per option; weights per row) -> [N]."""
        def project(x):
            return x + torch.einsum("nr,ndr->nd", torch.einsum("nd,ndr->nr", x, self.proj_in), self.proj_out)

        cos = torch.nn.functional.cosine_similarity(project(query), project(option), dim=-1)
        return cos * self.scale.exp()


def _rows(t: torch.Tensor, counts: torch.Tensor, n: int) -> torch.Tensor:
    if t.shape[0] == 1:
        return t.expand(n, *t.shape[1:])
    return t.repeat_interleave(counts.to(t.device), dim=0, output_size=n)
