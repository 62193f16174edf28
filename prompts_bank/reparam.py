"""Reparameterisations of a prompt pair while it trains: the BAP-Encoder, a residual MLP, or none.

Each maps the raw trainable vectors (prefix [Lp, d], suffix [Ls, d]) to the pair the backbone sees.
Every variant starts as the identity (its last projection is zero-initialised), so the pair begins
exactly at its initialisation (topic labels, a reasoning chain, vocabulary) and the encoder only
learns a correction. After training the output is materialised into plain tensors for the bank;
the encoder itself is never needed at inference.
"""

from __future__ import annotations

import torch
from torch import nn


class NoReparam(nn.Module):
    def forward(self, prefix: torch.Tensor, suffix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return prefix, suffix


def _zero_linear(d_in: int, d_out: int) -> nn.Linear:
    layer = nn.Linear(d_in, d_out)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class MLPReparam(nn.Module):
    """x + MLP(x) per side (P-tuning v2 style), one MLP per side."""

    def __init__(self, d: int, hidden: int = 256):
        super().__init__()
        self.prefix_mlp = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), _zero_linear(hidden, d))
        self.suffix_mlp = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), _zero_linear(hidden, d))

    def forward(self, prefix: torch.Tensor, suffix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return prefix + self.prefix_mlp(prefix), suffix + self.suffix_mlp(suffix)


class BAPEncoder(nn.Module):
    """Bidirectional-alignment prompt encoder.

    A Bi-LSTM reads the prefix, another reads the suffix (each vector sees its neighbours on both
    sides); one multi-head cross-attention lets prefix positions attend to the suffix and suffix
    positions to the prefix, so the two halves move together; a residual and layer norm combine
    them, and a zero-initialised projection adds the result to the raw vectors:

        h_p = BiLSTM_p(p)                h_s = BiLSTM_s(s)
        y_p = LN(h_p + Attn(h_p, h_s))   y_s = LN(h_s + Attn(h_s, h_p))
        p'  = p + W_p y_p                s'  = s + W_s y_s        (W zero at the start)

    A side of length 0 stays empty, and the other side then skips the attention.
    """

    def __init__(self, d: int, hidden: int = 128, heads: int = 4):
        super().__init__()
        self.prefix_lstm = nn.LSTM(d, hidden, batch_first=True, bidirectional=True)
        self.suffix_lstm = nn.LSTM(d, hidden, batch_first=True, bidirectional=True)
        width = 2 * hidden
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm = nn.LayerNorm(width)
        self.prefix_out = _zero_linear(width, d)
        self.suffix_out = _zero_linear(width, d)

    def forward(self, prefix: torch.Tensor, suffix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h_p = self.prefix_lstm(prefix.unsqueeze(0))[0] if prefix.shape[0] else None
        h_s = self.suffix_lstm(suffix.unsqueeze(0))[0] if suffix.shape[0] else None
        out = []
        for raw, own, other, proj in ((prefix, h_p, h_s, self.prefix_out), (suffix, h_s, h_p, self.suffix_out)):
            if own is None:
                out.append(raw)
                continue
            aligned = own if other is None else own + self.attention(own, other, other, need_weights=False)[0]
            out.append(raw + proj(self.norm(aligned))[0])
        return out[0], out[1]


REPARAMETERISERS = {"none": lambda d: NoReparam(), "mlp": MLPReparam, "bap": BAPEncoder}


def make_reparam(kind: str, d: int) -> nn.Module:
    if kind not in REPARAMETERISERS:
        raise ValueError(f"unknown reparameterisation '{kind}'; expected one of {', '.join(REPARAMETERISERS)}")
    return REPARAMETERISERS[kind](d)
