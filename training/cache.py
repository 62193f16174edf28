"""What the store's caches are keyed by, every recipe in one place, and the token cache (`encode_cached`).

A key is the sha256 of a JSON list of everything the cached thing depends on, cut short. A recipe that
changes (a field added, a version number bumped) misses every key made before, so the caches already on
users' disks stay valid only while these recipes stay byte for byte what they are (tests/test_cache.py
pins them).

    token_key    tokenised questions: encoding version, backbone, tokenizer, max length, the questions
    run_key      a training run (resume, reuse): task, backbone, data, settings
    init_key     a data-driven initialisation: backbone, training data, init settings, LLM
    query_key    routing query vectors: backbone, query, max length, the questions
    logits_key   one bank entry's logits on one task's questions (fused evaluation)
    llm_key      one LLM request's answer: model, messages, max tokens, temperature
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from baas.store import Store
from baas.training.backbone import Backbone, resolve_precision
from baas.training.batching import ENCODING_VERSION, Encoded, encode, pack, unpack
from baas.training.config import TrainConfig
from baas.training.data import MCQExample, TaskData, fingerprint


def _digest(blob: str, length: int) -> str:
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def token_key(backbone: Backbone, max_length: int, examples: list[MCQExample]) -> str:
    tok = backbone.tokenizer
    return _digest(json.dumps([ENCODING_VERSION, backbone.name, type(tok).__name__, len(tok), max_length,
                               fingerprint(examples)]), 32)


def encode_cached(examples: list, backbone: Backbone, max_length: int, store: Store) -> list[Encoded]:
    """`encode`, done once per set of questions, tokenizer and length, then read back from the store."""
    key = token_key(backbone, max_length, examples)
    cached = store.load_cached("tokens", key)
    if cached is not None:
        return unpack(cached)
    encoded = encode(examples, backbone.tokenizer, max_length)
    store.save_cached("tokens", key, pack(encoded))
    return encoded


def run_key(task: str, backbone: Backbone, data: TaskData, config: TrainConfig) -> str:
    """Identifies a run for resuming: same task, backbone, data and settings."""
    settings = asdict(config)
    settings.pop("device")  # where it ran does not change what it makes: an entry trained on a GPU is found on a CPU
    precision = resolve_precision(settings.pop("precision"), backbone.device)
    if precision != "fp32":  # (fp32 runs keep the keys they had before these settings existed)
        settings["precision"] = precision
    return _digest(json.dumps([task, backbone.name, fingerprint(data.train.examples),
                               fingerprint(data.validation.examples), settings], sort_keys=True), 16)


def init_key(data: TaskData, backbone: Backbone, config: TrainConfig, llm: tuple[str, str] | None) -> str:
    """Identifies a data-driven initialisation: same training data, backbone, init settings and LLM
    (endpoint and model, None offline)."""
    fields = ("prefix_init", "suffix_init", "prefix_len", "suffix_len", "clusters", "seed")
    return _digest(json.dumps([backbone.name, fingerprint(data.train.examples), {f: getattr(config, f) for f in fields}, llm],
                              sort_keys=True), 16)


def query_key(backbone: Backbone, query, max_length: int, examples: list[MCQExample]) -> str:
    """`query`: a `fusion.Query`, keyed by its text (`kind:layers`)."""
    return _digest(json.dumps([2, backbone.name, str(query), max_length, fingerprint(examples)]), 32)


def logits_key(entry, questions: str, max_length: int) -> str:
    """`entry`: a bank entry (task, version, creation time); `questions`: the fingerprint of a task's questions."""
    return _digest(json.dumps([1, entry.task, entry.version, entry.meta.get("created"), questions, max_length]), 32)


def llm_key(model: str, messages: list[dict], max_tokens: int, temperature: float) -> str:
    request = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
    return hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
