"""full_ft: every backbone weight (of a private copy) and the head trained on the tasks in turn, through the
PEFT baselines' learner with no adapter: the plasticity reference."""

from __future__ import annotations

import torch

from baas.training.continual.methods.peft import PeftLearner
from baas.training.continual.methods.sequential import Sequential
from baas.training.loop import Learner

FULL_GRID = (1e-5, 3e-5, 1e-4)


class FullFineTuning(Sequential):
    key = "full_ft"
    lr_grid = FULL_GRID

    def new_learner(self) -> Learner:
        torch.manual_seed(self.ctx.config.seed)
        return PeftLearner(self.ctx, None)
