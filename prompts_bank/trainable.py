"""One task's trainable prompt pair and head (through a reparameterisation), frozen into a bank entry after training."""

from __future__ import annotations

import torch
from torch import nn

from baas.prompts_bank.bank import BankEntry
from baas.prompts_bank.pair import PromptPair, ScoringHead
from baas.prompts_bank.reparam import make_reparam


class TrainablePromptPair(nn.Module):
    """One task's trainable prefix, suffix and scoring head.

    The input-level vectors (layer 0) are seen through a reparameterisation (`none`, `mlp` or the
    BAP-Encoder, see `reparam.py`) while training; a deep pair's vectors for layers 1..D-1 are plain
    parameters. A gated pair also learns its attention gate (see `Backbone.forward`)."""

    def __init__(self, prefix: torch.Tensor, suffix: torch.Tensor, hidden: int, reparam: str = "none",
                 gate: float | None = None):
        """prefix [D, Lp, d] and suffix [D, Ls, d]: the starting vectors; gate: the gate's start (None: no gate)."""
        super().__init__()
        self.gate = None if gate is None else nn.Parameter(torch.tensor(float(gate)))
        self.prefix = nn.Parameter(prefix[0].clone())
        self.suffix = nn.Parameter(suffix[0].clone())
        self.deep_prefix = nn.Parameter(prefix[1:].clone())
        self.deep_suffix = nn.Parameter(suffix[1:].clone())
        self.reparam = make_reparam(reparam, hidden)
        self.head = nn.Linear(hidden, 1)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    @property
    def depth(self) -> int:
        return 1 + self.deep_prefix.shape[0]

    def pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The prefix [D, Lp, d] and suffix [D, Ls, d] the backbone sees."""
        prefix, suffix = self.reparam(self.prefix, self.suffix)
        return torch.cat([prefix.unsqueeze(0), self.deep_prefix]), torch.cat([suffix.unsqueeze(0), self.deep_suffix])

    def forward(self) -> tuple[PromptPair, ScoringHead]:
        prefix, suffix = self.pair()
        gate = None if self.gate is None else self.gate.reshape(1)
        return PromptPair(prefix.unsqueeze(0), suffix.unsqueeze(0), gate), ScoringHead(self.head.weight, self.head.bias)

    @torch.no_grad()
    def to_entry(self, task: str, key: torch.Tensor, meta: dict) -> BankEntry:
        """The trained state as plain frozen tensors, ready for the bank (the reparameterisation materialised)."""
        prefix, suffix = self.pair()
        gate = None if self.gate is None else self.gate.detach().clone()
        return BankEntry(task, prefix.detach().clone(), suffix.detach().clone(),
                         self.head.weight.detach()[0].clone(), self.head.bias.detach()[0].clone(), key, meta, gate=gate)

    def prompt_parameters(self) -> list[nn.Parameter]:
        return [p for p in (self.prefix, self.suffix, self.deep_prefix, self.deep_suffix) if p.numel()]

    def reparam_parameters(self) -> list[nn.Parameter]:
        return list(self.reparam.parameters())
