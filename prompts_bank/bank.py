"""Frozen task entries: what the store saves and what inference (and, later, a router) reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from baas.prompts_bank.pair import PromptPair, ScoringHead


@dataclass
class BankEntry:
    """One trained task, materialised: plain tensors, no training machinery."""

    task: str
    prefix: torch.Tensor  # [D, Lp, d] (D = 1: input level only)
    suffix: torch.Tensor  # [D, Ls, d]
    head_weight: torch.Tensor  # [d]
    head_bias: torch.Tensor  # [] (scalar)
    key: torch.Tensor  # [d] mean query embedding of the task's training questions, for routing
    meta: dict = field(default_factory=dict)
    version: int = 0

    def tensors(self) -> dict[str, torch.Tensor]:
        return {
            "prefix": self.prefix, "suffix": self.suffix, "head_weight": self.head_weight,
            "head_bias": self.head_bias.reshape(1), "key": self.key,
        }

    @classmethod
    def from_tensors(cls, task: str, tensors: dict[str, torch.Tensor], meta: dict, version: int) -> "BankEntry":
        # Entries written before deep prompts hold [L, d]: the same pair at depth 1.
        prefix, suffix = (tensors[k] if tensors[k].dim() == 3 else tensors[k].unsqueeze(0) for k in ("prefix", "suffix"))
        return cls(task, prefix, suffix, tensors["head_weight"],
                   tensors["head_bias"].reshape(()), tensors["key"], meta, version)

    def prompt(self) -> tuple[PromptPair, ScoringHead]:
        """This entry broadcast to every question (single-task inference)."""
        return (PromptPair(self.prefix.unsqueeze(0), self.suffix.unsqueeze(0)),
                ScoringHead(self.head_weight.unsqueeze(0), self.head_bias.reshape(1)))
