"""The one place prompts enter a backbone, and how a vector is read back out.

`inject` places a per-example prompt pair around each input at the input-embedding layer,
`[prefix; input; suffix]`, with the suffix right after the last real token, and marks every output
position with a segment id; training, single-task inference and every router strategy go through it.
`pool` reads the pooled vector from the output states by those segments.
"""

from __future__ import annotations

import torch

from baas.training.config import POOLINGS
from baas.prompts_bank.errors import BaasError

# Segment ids `inject` assigns to every output position.
PAD, PREFIX, INPUT, SUFFIX = 0, 1, 2, 3


def inject(
    embeds: torch.Tensor, mask: torch.Tensor, prefix: torch.Tensor, suffix: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place `prefix` before the first real token and `suffix` right after the last one.

    embeds [N, T, d] with mask [N, T] (real tokens contiguous; left or right padding), prefix [N, Lp, d],
    suffix [N, Ls, d]. Returns embeds [N, Lp+T+Ls, d] and segment ids [N, Lp+T+Ls] (PAD, PREFIX, INPUT,
    SUFFIX): the attention mask is `segments != PAD`. Padding stays where it was: left pads first, right
    pads last. One scatter, no Python loop over examples.
    """
    n, t, d = embeds.shape
    lp, ls = prefix.shape[1], suffix.shape[1]
    mask = mask.bool()
    steps = torch.arange(t, device=embeds.device).expand(n, t)
    first = mask.long().argmax(dim=1, keepdim=True)  # first real token
    end = first + mask.sum(dim=1, keepdim=True)  # one past the last real token
    # Destination of every source vector in the output sequence.
    dest_input = steps + torch.where(steps < first, 0, torch.where(steps < end, lp, lp + ls))
    dest_prefix = first + torch.arange(lp, device=embeds.device)
    dest_suffix = end + lp + torch.arange(ls, device=embeds.device)
    dest = torch.cat([dest_prefix, dest_input, dest_suffix], dim=1)
    source = torch.cat([prefix.to(embeds.dtype), embeds, suffix.to(embeds.dtype)], dim=1)
    out = torch.zeros_like(source).scatter(1, dest.unsqueeze(-1).expand(-1, -1, d), source)
    kinds = torch.cat([dest_prefix.new_full((n, lp), PREFIX), mask.long() * INPUT, dest_suffix.new_full((n, ls), SUFFIX)], 1)
    segments = torch.zeros_like(dest).scatter(1, dest, kinds)
    return out, segments


def pool(hidden: torch.Tensor, segments: torch.Tensor, pooling: str) -> torch.Tensor:
    """mean_input: mean over the input's own tokens; mean_all: over every real position (prompts too);
    suffix: over the suffix vectors' outputs (a learned read-out of the input; the input's tokens when
    there is no suffix); last: the state of the last real position (decoders)."""
    mask = segments != PAD
    if pooling == "last":
        last = mask.shape[1] - 1 - mask.flip(1).long().argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if pooling == "mean_input" or (pooling == "suffix" and not (segments == SUFFIX).any()):
        mask = segments == INPUT
    elif pooling == "suffix":
        mask = segments == SUFFIX
    elif pooling != "mean_all":
        raise BaasError(f"unknown pooling '{pooling}'; expected one of {', '.join(POOLINGS)}")
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
