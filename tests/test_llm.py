"""The LLM client through the real `openai` client against a scripted local server (tests/llm_server.py):
success, retries with backoff, timeouts, malformed answers, the call cap, the store cache, config."""

from __future__ import annotations

import socket

import pytest
from llm_server import ScriptedLLMServer

from baas.store.store import Store
from baas.training.cache import llm_key
from baas.training.init.llm import LLMClient, LLMConfig, LLMError

MESSAGES = [{"role": "system", "content": "You reason step by step."},
            {"role": "user", "content": "Q: What does a cow say? A: Let's think step by step."}]


def config(server: ScriptedLLMServer, **overrides) -> LLMConfig:
    base = {"base_url": server.base_url, "model": "test-model", "timeout": 5.0, "max_retries": 2, "backoff": 0.01}
    return LLMConfig(**{**base, **overrides})


def test_success_sends_the_openai_chat_shape(llm_server):
    server = llm_server(("ok", "A cow says moo."))
    client = LLMClient(config(server))
    assert client.chat(MESSAGES, max_tokens=50, temperature=0.0) == "A cow says moo."
    assert (client.calls, client.requests, client.cache_hits, client.source) == (1, 1, 0, "llm:test-model")
    assert server.paths == ["/v1/chat/completions"]
    body = server.requests[0]
    assert body["model"] == "test-model" and body["messages"] == MESSAGES
    assert body["max_tokens"] == 50 and body["temperature"] == 0.0


def test_a_429_is_retried_after_a_backoff(llm_server):
    server = llm_server(("status", 429), ("ok", "moo"))
    warnings: list[str] = []
    client = LLMClient(config(server), warn=warnings.append)
    assert client.chat(MESSAGES) == "moo"
    assert len(server.requests) == 2 and (client.calls, client.requests) == (1, 2)
    assert len(warnings) == 1 and "HTTP 429" in warnings[0] and "retry 1/2 in 0.01 s" in warnings[0]


def test_a_500_forever_gives_up_after_max_retries(llm_server):
    server = llm_server(("status", 500))
    warnings: list[str] = []
    client = LLMClient(config(server, max_retries=3), warn=warnings.append)
    with pytest.raises(LLMError) as err:
        client.chat(MESSAGES)
    assert len(server.requests) == 4 and client.requests == 4 and client.calls == 1
    message = str(err.value)
    assert "\n" not in message and server.base_url in message and "test-model" in message
    assert "HTTP 500" in message and "gave up after 4 attempts" in message
    assert [w.rsplit(" in ", 1)[1] for w in warnings] == ["0.01 s", "0.02 s", "0.04 s"]  # exponential backoff


def test_a_timeout_is_real_and_retried(llm_server):
    server = llm_server(("sleep", 3.0, "too late"))
    client = LLMClient(config(server, timeout=0.3, max_retries=1))
    with pytest.raises(LLMError, match=r"timed out after 0.3 s; gave up after 2 attempts") as err:
        client.chat(MESSAGES)
    assert server.base_url in str(err.value) and len(server.requests) == 2


def test_a_connection_error_is_retried_then_reported():
    with socket.socket() as s:  # a port that nobody listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = LLMClient(LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff=0.01))
    with pytest.raises(LLMError, match=r"connection error.*gave up after 2 attempts"):
        client.chat(MESSAGES)
    assert client.requests == 2


@pytest.mark.parametrize("kind,why", [("json", "no choices"), ("text", "not JSON"), ("empty", "empty message content")])
def test_a_malformed_answer_is_an_error_and_not_cached(llm_server, tmp_path, kind, why):
    server = llm_server(("malformed", kind))
    client = LLMClient(config(server), store=Store(tmp_path))
    with pytest.raises(LLMError, match=f"malformed answer \\({why}"):
        client.chat(MESSAGES)
    assert len(server.requests) == 1  # not retried: the same endpoint would answer the same way
    assert Store(tmp_path).llm_cache_get(llm_key("test-model", MESSAGES, 400, 0.0)) is None


def test_a_4xx_other_than_429_is_not_retried(llm_server):
    server = llm_server(("status", 401))
    with pytest.raises(LLMError, match=r"request refused, HTTP 401"):
        LLMClient(config(server)).chat(MESSAGES)
    assert len(server.requests) == 1


def test_the_call_cap_stops_before_a_request(llm_server, tmp_path):
    server = llm_server(("ok", "first"))
    client = LLMClient(config(server, max_calls=1), store=Store(tmp_path))
    assert client.chat(MESSAGES) == "first"
    assert client.chat(MESSAGES) == "first"  # a cache hit does not count against the cap
    with pytest.raises(LLMError, match=r"call cap reached \(1 calls"):
        client.chat(MESSAGES + [{"role": "user", "content": "and a dog?"}])
    assert len(server.requests) == 1 and (client.calls, client.cache_hits) == (1, 1)


def test_the_store_cache_serves_a_second_client(llm_server, tmp_path):
    server = llm_server(("ok", "moo"), ("ok", "warmer moo"))
    assert LLMClient(config(server), store=Store(tmp_path)).chat(MESSAGES) == "moo"
    again = LLMClient(config(server), store=Store(tmp_path))
    assert again.chat(MESSAGES) == "moo"
    assert len(server.requests) == 1 and (again.calls, again.requests, again.cache_hits) == (0, 0, 1)
    assert again.chat(MESSAGES, temperature=0.7) == "warmer moo"  # the key covers the sampling settings
    assert len(server.requests) == 2
    # a cached answer is served even with no endpoint configured (reruns work offline)
    offline = LLMClient(LLMConfig(model="test-model"), store=Store(tmp_path))
    assert offline.chat(MESSAGES) == "moo" and offline.cache_hits == 1


def test_not_configured_is_an_error():
    client = LLMClient(LLMConfig())
    assert not client.config.enabled
    with pytest.raises(LLMError, match=r"not configured.*BAAS_LLM_BASE_URL"):
        client.chat(MESSAGES)
    assert client.calls == 0


def test_store_llm_cache_round_trip(tmp_path):
    store = Store(tmp_path)
    assert store.llm_cache_get("k") is None
    store.llm_cache_put("k", "m", {"messages": MESSAGES}, "one")
    store.llm_cache_put("k", "m", {"messages": MESSAGES}, "two")  # a rewrite replaces
    assert Store(tmp_path).llm_cache_get("k") == "two"


def test_from_env_precedence(monkeypatch):
    for name in ("BAAS_LLM_BASE_URL", "BAAS_LLM_MODEL", "BAAS_LLM_API_KEY", "OPENAI_API_KEY", "BAAS_LLM_BACKOFF", "BAAS_LLM_MAX_RETRIES",
                 "BAAS_LLM_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    cfg = LLMConfig.from_env()
    assert (cfg.base_url, cfg.model, cfg.api_key, cfg.enabled) == (None, "gpt-4o", None, False)

    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    assert LLMConfig.from_env().api_key == "sk-openai"
    monkeypatch.setenv("BAAS_LLM_BASE_URL", "http://env:8000/v1")
    monkeypatch.setenv("BAAS_LLM_MODEL", "env-model")
    monkeypatch.setenv("BAAS_LLM_API_KEY", "sk-baas")
    cfg = LLMConfig.from_env()
    assert (cfg.base_url, cfg.model, cfg.api_key, cfg.enabled) == ("http://env:8000/v1", "env-model", "sk-baas", True)

    cfg = LLMConfig.from_env("http://arg:9000/v1", "arg-model", api_key="sk-arg", timeout=5.0, max_calls=3)
    assert (cfg.base_url, cfg.model, cfg.api_key, cfg.timeout, cfg.max_calls) == (
        "http://arg:9000/v1", "arg-model", "sk-arg", 5.0, 3)
    monkeypatch.setenv("BAAS_LLM_BACKOFF", "0.25")
    monkeypatch.setenv("BAAS_LLM_MAX_RETRIES", "5")
    assert (LLMConfig.from_env().backoff, LLMConfig.from_env().max_retries, LLMConfig.from_env(backoff=2.0).backoff) == (0.25, 5, 2.0)
    monkeypatch.setenv("BAAS_LLM_MAX_RETRIES", "many")
    with pytest.raises(LLMError, match="BAAS_LLM_MAX_RETRIES='many': expected an integer"):
        LLMConfig.from_env()
    monkeypatch.delenv("BAAS_LLM_MAX_RETRIES")
    monkeypatch.setenv("BAAS_LLM_MODEL", "")  # an empty variable counts as unset
    assert LLMConfig.from_env().model == "gpt-4o"
