"""Training settings: one dataclass whose defaults are also the CLI's (kept free of torch for a fast `--help`)."""

from __future__ import annotations

from dataclasses import dataclass

from baas.prompts_bank.errors import BaasError

POOLINGS = ("mean_input", "mean_all", "suffix", "last")
PREFIX_INITS = ("topic", "vocab", "random")
SUFFIX_INITS = ("autocot", "vocab", "random")
SCORINGS = ("joint", "dual", "both")  # prompts_bank.trainable.TrainableHead's modes (see ScoringHead)
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")  # cuda:N: the N-th GPU (see backbone.resolve_device)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: bf16 on a GPU or CPU with native bf16, else fp32
REPARAMS = ("none", "mlp", "bap")  # prompts_bank.reparam.REPARAMETERISERS (kept here torch-free; a test ties them)


@dataclass
class TrainConfig:
    epochs: int = 2
    batch_size: int = 4
    lr: float = 1e-2  # prompt vectors
    head_lr: float = 1e-2  # the head-only baseline does best at 3e-2 (recipe_search.md)
    warmup: float = 0.1  # fraction of steps
    clip: float = 1.0
    prefix_len: int = 5
    suffix_len: int = 5
    depth: int | None = None  # layers with their own prompt vectors: None = every layer; 1 = input embeddings only
    gate: float | None = -4.0  # start of the input's attention-score shift for the pair (learned); None: no gate
    prefix_init: str = "vocab"  # topic: the dataset's topic labels; vocab: frequent task tokens; random
    suffix_init: str = "vocab"  # autocot: the global reasoning chain; vocab; random
    reparam: str = "none"  # none | mlp | bap (the BAP-Encoder), used while training only
    reparam_lr: float = 1e-3
    clusters: int = 8  # K of the Auto-CoT clustering
    llm_base_url: str | None = None  # an OpenAI-compatible endpoint for the chains; None: offline chains
    llm_model: str | None = None
    scoring: str = "both"  # joint: a linear head on [question; option]; dual: cosine of question and option; both
    # (the default, chosen on validation: benchmarks/results/scoring.md): the sum, starting at dual = zero-shot
    pooling: str | None = None  # None: the backbone's default (mean_input for encoders, last for decoders)
    max_length: int = 256
    seed: int = 0
    eval_batch_size: int = 32
    checkpoint_every: int = 50
    device: str = "auto"  # auto: CUDA, then MPS, then the CPU (backbone.resolve_device); cpu | cuda | cuda:N | mps
    precision: str = "auto"  # the frozen backbone's forward: fp32 | bf16 | fp16 (autocast); auto: bf16 on a GPU or CPU with native bf16, else fp32

    def check(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "checkpoint_every", "max_length"):
            if getattr(self, name) < 1:
                raise BaasError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("prefix_len", "suffix_len"):
            if not 0 <= getattr(self, name) <= 256:
                raise BaasError(f"--{name.replace('_', '-')} must be in 0..256, got {getattr(self, name)}")
        if self.gate is not None and not -1e4 <= self.gate <= 1e4:
            raise BaasError(f"--gate must be a number in -1e4..1e4 (or --no-gate), got {self.gate}")
        if self.depth is not None and self.depth < 1:
            raise BaasError(f"--depth must be at least 1, got {self.depth}")
        if min(self.lr, self.head_lr, self.reparam_lr) <= 0:
            raise BaasError("learning rates must be positive")
        for name, allowed in (("prefix_init", PREFIX_INITS), ("suffix_init", SUFFIX_INITS), ("reparam", REPARAMS),
                              ("scoring", SCORINGS)):
            if getattr(self, name) not in allowed:
                raise BaasError(f"unknown --{name.replace('_', '-')} '{getattr(self, name)}'; expected one of {', '.join(allowed)}")
        if self.clusters < 1:
            raise BaasError(f"--clusters must be at least 1, got {self.clusters}")
        check_device(self.device)
        if self.precision not in PRECISIONS:
            raise BaasError(f"unknown --precision '{self.precision}'; expected one of {', '.join(PRECISIONS)}")
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise BaasError(f"unknown pooling '{self.pooling}'; expected one of {', '.join(POOLINGS)}")


def check_device(spec: str) -> None:
    """A device string's form (auto, cpu, cuda, cuda:N, mps); whether that device is present is
    `backbone.resolve_device`'s question."""
    head, _, index = str(spec).partition(":")
    if head not in ("auto", "cpu", "cuda", "mps") or (index and (head != "cuda" or not index.isdigit())) \
            or (":" in str(spec) and not index):
        raise BaasError(f"unknown --device '{spec}'; expected one of auto, cpu, cuda, cuda:N (N a GPU number), mps")
