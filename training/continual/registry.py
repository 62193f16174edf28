"""Every method `baas eval-forgetting --methods` knows, by key: one line per method. The methods never import
this module; a new method is a small class in methods/ and a line here."""

from __future__ import annotations

from baas.training.continual.method import Method
from baas.training.continual.methods.baas import Baas
from baas.training.continual.methods.ewc import EWC
from baas.training.continual.methods.full_ft import FullFineTuning
from baas.training.continual.methods.olora import OLoRA
from baas.training.continual.methods.peft import PEFT
from baas.training.continual.methods.reference import STFineTuning, ZeroShot
from baas.training.continual.methods.sequential import Multitask, Naive

# the PEFT baselines and sequential full fine-tuning
BASELINES: dict[str, type[Method]] = {**PEFT, "olora": OLoRA, "full_ft": FullFineTuning}
# the reference rows of issue 24 §2: the frozen backbone's cosine answer, and sentence-transformers fine-tuning
REFERENCES: dict[str, type[Method]] = {"zero_shot": ZeroShot, "st_ft": STFineTuning}
# baas (and its oracle row), the sequential bounds and EWC, then the baselines and the reference rows
METHODS: dict[str, type[Method]] = {"baas": Baas, "naive": Naive, "ewc": EWC, "multitask": Multitask, **BASELINES,
                                    **REFERENCES}
