"""Frozen task entries and the in-memory bank a router reads from."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from baas.prompts_bank.pair import PromptPair, ScoringHead


@dataclass
class BankEntry:
    """One trained task, materialised: plain tensors, no training machinery."""

    task: str
    prefix: torch.Tensor  # [Lp, d]
    suffix: torch.Tensor  # [Ls, d]
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
        return cls(task, tensors["prefix"], tensors["suffix"], tensors["head_weight"],
                   tensors["head_bias"].reshape(()), tensors["key"], meta, version)

    def prompt(self) -> tuple[PromptPair, ScoringHead]:
        """This entry broadcast to every question (single-task inference)."""
        return (PromptPair(self.prefix.unsqueeze(0), self.suffix.unsqueeze(0)),
                ScoringHead(self.head_weight.unsqueeze(0), self.head_bias.reshape(1)))


class PromptBank:
    """The frozen entries of every task learned so far, in learning order."""

    def __init__(self, entries: list[BankEntry] | None = None):
        self.entries: list[BankEntry] = list(entries or [])

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, task: str) -> BankEntry:
        for e in self.entries:
            if e.task == task:
                return e
        raise KeyError(task)

    @property
    def tasks(self) -> list[str]:
        return [e.task for e in self.entries]

    def keys(self) -> torch.Tensor:
        """[num_tasks, d] task keys, for routing by query similarity."""
        return torch.stack([e.key for e in self.entries])
