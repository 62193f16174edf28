"""The PEFT baselines of `baas eval-forgetting`: one adapter (through PEFT, never by hand) and one scoring
head trained on the tasks in turn, on a private copy of the backbone, with the same batches, schedule and
head as baas's methods, used with no task id at test time.

    prompt_tuning  PromptTuningConfig: Lp+Ls virtual tokens at the input, from sampled vocabulary
    prefix_tuning  PrefixTuningConfig: Lp+Ls virtual keys and values at every layer (P-tuning v2 style)
    p_tuning       PromptEncoderConfig: Lp+Ls virtual tokens made by an MLP prompt encoder
    lora           LoraConfig r=8, alpha 16, PEFT's default target modules for the backbone
    adalora        AdaLoraConfig from rank 12 down to 8 over the whole sequence's steps
    dora           LoraConfig with use_dora

PEFT has no multiple-choice task type: each (question, option) row goes through the PEFT model as
feature extraction, the input's tokens are mean-pooled (virtual tokens left out) and scored by the same
head as baas's (`--scoring`: joint rows, or question and option alone, or both). Each method's learning rate
is chosen on the first task's validation split from its `lr_grid` (the head keeps the config's rate).
`PeftLearner` also serves olora (olora.py) and, with no adapter, full fine-tuning (full_ft.py).
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from contextlib import nullcontext

import torch
from torch import nn

from baas.prompts_bank.errors import BaasError
from baas.prompts_bank.trainable import TrainableHead
from baas.training.backbone import AUTOCAST_DTYPES, resolve_precision
from baas.training.config import TrainConfig
from baas.training.continual.method import PROMPT_GRID
from baas.training.continual.methods.sequential import Sequential
from baas.training.loop import Learner
from baas.training.scoring import head_logits

LORA_GRID = (3e-4, 1e-3, 3e-3)


def check_prefix_tuning(model: nn.Module, name: str) -> None:
    """PEFT prefix tuning hands its virtual keys and values to the model as a key/value cache and widens the
    attention mask by as many positions. A model whose forward takes no cache (MPNet, DistilBERT, ALBERT,
    DeBERTa-v2 in transformers 5) drops the cache and then fails on the mask's width: say so up front."""
    takes = inspect.signature(model.forward).parameters
    if not {"cache", "past_key_values"} & set(takes):
        raise BaasError(f"PEFT prefix tuning cannot run on {name} ({type(model).__name__}): its forward takes no "
                        "key/value cache, which is how PEFT passes the prefix; use prompt_tuning, p_tuning or lora")


class PeftLearner(Learner):
    """A private copy of the backbone, wrapped by PEFT (`peft_config`) or fully trainable (None), and a head."""

    def __init__(self, ctx, peft_config=None):
        from peft import get_peft_model

        self.ctx = ctx
        base = copy.deepcopy(ctx.backbone.model)
        if peft_config is None:
            base.requires_grad_(True)
            net, self.skip = base, 0
        else:
            if type(peft_config).__name__ == "PrefixTuningConfig":
                check_prefix_tuning(base, ctx.backbone.name)
            with warnings.catch_warnings():  # PEFT's own deprecation chatter about transformers internals
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                net = get_peft_model(base, peft_config)
            # Prompt-type methods put their virtual tokens in front of the outputs; prefix tuning adds keys only.
            self.skip = peft_config.num_virtual_tokens if type(peft_config).__name__ in ("PromptTuningConfig", "PromptEncoderConfig") else 0
        head = TrainableHead(ctx.backbone.hidden_size, ctx.config.scoring).to(ctx.backbone.device)  # as baas's pair has
        self.net, self.head = net, head
        # The adapted copy's forward runs in the run's precision (autocast; its trained weights stay fp32).
        self.precision = resolve_precision(ctx.config.precision, ctx.backbone.device)
        self.module = nn.ModuleDict({"net": net, "head": head}).eval()  # no dropout: the backbone is used as baas uses it
        self.steps = 0

    def pooled(self, ids: torch.Tensor, mask: torch.Tensor, per_option: bool = True) -> torch.Tensor:
        dtype = AUTOCAST_DTYPES.get(self.precision)
        with nullcontext() if dtype is None else torch.autocast(ids.device.type, dtype=dtype):
            hidden = self.net(input_ids=ids, attention_mask=mask).last_hidden_state[:, self.skip:].float()
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def logits(self, batch) -> torch.Tensor:
        return head_logits(batch, self.head(), self.pooled)

    def optimizer(self, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
        adapter = [p for p in self.net.parameters() if p.requires_grad]
        return torch.optim.AdamW([
            {"params": adapter, "lr": lr or config.lr, "weight_decay": 0.0},
            {"params": list(self.head.parameters()), "lr": config.head_lr, "weight_decay": 0.01},
        ])


class AdaLoraLearner(PeftLearner):
    """AdaLoRA reallocates ranks after every optimiser step, on a schedule over the whole sequence's steps."""

    def after_step(self, step: int) -> None:
        self.net.base_model.update_and_allocate(self.steps)
        self.steps += 1


class PeftSequential(Sequential):
    """A PEFT adapter and the head, trained on the tasks in turn (no task id at test time)."""

    lr_grid = LORA_GRID

    def peft_config(self):
        raise NotImplementedError

    def new_learner(self) -> Learner:
        torch.manual_seed(self.ctx.config.seed)
        return PeftLearner(self.ctx, self.peft_config())

    def virtual_tokens(self) -> int:
        return self.ctx.config.prefix_len + self.ctx.config.suffix_len


def _prompt_method(key: str, make, **extra):
    return type(f"Sequential_{key}", (PeftSequential,), {"key": key, "lr_grid": PROMPT_GRID, "peft_config": make, **extra})


def _lora_method(key: str, **options):
    def make(self):
        from peft import LoraConfig, TaskType

        return LoraConfig(task_type=TaskType.FEATURE_EXTRACTION, r=8, lora_alpha=16, lora_dropout=0.0, **options)

    return type(f"Sequential_{key}", (PeftSequential,), {"key": key, "lr_grid": LORA_GRID, "peft_config": make})


def _prompt_tuning(self):
    from peft import PromptTuningConfig, TaskType

    return PromptTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=self.virtual_tokens(),
                              prompt_tuning_init="SAMPLE_VOCAB")


def _prefix_tuning(self):
    from peft import PrefixTuningConfig, TaskType

    return PrefixTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=self.virtual_tokens())


def _p_tuning(self):
    from peft import PromptEncoderConfig, TaskType

    return PromptEncoderConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=self.virtual_tokens(),
                               encoder_hidden_size=self.ctx.backbone.hidden_size)


class AdaLoRA(PeftSequential):
    key = "adalora"

    def peft_config(self):
        from peft import AdaLoraConfig, TaskType

        bs, epochs = self.ctx.config.batch_size, self.ctx.config.epochs
        total = sum(math.ceil(len(self.ctx.encoded(t, "train")) / bs) * epochs for t in self.order)
        return AdaLoraConfig(task_type=TaskType.FEATURE_EXTRACTION, init_r=12, target_r=8, lora_alpha=16, lora_dropout=0.0,
                             total_step=total, tinit=max(1, total // 10), tfinal=max(1, total // 10))

    def new_learner(self) -> Learner:
        torch.manual_seed(self.ctx.config.seed)
        return AdaLoraLearner(self.ctx, self.peft_config())


# the keys of the PEFT methods above, as `--methods` names them
PEFT = {
    "prompt_tuning": _prompt_method("prompt_tuning", _prompt_tuning),
    "prefix_tuning": _prompt_method("prefix_tuning", _prefix_tuning, check=classmethod(
        lambda cls, backbone: check_prefix_tuning(backbone.model, backbone.name))),
    "p_tuning": _prompt_method("p_tuning", _p_tuning),
    "lora": _lora_method("lora"),
    "adalora": AdaLoRA,
    "dora": _lora_method("dora", use_dora=True),
}
