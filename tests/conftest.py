"""Shared fixtures: tiny random backbones (BERT, RoBERTa, GPT-2) built here, never downloaded,
and the path of the shared MCQ data pack (tests that need it skip with the reason when it is absent)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from llm_server import ScriptedLLMServer

SHARED_MCQ = Path(__file__).resolve().parents[2] / "shared" / "data" / "mcq"
WORDS = (
    "the a an of to in is what which who why how does do did make made sound animal answer question "
    "opposite hot cold big small fast slow cow dog cat moo woof meow water plant sun energy light heavy "
    "dark early late happy sad apple banana tool hammer car bus red blue piano drum"
).split()


@pytest.fixture(scope="session")
def shared_mcq() -> Path:
    if not (SHARED_MCQ / "arc_easy" / "train.jsonl").is_file():
        pytest.skip(f"shared MCQ data pack not found at {SHARED_MCQ} (it sits beside the repository in CI)")
    return SHARED_MCQ


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """No test touches ~/.baas or a real BAAS_DATA_DIR; the model cache stays shared for speed."""
    monkeypatch.setenv("BAAS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BAAS_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def _wordpiece(path: Path):
    from transformers import BertTokenizerFast

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(WORDS)) + list("abcdefghijklmnopqrstuvwxyz0123456789?.,'-")
    vocab = list(dict.fromkeys(tokens))  # one line per token: ids are line numbers
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizerFast(vocab=str(path / "vocab.txt"))


def _byte_bpe(path: Path, cls):
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(WORDS)] * 4, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    bpe.save_model(str(path))
    return cls(vocab=str(path / "vocab.json"), merges=str(path / "merges.txt"))


def make_tiny_backbone(kind: str, path: Path) -> Path:
    """Save a 2-layer, hidden-32 random model of `kind` with a tokenizer into `path`; returns the folder."""
    from transformers import (BertConfig, BertModel, GPT2Config, GPT2Model, GPT2TokenizerFast, MPNetConfig, MPNetModel,
                              RobertaConfig, RobertaModel, RobertaTokenizerFast)

    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    small = dict(num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, hidden_size=32, max_position_embeddings=160)
    if kind == "bert":
        tok = _wordpiece(path)
        model = BertModel(BertConfig(vocab_size=len(tok), **small))
    elif kind == "roberta":
        tok = _byte_bpe(path, RobertaTokenizerFast)
        model = RobertaModel(RobertaConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, **dict(small, max_position_embeddings=162)))
    elif kind == "mpnet":  # an encoder whose attention takes no key/value cache
        tok = _wordpiece(path)
        model = MPNetModel(MPNetConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, **dict(small, max_position_embeddings=162)))
    elif kind == "gpt2":
        tok = _byte_bpe(path, GPT2TokenizerFast)
        model = GPT2Model(GPT2Config(vocab_size=len(tok), n_layer=2, n_head=2, n_embd=32, n_positions=160,
                                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id))
    else:
        raise ValueError(kind)
    tok.save_pretrained(path)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory):
    cache: dict[str, Path] = {}

    def get(kind: str = "bert") -> Path:
        if kind not in cache:
            cache[kind] = make_tiny_backbone(kind, tmp_path_factory.mktemp(f"tiny-{kind}"))
        return cache[kind]

    return get


@pytest.fixture(scope="session")
def tiny_backbone(tiny_backbone_dir):
    from baas.training.backbone import load_backbone

    loaded = {}

    def get(kind: str = "bert"):
        if kind not in loaded:
            # fp32: these tests check exact equalities, which bf16 autocast (auto on a CPU with native bf16)
            # rounds away; test_device covers bf16
            loaded[kind] = load_backbone(str(tiny_backbone_dir(kind)), precision="fp32")
        return loaded[kind]

    return get


@pytest.fixture
def cli_env(tmp_path):
    """Environment for `baas` subprocesses: isolated store, offline hub."""
    env = dict(os.environ, BAAS_HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env.pop("BAAS_DATA_DIR", None)
    return env


@pytest.fixture
def llm_server(monkeypatch) -> Iterator[Callable[..., ScriptedLLMServer]]:
    """Start a scripted server on 127.0.0.1 (port chosen by the OS); every one started is stopped after the test."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    servers: list[ScriptedLLMServer] = []

    def start(*script: tuple) -> ScriptedLLMServer:
        servers.append(ScriptedLLMServer(list(script)).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
