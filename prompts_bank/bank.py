"""Frozen task entries (what the store saves) and the bank a router mixes them from."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from baas.prompts_bank.errors import BaasError
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
    gate: torch.Tensor | None = None  # [] the pair's attention gate (see Backbone.forward); None: ungated

    def tensors(self) -> dict[str, torch.Tensor]:
        gate = {} if self.gate is None else {"gate": self.gate.reshape(1)}
        return {
            "prefix": self.prefix, "suffix": self.suffix, "head_weight": self.head_weight,
            "head_bias": self.head_bias.reshape(1), "key": self.key, **gate,
        }

    @classmethod
    def from_tensors(cls, task: str, tensors: dict[str, torch.Tensor], meta: dict, version: int) -> "BankEntry":
        # Entries written before deep prompts hold [L, d]: the same pair at depth 1.
        prefix, suffix = (tensors[k] if tensors[k].dim() == 3 else tensors[k].unsqueeze(0) for k in ("prefix", "suffix"))
        gate = tensors["gate"].reshape(()) if "gate" in tensors else None
        return cls(task, prefix, suffix, tensors["head_weight"],
                   tensors["head_bias"].reshape(()), tensors["key"], meta, version, gate)

    def prompt(self) -> tuple[PromptPair, ScoringHead]:
        """This entry broadcast to every question (single-task inference)."""
        gate = None if self.gate is None else self.gate.reshape(1)
        return (PromptPair(self.prefix.unsqueeze(0), self.suffix.unsqueeze(0), gate),
                ScoringHead(self.head_weight.unsqueeze(0), self.head_bias.reshape(1)))


# What every entry of one bank must share for their tensors to be mixed.
_COMPATIBLE = ("backbone", "hidden_size", "depth", "prefix_len", "suffix_len", "pooling")


@dataclass
class PromptBank:
    """Entries stacked along a leading task axis E, so that a router mixes them with one product.

    prefix [E, D, Lp, d], suffix [E, D, Ls, d], head_weight [E, d], head_bias [E], gate [E] (or None when
    no entry is gated). Entries made for other backbones, hidden sizes, depths, prompt lengths or
    poolings cannot be mixed and are refused, and neither can gated and ungated entries.
    """

    entries: list[BankEntry]

    def __post_init__(self):
        if not self.entries:
            raise BaasError("the prompt bank is empty: train a task first (`baas train-task NAME`)")
        first = self.entries[0]
        for e in self.entries[1:]:
            for k in _COMPATIBLE:
                a, b = first.meta.get(k, 1 if k == "depth" else None), e.meta.get(k, 1 if k == "depth" else None)
                if a != b:
                    raise BaasError(f"bank entries '{first.task}' and '{e.task}' cannot be fused: {k} {a} != {b} "
                                    "(retrain one of them so both share backbone, hidden size, depth and prompt lengths)")
            if (first.gate is None) != (e.gate is None):
                gated, ungated = (first, e) if e.gate is None else (e, first)
                raise BaasError(f"bank entries '{gated.task}' (gated) and '{ungated.task}' (no gate) cannot be fused: "
                                "retrain one of them with the other's --gate setting")
        self.prefix = torch.stack([e.prefix for e in self.entries])
        self.suffix = torch.stack([e.suffix for e in self.entries])
        self.head_weight = torch.stack([e.head_weight for e in self.entries])
        self.head_bias = torch.stack([e.head_bias.reshape(()) for e in self.entries])
        self.gate = None if first.gate is None else torch.stack([e.gate.reshape(()) for e in self.entries])
        for i, e in enumerate(self.entries):  # entries become views of the stacks: the bank is held once
            e.prefix, e.suffix, e.head_weight, e.head_bias = self.prefix[i], self.suffix[i], self.head_weight[i], self.head_bias[i]
            e.gate = None if self.gate is None else self.gate[i]

    @property
    def tasks(self) -> list[str]:
        return [e.task for e in self.entries]

    @property
    def meta(self) -> dict:
        return self.entries[0].meta

    def __len__(self) -> int:
        return len(self.entries)

    def fuse(self, weights: torch.Tensor) -> tuple[PromptPair, ScoringHead]:
        """Prompt-space fusion: weights [B, E] (rows sum to one) -> each question's weighted pair and head.

        Sparse weights (hard, top-k) gather only the entries used, so the cost does not grow with the bank."""
        w = weights.to(self.prefix.dtype)
        k = int((w > 0).sum(-1).max())
        if 2 * k < len(self):
            top = w.topk(k, dim=-1)
            mix = lambda t: torch.einsum("bk,bk...->b...", top.values, t[top.indices])  # noqa: E731
        else:
            mix = lambda t: torch.einsum("be,e...->b...", w, t)  # noqa: E731 - one product per tensor
        gate = None if self.gate is None else mix(self.gate)
        return PromptPair(mix(self.prefix), mix(self.suffix), gate), ScoringHead(mix(self.head_weight), mix(self.head_bias))

    def single(self, index: int) -> tuple[PromptPair, ScoringHead]:
        """Entry `index` alone, broadcast to every question."""
        return self.entries[index].prompt()
