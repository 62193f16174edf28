"""olora: O-LoRA on PEFT's LoRA, a new LoRA per task, orthogonal to earlier tasks' LoRA subspaces, merged into
the weights after each task (so inference sees every task's update at once, with no task id)."""

from __future__ import annotations

import torch
from torch import nn

from baas.training.continual.methods.peft import PeftLearner, PeftSequential
from baas.training.loop import Learner


class OLoraLearner(PeftLearner):
    """A state also keeps the base weights of the adapted layers, into which earlier tasks' LoRAs were merged."""

    def trainable(self) -> dict[str, torch.Tensor]:
        return super().trainable() | {n: p for n, p in self.module.named_parameters() if ".base_layer." in n}


class OLoRA(PeftSequential):
    """O-LoRA (Wang et al., 2023) on PEFT's LoRA: a new LoRA per task, trained with an orthogonality loss
    lambda_1 * sum_{t<k} ||A_t A_k^T||_F^2 against the earlier tasks' LoRA subspaces (their A matrices, kept)
    and an L2 term lambda_2 * ||LoRA_k||^2 (0 here, as the paper's default); before the next task, the LoRA
    is merged into the weights, so inference sees every task's update at once, with no task id."""

    key = "olora"
    orth, l2 = 0.5, 0.0

    def peft_config(self):
        from peft import LoraConfig, TaskType

        return LoraConfig(task_type=TaskType.FEATURE_EXTRACTION, r=8, lora_alpha=16, lora_dropout=0.0)

    def new_learner(self) -> Learner:
        torch.manual_seed(self.ctx.config.seed)
        return OLoraLearner(self.ctx, self.peft_config())

    def adapted(self) -> dict[str, nn.Module]:
        return {n: m for n, m in self.learner.net.named_modules() if hasattr(m, "lora_A") and "default" in m.lora_A}

    def train(self, k: int) -> None:
        if k > 0:  # keep task k-1's subspace, merge its LoRA into the weights, start a fresh one
            from peft import get_peft_model

            for name, module in self.adapted().items():
                self.extra[f"olora_A.{k - 1}.{name}"] = module.lora_A["default"].weight.detach().clone()
            torch.manual_seed(self.ctx.config.seed * 1000 + k)
            self.learner.net = get_peft_model(self.learner.net.merge_and_unload(), self.peft_config())
            self.learner.module["net"] = self.learner.net
        super().train(k)

    def penalty(self):
        earlier = [(key.split(".", 2)[2], a) for key, a in self.extra.items() if key.startswith("olora_A.")]
        if not earlier:
            return None
        adapted = self.adapted()

        def value():
            loss = sum((a @ adapted[name].lora_A["default"].weight.T).pow(2).sum() for name, a in earlier)
            if self.l2:
                loss = loss + self.l2 * sum(p.pow(2).sum() for n, p in self.learner.net.named_parameters() if "lora_" in n)
            return self.orth * loss

        return value

    def parameters(self) -> dict[str, int]:
        learner = self.learner or self.new_learner()
        n = sum(p.numel() for p in learner.module.parameters() if p.requires_grad)
        kept = sum(t.numel() for t in self.extra.values())  # the A matrices of earlier tasks
        return {"trainable": n, "stored_per_task": n // 2, "stored_total": n + kept}  # lora_A is half of a LoRA
