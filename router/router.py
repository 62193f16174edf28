"""The Attention Router Module: a routing rule and a fusion strategy over one bank.

`Router.route(queries)` gives each question its weights over the bank's entries (and the rule's
distribution, for inspection); `PromptBank.fuse` turns weights into the question's own pair and
head. A router is fitted from the entries' query summaries alone and saved as plain tensors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import torch

from baas.prompts_bank.errors import BaasError
from baas.router.rules import Rule, make_rule
from baas.router.strategies import Strategy, make_strategy
from baas.router.summary import QuerySummary

FORMAT = "baas-router/1"


@dataclass
class Router:
    tasks: list[str]  # entry names, in bank order
    versions: list[int]
    rule: Rule
    strategy: Strategy
    query: str  # what the query vectors are made of, `kind:layers` (see training.fusion.Query)
    means: torch.Tensor  # [E, d] the entries' mean queries (what `cluster` groups)
    temperature: float = 1.0  # log p(task | query) / temperature, renormalised: above 1 softens the rule's distribution
    # What it was fitted on, to tell when the bank has moved on (training.fusion.router_problems):
    checksums: list[str] | None = None  # each entry's sha256, in bank order (None: a router saved before they were kept)
    selection: list[str] | None = None  # the entries asked for (`NAME` or `NAME@vN`); None: the whole bank
    space: str = "prompt"  # where `predict` mixes the entries: prompt (one fused pair) or output (their answers)

    @classmethod
    def fit(cls, tasks: list[str], versions: list[int], summaries: list[QuerySummary], rule: str, strategy: str,
            query: str, temperature: float = 1.0, checksums: list[str] | None = None) -> "Router":
        if not summaries:
            raise BaasError("the prompt bank is empty: train a task first (`baas train-task NAME`)")
        if not temperature > 0:
            raise BaasError(f"--temperature must be positive, got {temperature}")
        means = torch.stack([s.mean for s in summaries])
        return cls(tasks, versions, make_rule(rule).fit(summaries), make_strategy(strategy, means), query, means, temperature,
                   checksums)

    def with_strategy(self, strategy: str) -> "Router":
        """The same fitted rule under another strategy."""
        return replace(self, strategy=make_strategy(strategy, self.means))

    def log_probs(self, queries: torch.Tensor) -> torch.Tensor:
        """[B, d] -> log p(task | query) [B, E], tempered."""
        return (self.rule.log_probs(queries) / self.temperature).log_softmax(-1)

    def route(self, queries: torch.Tensor, true_task: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """queries [B, d] -> (weights [B, E], log p(task | query) [B, E])."""
        log_probs = self.log_probs(queries)
        return self.strategy.weights(log_probs, true_task), log_probs

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """Tensors and string metadata for a safetensors file."""
        tensors = {f"rule.{k}": v.contiguous() for k, v in self.rule.state().items()}
        tensors["means"] = self.means.contiguous()
        meta = {"format": FORMAT, "rule": self.rule.name, "strategy": self.strategy.name, "query": self.query,
                "temperature": repr(self.temperature),
                "tasks": json.dumps(self.tasks), "versions": json.dumps(self.versions), "space": self.space}
        if self.checksums is not None:
            meta["checksums"] = json.dumps(self.checksums)
        if self.selection is not None:
            meta["selection"] = json.dumps(self.selection)
        return tensors, meta

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> "Router":
        if meta.get("format") != FORMAT:
            raise BaasError(f"not a baas router file (format {meta.get('format')!r}, expected {FORMAT})")
        rule = make_rule(meta["rule"]).load({k[5:]: v for k, v in tensors.items() if k.startswith("rule.")})
        means = tensors["means"]
        optional = {k: json.loads(meta[k]) for k in ("checksums", "selection") if k in meta}
        return cls(json.loads(meta["tasks"]), json.loads(meta["versions"]), rule, make_strategy(meta["strategy"], means),
                   meta["query"], means, float(meta.get("temperature", 1.0)), space=meta.get("space", "prompt"), **optional)
