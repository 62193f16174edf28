"""What the router keeps of a task: statistics of its query vectors, never its text.

A task's training questions, embedded by the frozen backbone, are summarised as a Gaussian: the mean
[d], the top-r principal directions of the covariance scaled by their standard deviations [r, d], and
the variance left on each axis once those are removed [d]. That is (r + 2) * d + 1 numbers (13,057 for
MiniLM at r = 32), beside the entry's own 23,425. Every routing rule is fitted from these summaries
alone, so a task added later never needs an earlier task's questions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

RANK = 32


@dataclass
class QuerySummary:
    mean: torch.Tensor  # [d]
    factor: torch.Tensor  # [r, d]: covariance ~= factor.T @ factor + diag(residual)
    residual: torch.Tensor  # [d]
    count: int

    @classmethod
    def from_queries(cls, queries: torch.Tensor, rank: int = RANK) -> "QuerySummary":
        q = queries.double()
        n = q.shape[0]
        mean = q.mean(0)
        centred = q - mean
        denom = max(n - 1, 1)
        _, s, vt = torch.linalg.svd(centred, full_matrices=False)
        r = min(rank, vt.shape[0])
        factor = (s[:r, None] / denom**0.5) * vt[:r]
        residual = (centred.pow(2).sum(0) / denom - factor.pow(2).sum(0)).clamp(min=0)
        return cls(mean.float(), factor.float(), residual.float(), n)

    @property
    def size(self) -> int:
        """Numbers stored."""
        return self.mean.numel() + self.factor.numel() + self.residual.numel() + 1

    def covariance(self) -> torch.Tensor:
        return self.factor.T @ self.factor + torch.diag(self.residual)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n pseudo-queries drawn from the Gaussian (for rules that learn from examples)."""
        r, d = self.factor.shape
        z = torch.randn(n, r, generator=generator)
        eps = torch.randn(n, d, generator=generator)
        return self.mean + z @ self.factor + eps * self.residual.sqrt()

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "factor": self.factor, "residual": self.residual,
                "count": torch.tensor([self.count], dtype=torch.int64)}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor]) -> "QuerySummary":
        return cls(t["mean"], t["factor"], t["residual"], int(t["count"].item()))
