"""PEFT baselines trained on baas's batches and schedule, for the accuracy comparisons
(init_ablation.py, recipe.py)."""

from __future__ import annotations

import copy
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from baas.training.backbone import Backbone
from baas.training.batching import batch_indices, collate, encode
from baas.training.config import TrainConfig
from baas.training.metrics import chance, mcq_metrics
from baas.training.trainer import lr_factor

sys.path.insert(0, str(Path(__file__).parent))
from throughput import PeftMultipleChoice  # noqa: E402


def peft_run(backbone: Backbone, data, config: TrainConfig, method: str = "prompt") -> dict:
    """A PEFT method (`PeftMultipleChoice`: prompt or prefix tuning with Lp+Ls virtual tokens) trained
    exactly as baas's trainer trains a pair: same batches, learning-rate schedule, clipping and
    best-epoch rule. It deliberately repeats the trainer's loop for a model the trainer does not handle."""
    started = time.time()
    torch.manual_seed(config.seed)
    model = PeftMultipleChoice(copy.deepcopy(backbone.model), config.prefix_len + config.suffix_len, method)
    optimizer = model.optimizer(config.lr, config.head_lr)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    max_length = min(config.max_length, backbone.max_positions - config.prefix_len - config.suffix_len)
    train, val, test = (encode(split.examples, backbone.tokenizer, max_length)
                        for split in (data.train, data.validation, data.eval))
    steps_per_epoch = -(-len(train) // config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = max(1, int(config.warmup * total))

    @torch.inference_mode()
    def predict(encoded) -> list[int]:
        preds = [0] * len(encoded)
        for idx in batch_indices(encoded, config.eval_batch_size, shuffle=False):
            b = collate([encoded[i] for i in idx], backbone.pad_id)
            for i, p in zip(idx, model(b.input_ids, b.attention_mask, b.option_mask).argmax(-1).tolist()):
                preds[i] = p
        return preds

    step, best, best_state, history = 0, -1.0, None, []
    for epoch in range(config.epochs):
        for idx in batch_indices(train, config.batch_size, shuffle=True, seed=config.seed * 1000 + epoch):
            b = collate([train[i] for i in idx], backbone.pad_id)
            for group, lr in zip(optimizer.param_groups, base_lrs):
                group["lr"] = lr * lr_factor(step, total, warmup)
            loss = F.cross_entropy(model(b.input_ids, b.attention_mask, b.option_mask), b.labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], config.clip)
            optimizer.step()
            step += 1
        accuracy = mcq_metrics([e.label for e in val], predict(val))["accuracy"]
        history.append({"epoch": epoch + 1, "validation_accuracy": accuracy})
        if accuracy > best:
            best, best_state = accuracy, copy.deepcopy({k: v for k, v in model.state_dict().items() if "prompt" in k or "head" in k})
    model.load_state_dict(best_state, strict=False)
    metrics = mcq_metrics([e.label for e in test], predict(test))
    return dict(metrics, chance=chance([len(e.options) for e in test]), history=history, eval_split=data.eval_split,
                n_eval=len(test), seconds=round(time.time() - started, 2),
                trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad))


def full_ft_run(backbone: Backbone, data, config: TrainConfig) -> dict:
    """Full fine-tuning (every backbone weight at `config.lr`, the head at `config.head_lr`) through the
    library's own sequential-baseline pieces (`baselines.PeftLearner` with no adapter, `continual.fit`):
    the same batches, schedule, clipping, mean pooling, scoring head and best-epoch rule as baas's trainer."""
    from baas.store import Store
    from baas.training.baselines import PeftLearner
    from baas.training.continual import Budget, Context, Settings, fit, learner_metrics
    from baas.training.trainer import Reporter

    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(Settings(tasks=[data.name], budget=Budget(None, None, config.epochs, config.seed), config=config),
                      backbone, Store(tmp), None, Reporter())
        ctx._data[data.name] = data  # the subsets the caller loaded
        torch.manual_seed(config.seed)
        learner = PeftLearner(ctx, None)
        train, val, test = (ctx.encoded(data.name, split) for split in ("train", "validation", "eval"))
        best = fit(ctx, learner, train, val, f"{data.name} full_ft", lr=config.lr)
        metrics = learner_metrics(ctx, learner, test, "test")
    return dict(metrics, chance=chance([len(e.options) for e in test]), history=[{"validation_accuracy": best}],
                eval_split=data.eval_split, n_eval=len(test), seconds=round(time.time() - started, 2),
                trainable_parameters=sum(p.numel() for p in learner.trainable().values()))
