"""Training settings: one dataclass whose defaults are also the CLI's (kept free of torch for a fast `--help`)."""

from __future__ import annotations

from dataclasses import dataclass

from baas.training.errors import BaasError

POOLINGS = ("mean_input", "mean_all", "suffix", "last")
PROMPT_INITS = ("vocab", "random")


@dataclass
class TrainConfig:
    epochs: int = 2
    batch_size: int = 4
    lr: float = 1e-2  # prompt vectors
    head_lr: float = 3e-2
    warmup: float = 0.1  # fraction of steps
    clip: float = 1.0
    prefix_len: int = 5
    suffix_len: int = 5
    prefix_init: str = "vocab"
    suffix_init: str = "vocab"
    pooling: str | None = None  # None: the backbone's default (mean_input for encoders, last for decoders)
    max_length: int = 256
    seed: int = 0
    eval_batch_size: int = 32
    checkpoint_every: int = 50

    def check(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "checkpoint_every", "max_length"):
            if getattr(self, name) < 1:
                raise BaasError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("prefix_len", "suffix_len"):
            if not 0 <= getattr(self, name) <= 256:
                raise BaasError(f"--{name.replace('_', '-')} must be in 0..256, got {getattr(self, name)}")
        if self.lr <= 0 or self.head_lr <= 0:
            raise BaasError("learning rates must be positive")
        for name in ("prefix_init", "suffix_init"):
            if getattr(self, name) not in PROMPT_INITS:
                raise BaasError(f"unknown --{name.replace('_', '-')} '{getattr(self, name)}'; expected one of {', '.join(PROMPT_INITS)}")
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise BaasError(f"unknown pooling '{self.pooling}'; expected one of {', '.join(POOLINGS)}")
