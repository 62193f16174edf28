"""Fusion strategies: from each question's routing distribution to its weights over the bank's entries.

A strategy maps log p(task | query) [B, E] to weights [B, E] whose rows sum to one; the weights then
mix the entries in prompt space (one fused pair and head, one forward pass) or in output space (each
weighted entry's own answer distribution, one pass per entry used). Each is a small class plus a
registry line; `topk<k>` is parsed from its name.

    oracle   the true task's entry (a reference that needs the task id, not a deployable strategy)
    hard     the single most likely entry
    topk<k>  the k most likely entries, their probabilities renormalised
    soft     every entry, weighted by its probability (attention over the bank)
    memory   entries as memory slots behind a gate: the router's confidence moves the weights from a
             soft mix of every entry (unsure) to the single most likely one (sure)
    cluster  entries grouped by how alike their tasks' queries are; the most likely group, then its
             entries weighted within it
"""

from __future__ import annotations

import re

import torch

from baas.prompts_bank.errors import BaasError


class Strategy:
    name = ""
    needs_task = False

    def weights(self, log_probs: torch.Tensor, true_task: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


def _one_hot(index: torch.Tensor, entries: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(index, entries).float()


class Oracle(Strategy):
    name = "oracle"
    needs_task = True

    def weights(self, log_probs, true_task=None):
        if true_task is None:
            raise BaasError("the oracle strategy needs each question's true task")
        return _one_hot(true_task, log_probs.shape[1])


class Hard(Strategy):
    name = "hard"

    def weights(self, log_probs, true_task=None):
        return _one_hot(log_probs.argmax(-1), log_probs.shape[1])


class TopK(Strategy):
    def __init__(self, k: int):
        self.k, self.name = k, f"topk{k}"

    def weights(self, log_probs, true_task=None):
        k = min(self.k, log_probs.shape[1])
        top = log_probs.topk(k, dim=-1)
        return torch.zeros_like(log_probs).scatter(1, top.indices, top.values.softmax(-1))


class Soft(Strategy):
    name = "soft"

    def weights(self, log_probs, true_task=None):
        return log_probs.softmax(-1)


class Memory(Strategy):
    """Entries as memory slots read through a gate conditioned on the question: the gate is the router's
    confidence (its largest probability); a confident question reads its one slot, an unsure one a
    soft mix of all: w = g * onehot(argmax) + (1 - g) * p."""

    name = "memory"

    def weights(self, log_probs, true_task=None):
        probs = log_probs.softmax(-1)
        gate, best = probs.max(-1, keepdim=True)
        return gate * _one_hot(best.squeeze(-1), probs.shape[1]) + (1 - gate) * probs


class Cluster(Strategy):
    """Groups come from the task means (agglomerative, cosine, average linkage, cut at `threshold`)."""

    name = "cluster"
    threshold = 0.1  # cosine distance under which two tasks' mean queries fall in one group

    def __init__(self, means: torch.Tensor | None = None):
        self.groups = None if means is None else self.group(means)

    @classmethod
    def group(cls, means: torch.Tensor) -> torch.Tensor:
        """[E] group id per entry."""
        from sklearn.cluster import AgglomerativeClustering

        if means.shape[0] < 2:
            return torch.zeros(means.shape[0], dtype=torch.long)
        labels = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                         distance_threshold=cls.threshold).fit_predict(means.double().numpy())
        return torch.as_tensor(labels, dtype=torch.long)

    def weights(self, log_probs, true_task=None):
        probs = log_probs.softmax(-1)
        member = _one_hot(self.groups, int(self.groups.max()) + 1)  # [E, G]
        best = (probs @ member).argmax(-1)  # [B]
        inside = probs * member[:, best].T
        return inside / inside.sum(-1, keepdim=True)


STRATEGIES = ("oracle", "hard", "topk2", "topk3", "soft", "memory", "cluster")  # what `--strategy all` runs
# The default, chosen on validation (benchmarks/results/fuse.md): on the ten-dataset bank of the default scoring,
# cluster was the best strategy at temperature 4 and tied best at 1, 1.0 and 1.4 points above hard (500 questions).
DEFAULT_STRATEGY = "cluster"
DEFAULT_STRATEGIES = "cluster,hard,topk2"  # what eval-forgetting reports: the default first, then hard and topk2


def make_strategy(name: str, means: torch.Tensor | None = None) -> Strategy:
    """A strategy by name; `means` ([E, d], the entries' mean queries) is what `cluster` groups."""
    simple = {s.name: s for s in (Oracle, Hard, Soft, Memory)}
    if name in simple:
        return simple[name]()
    if m := re.fullmatch(r"topk([1-9][0-9]*)", name):
        return TopK(int(m.group(1)))
    if name == "cluster":
        if means is None:
            raise BaasError("the cluster strategy needs the entries' mean queries")
        return Cluster(means)
    from baas.router.rules import RULES

    hint = f" ('{name}' is a routing rule: pass --rule {name})" if name in RULES else ""
    raise BaasError(f"unknown strategy '{name}'{hint}; expected one of oracle, hard, topk<k> (e.g. topk3), soft, memory, "
                    "cluster, all")
