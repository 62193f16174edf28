"""Where a task's prompt pair starts: topic labels, a reasoning chain, the task's frequent tokens, or noise.

    prefix_init  topic   -> the dataset's topic labels (fields, else spaCy NER / noun chunks), averaged
                            token embeddings, one vector per label ("semi-hard" vectors)
                 vocab   -> embeddings of tokens drawn from the task's own frequent tokens
                 random  -> Gaussian noise at the embedding table's scale
    suffix_init  autocot -> the global chain a Chain Aggregator merges from K Auto-CoT local chains,
                            its tokens cut into Ls segments, each averaged
                 vocab / random as above

`initialise` returns the vectors and a JSON-able record of how they were made (labels, clusters,
chains, sources), which the store keeps beside the bank entry.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import torch

from baas.prompts_bank.errors import BaasError
from baas.training.batching import Encoded
from baas.training.config import TrainConfig
from baas.training.data import MCQExample


@dataclass
class PromptInit:
    prefix: torch.Tensor  # [Lp, d]
    suffix: torch.Tensor  # [Ls, d]
    info: dict = field(default_factory=dict)


def frequent_token_ids(encoded: list[Encoded], special: set[int], top: int = 2000) -> torch.Tensor:
    counts = Counter(t for e in encoded for o in e.options for t in o if t not in special)
    return torch.tensor([t for t, _ in counts.most_common(top)] or [0])


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


def initialise(
    config: TrainConfig,
    tokenizer,
    embeddings: torch.Tensor,
    encoded: list[Encoded],
    examples: list[MCQExample] | None = None,
    question_embeddings: Callable[[], torch.Tensor] | None = None,
    llm=None,
) -> PromptInit:
    """The starting prefix and suffix for `config`'s init kinds.

    `examples` are needed for `topic` and `autocot`, `question_embeddings()` (the training questions'
    [n, d] embeddings, computed on demand) for `autocot`; `llm` is an `LLMClient` or None (offline chains).
    """
    embeddings = embeddings.detach()
    generator = torch.Generator().manual_seed(config.seed)
    candidates = frequent_token_ids(encoded, set(tokenizer.all_special_ids))
    info: dict = {"prefix_init": config.prefix_init, "suffix_init": config.suffix_init}
    if config.prefix_init == "topic" or config.suffix_init == "autocot":
        if not examples:
            raise BaasError(f"--prefix-init {config.prefix_init} / --suffix-init {config.suffix_init} need the training examples")

    if config.prefix_init == "topic":
        from baas.training.init.topics import label_vectors, topic_labels

        topics = topic_labels(examples)
        info["topics"] = {"labels": topics.labels, "source": topics.source, "warnings": topics.warnings}
        prefix = label_vectors(topics.labels, config.prefix_len, tokenizer, embeddings)
    else:
        prefix = init_vectors(config.prefix_init, config.prefix_len, embeddings, candidates, generator)

    if config.suffix_init == "autocot":
        from baas.training.init.autocot import build_chain
        from baas.training.init.topics import chain_vectors

        chain = build_chain(examples, question_embeddings(), k=config.clusters, llm=llm, seed=config.seed)
        info["chain"] = chain.to_json()
        suffix = chain_vectors(chain.global_chain, config.suffix_len, tokenizer, embeddings)
    else:
        suffix = init_vectors(config.suffix_init, config.suffix_len, embeddings, candidates, generator)
    return PromptInit(prefix.float().contiguous(), suffix.float().contiguous(), info)
