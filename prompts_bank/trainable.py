"""One task's trainable prompt pair and head, their initialisation, and freezing them into a bank entry."""

from __future__ import annotations

import torch
from torch import nn

from baas.prompts_bank.bank import BankEntry
from baas.prompts_bank.pair import PromptPair, ScoringHead

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
    raise ValueError(f"unknown prompt init '{kind}'")


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

    def to_entry(self, task: str, key: torch.Tensor, meta: dict) -> BankEntry:
        """The trained state as plain frozen tensors, ready for the bank."""
        return BankEntry(task, self.prefix.detach().clone(), self.suffix.detach().clone(),
                         self.head.weight.detach()[0].clone(), self.head.bias.detach()[0].clone(), key, meta)

    def prompt_parameters(self) -> list[nn.Parameter]:
        return [p for p in (self.prefix, self.suffix) if p.numel()]
