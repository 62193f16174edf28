"""training/cache.py: the token cache, and every cache key recipe pinned to the keys it made before it moved
there (from trainer.py, routing.py and llm.py), so the caches on users' disks stay valid."""

from types import SimpleNamespace

import pytest
import torch

from baas.store import Store
from baas.training import cache
from baas.training.config import TrainConfig
from baas.training.data import load_task_data, make_example


def test_tokenisation_is_cached_in_the_store(tiny_backbone, tmp_path, monkeypatch):
    from baas.training.batching import encode, pack, unpack

    bb, store = tiny_backbone("bert"), Store(tmp_path)
    examples = load_task_data("demo_categories", max_train=12, max_eval=32).train.examples
    fresh = encode(examples, bb.tokenizer, 48)
    assert unpack(pack(fresh)) == fresh
    assert cache.encode_cached(examples, bb, 48, store) == fresh
    files = list((tmp_path / "tokens").glob("*.safetensors"))
    assert len(files) == 1

    def no_tokenising(*args):
        raise AssertionError("tokenised again despite the cache")

    monkeypatch.setattr(cache, "encode", no_tokenising)
    assert cache.encode_cached(examples, bb, 48, store) == fresh  # read back, not tokenised
    with pytest.raises(AssertionError, match="tokenised again"):
        cache.encode_cached(examples, bb, 40, store)  # another length is another entry
    files[0].write_bytes(b"garbage")  # a damaged cache file is dropped and made again
    monkeypatch.setattr(cache, "encode", encode)
    assert cache.encode_cached(examples, bb, 48, store) == fresh
    assert unpack(store.load_cached("tokens", files[0].stem)) == fresh


def test_keys_are_the_keys_made_before_they_moved_here():
    """The literals were computed at commit c113380, before the recipes moved here, by trainer.encode_cached,
    run_key and init_key, routing.query_vectors and _entry_logits, and llm.cache_key, on these same inputs."""
    from baas.training.fusion import Query

    examples = [make_example(str(i), f"what is {i}?", ["hot", "cold", "big"], i % 3, label_field="l", options_field="o",
                             context="ctx") for i in range(4)]
    tokenizer = type("BertTokenizerFast", (), {"__len__": lambda self: 123})()
    backbone = SimpleNamespace(name="tiny-bert", tokenizer=tokenizer, device=torch.device("cpu"))
    data = SimpleNamespace(train=SimpleNamespace(examples=examples[:3]), validation=SimpleNamespace(examples=examples[3:]))
    entry = SimpleNamespace(task="cats", version=2, meta={"created": "2024-01-01T00:00:00"})

    assert cache.token_key(backbone, 64, examples) == "ddac860ad4d0d1edc0895d77a0b48052"
    assert cache.run_key("cats", backbone, data, TrainConfig(epochs=3, scoring="dual", precision="fp32")) == "70297fc9e938960e"
    assert cache.run_key("cats", backbone, data, TrainConfig(precision="fp16", scoring="joint")) == "126ee2b3e0e4e480"
    assert cache.init_key(data, backbone, TrainConfig(prefix_init="topic", suffix_init="autocot"),
                          ("http://127.0.0.1:9/v1", "m")) == "92b0b9960aa332e6"
    assert cache.init_key(data, backbone, TrainConfig(), None) == "c7cf6451ebf79ba5"
    assert cache.query_key(backbone, Query.parse("context:1,2"), 128, examples) == "3ef312bf3a184ddb3ce572c8899cdd5f"
    assert cache.logits_key(entry, "abcdef0123456789", 96) == "17502fbd08af95b85855f1c5732536af"
    assert cache.llm_key("gpt-4o", [{"role": "user", "content": "Q: é? A:"}], 256, 0.0) == \
        "03c2eafe5823b6242b70ed8eec416394cb1bfc392d5281cae9f34506956d8fdc"
