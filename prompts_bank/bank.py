"""Frozen task entries (what the store saves) and the bank a router mixes them from."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from baas.prompts_bank.errors import BaasError
from baas.prompts_bank.pair import HEAD_FIELDS, PromptPair, ScoringHead


@dataclass
class BankEntry:
    """One trained task, materialised: plain tensors, no training machinery."""

    task: str
    prefix: torch.Tensor  # [D, Lp, d] (D = 1: input level only)
    suffix: torch.Tensor  # [D, Ls, d]
    head_weight: torch.Tensor | None = None  # [d] the joint head (joint, both scoring)
    head_bias: torch.Tensor | None = None  # [] (scalar)
    key: torch.Tensor | None = None  # [d] mean query embedding of the task's training questions, for routing
    meta: dict = field(default_factory=dict)
    version: int = 0
    gate: torch.Tensor | None = None  # [] the pair's attention gate (see Backbone.forward); None: ungated
    head_scale: torch.Tensor | None = None  # [] the similarity head (dual, both scoring): see ScoringHead
    head_proj_in: torch.Tensor | None = None  # [d, r]
    head_proj_out: torch.Tensor | None = None  # [d, r]

    @property
    def scoring(self) -> str:
        """joint, dual or both (see ScoringHead); entries made before scoring modes are joint."""
        return self.meta.get("scoring", "joint")

    def head_tensors(self) -> dict[str, torch.Tensor]:
        """The head's tensors that this entry has, by ScoringHead field (scalars as [])."""
        return {f: getattr(self, f"head_{f}") for f in HEAD_FIELDS if getattr(self, f"head_{f}") is not None}

    def tensors(self) -> dict[str, torch.Tensor]:
        gate = {} if self.gate is None else {"gate": self.gate.reshape(1)}
        head = {f"head_{f}": t.reshape(1) if t.dim() == 0 else t for f, t in self.head_tensors().items()}
        return {"prefix": self.prefix, "suffix": self.suffix, **head, "key": self.key, **gate}

    @classmethod
    def from_tensors(cls, task: str, tensors: dict[str, torch.Tensor], meta: dict, version: int) -> "BankEntry":
        # Entries written before deep prompts hold [L, d]: the same pair at depth 1.
        prefix, suffix = (tensors[k] if tensors[k].dim() == 3 else tensors[k].unsqueeze(0) for k in ("prefix", "suffix"))
        gate = tensors["gate"].reshape(()) if "gate" in tensors else None
        head = {f"head_{f}": tensors[f"head_{f}"] for f in HEAD_FIELDS if f"head_{f}" in tensors}
        for f in ("head_bias", "head_scale"):
            if f in head:
                head[f] = head[f].reshape(())
        return cls(task, prefix, suffix, key=tensors["key"], meta=meta, version=version, gate=gate, **head)

    def to(self, device: torch.device | str) -> "BankEntry":
        """This entry with its pair, gate and head on `device` (in place; the routing key stays where it is,
        beside the router's statistics). Entries are saved device-free and moved where they are used."""
        for name in ("prefix", "suffix", "gate", *(f"head_{f}" for f in HEAD_FIELDS)):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t.to(device))
        return self

    def prompt(self) -> tuple[PromptPair, ScoringHead]:
        """This entry broadcast to every question (single-task inference)."""
        gate = None if self.gate is None else self.gate.reshape(1)
        head = {f: t.unsqueeze(0) for f, t in self.head_tensors().items()}
        return PromptPair(self.prefix.unsqueeze(0), self.suffix.unsqueeze(0), gate), ScoringHead(**{f: head.get(f) for f in HEAD_FIELDS})


# What every entry of one bank must share for their tensors to be mixed.
_COMPATIBLE = ("backbone", "hidden_size", "depth", "prefix_len", "suffix_len", "pooling", "scoring")
_DEFAULTS = {"depth": 1, "scoring": "joint"}  # what entries made before a field existed have


@dataclass
class PromptBank:
    """Entries stacked along a leading task axis E, so that a router mixes them with one product.

    prefix [E, D, Lp, d], suffix [E, D, Ls, d], gate [E] (or None when no entry is gated), and the head's
    tensors stacked the same way (`head` [E, ...] by ScoringHead field). Entries made for other backbones,
    hidden sizes, depths, prompt lengths, poolings or scoring modes cannot be mixed and are refused, and
    neither can gated and ungated entries.
    """

    entries: list[BankEntry]

    def __post_init__(self):
        if not self.entries:
            raise BaasError("the prompt bank is empty: train a task first (`baas train-task NAME`)")
        first = self.entries[0]
        for e in self.entries[1:]:
            for k in _COMPATIBLE:
                a, b = first.meta.get(k, _DEFAULTS.get(k)), e.meta.get(k, _DEFAULTS.get(k))
                if a != b:
                    raise BaasError(f"bank entries '{first.task}@v{first.version}' and '{e.task}@v{e.version}' cannot be "
                                    f"fused: {k} {a} != {b} (retrain one of them so both share backbone, hidden size, "
                                    "depth, prompt lengths, pooling and --scoring)")
            if (first.gate is None) != (e.gate is None):
                gated, ungated = (first, e) if e.gate is None else (e, first)
                raise BaasError(f"bank entries '{gated.task}' (gated) and '{ungated.task}' (no gate) cannot be fused: "
                                "retrain one of them with the other's --gate setting")
        self.prefix = torch.stack([e.prefix for e in self.entries])
        self.suffix = torch.stack([e.suffix for e in self.entries])
        self.head = {f: torch.stack([e.head_tensors()[f] for e in self.entries]) for f in first.head_tensors()}
        self.gate = None if first.gate is None else torch.stack([e.gate.reshape(()) for e in self.entries])
        for i, e in enumerate(self.entries):  # entries become views of the stacks: the bank is held once
            e.prefix, e.suffix = self.prefix[i], self.suffix[i]
            for f, t in self.head.items():
                setattr(e, f"head_{f}", t[i])
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
        k = int((weights > 0).sum(-1).max())  # (read where the router made the weights: on the CPU, no GPU sync)
        w = weights.to(self.prefix.device, self.prefix.dtype)
        if 2 * k < len(self):
            top = w.topk(k, dim=-1)
            mix = lambda t: torch.einsum("bk,bk...->b...", top.values, t[top.indices])  # noqa: E731
        else:
            mix = lambda t: torch.einsum("be,e...->b...", w, t)  # noqa: E731 - one product per tensor
        gate = None if self.gate is None else mix(self.gate)
        head = {f: mix(t) for f, t in self.head.items()}
        return PromptPair(mix(self.prefix), mix(self.suffix), gate), ScoringHead(**{f: head.get(f) for f in HEAD_FIELDS})

    def single(self, index: int) -> tuple[PromptPair, ScoringHead]:
        """Entry `index` alone, broadcast to every question."""
        return self.entries[index].prompt()
