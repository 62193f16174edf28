"""One task's trainable prompt pair and head (through a reparameterisation), frozen into a bank entry after training."""

from __future__ import annotations

import torch
from torch import nn

from baas.prompts_bank.bank import BankEntry
from baas.prompts_bank.pair import HEAD_FIELDS, PromptPair, ScoringHead
from baas.prompts_bank.reparam import make_reparam


SCORE_RANK = 16  # rank of the similarity's learned projection P = I + U V^T
SCALE_START = 20.0  # the cosine's starting multiplier (a contrastive temperature of 0.05)


class TrainableHead(nn.Module):
    """The trainable parts of a `ScoringHead` for one scoring mode (`joint`, `dual` or `both`, see
    `ScoringHead`). `dual` starts as the bare cosine of question and option (P = I); `both` adds a joint
    linear part that starts at zero, so it starts where `dual` does."""

    def __init__(self, hidden: int, mode: str = "joint"):
        super().__init__()
        self.mode = mode
        self.linear = nn.Linear(hidden, 1) if mode in ("joint", "both") else None
        if self.linear is not None:
            nn.init.normal_(self.linear.weight, std=0.02 if mode == "joint" else 0.0)
            nn.init.zeros_(self.linear.bias)
        if mode in ("dual", "both"):
            self.scale = nn.Parameter(torch.tensor(SCALE_START).log())
            self.proj_in = nn.Parameter(torch.randn(hidden, SCORE_RANK) / hidden ** 0.5)
            self.proj_out = nn.Parameter(torch.zeros(hidden, SCORE_RANK))
        else:
            self.scale = self.proj_in = self.proj_out = None

    def forward(self) -> ScoringHead:
        joint = (None, None) if self.linear is None else (self.linear.weight, self.linear.bias)
        if self.scale is None:
            return ScoringHead(*joint)
        return ScoringHead(*joint, self.scale.reshape(1), self.proj_in.unsqueeze(0), self.proj_out.unsqueeze(0))

    def tensors(self) -> dict[str, torch.Tensor]:
        """The head as a bank entry keeps it: `head_<field>` tensors without the batch axis."""
        head = self.forward()
        return {f"head_{f}": getattr(head, f)[0].detach().clone() for f in HEAD_FIELDS if getattr(head, f) is not None}


class TrainablePromptPair(nn.Module):
    """One task's trainable prefix, suffix and scoring head.

    The input-level vectors (layer 0) are seen through a reparameterisation (`none`, `mlp` or the
    BAP-Encoder, see `reparam.py`) while training; a deep pair's vectors for layers 1..D-1 are plain
    parameters. A gated pair also learns its attention gate (see `Backbone.forward`)."""

    def __init__(self, prefix: torch.Tensor, suffix: torch.Tensor, hidden: int, reparam: str = "none",
                 gate: float | None = None, scoring: str = "joint"):
        """prefix [D, Lp, d] and suffix [D, Ls, d]: the starting vectors; gate: the gate's start (None: no gate);
        scoring: the head's mode (`TrainableHead`)."""
        super().__init__()
        self.gate = None if gate is None else nn.Parameter(torch.tensor(float(gate)))
        self.prefix = nn.Parameter(prefix[0].clone())
        self.suffix = nn.Parameter(suffix[0].clone())
        self.deep_prefix = nn.Parameter(prefix[1:].clone())
        self.deep_suffix = nn.Parameter(suffix[1:].clone())
        self.reparam = make_reparam(reparam, hidden)
        self.head = TrainableHead(hidden, scoring)

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
        return PromptPair(prefix.unsqueeze(0), suffix.unsqueeze(0), gate), self.head()

    @torch.no_grad()
    def to_entry(self, task: str, key: torch.Tensor, meta: dict) -> BankEntry:
        """The trained state as plain frozen tensors, ready for the bank (the reparameterisation materialised)."""
        prefix, suffix = self.pair()
        gate = None if self.gate is None else self.gate.detach().clone()
        return BankEntry(task, prefix.detach().clone(), suffix.detach().clone(), key=key, meta=dict(meta, scoring=self.head.mode),
                         gate=gate, **self.head.tensors())

    def prompt_parameters(self) -> list[nn.Parameter]:
        return [p for p in (self.prefix, self.suffix, self.deep_prefix, self.deep_suffix) if p.numel()]

    def reparam_parameters(self) -> list[nn.Parameter]:
        return list(self.reparam.parameters())
