"""The LLM plumbing for Auto-CoT chains: any OpenAI-compatible chat endpoint through the `openai` client.

    config = LLMConfig.from_env()                 # BAAS_LLM_BASE_URL, BAAS_LLM_MODEL, BAAS_LLM_API_KEY
    client = LLMClient(config, store=Store())     # answers are cached in the store's catalog
    text = client.chat([{"role": "user", "content": "Q: ... A: Let's think step by step."}])

Every answer is cached in the store under the sha256 of (model, messages, max_tokens, temperature)
(`cache.llm_key`), so a rerun makes no network call, works offline, and gives the same chains. Retries are our own loop
(the `openai` client runs with `max_retries=0`): 429, 408, 5xx, timeouts and connection errors are
retried `max_retries` times, waiting `backoff * 2**attempt` seconds (at most `MAX_BACKOFF`) between
attempts. Anything else that goes wrong is one `LLMError` line naming the endpoint and the model.

Counters on a client: `calls` counts logical calls that went to the network (cache misses, whether
they succeeded or not; capped by `max_calls`), `requests` counts HTTP attempts (retries included, so
`requests <= calls * (max_retries + 1)`), `cache_hits` counts answers served from the store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from baas.prompts_bank.errors import BaasError
from baas.training.cache import llm_key

if TYPE_CHECKING:
    import openai

    from baas.store.store import Store

MAX_BACKOFF = 30.0  # seconds: the longest wait between two attempts
NO_KEY = "not-needed"  # local servers (vLLM, llama.cpp, Ollama) accept any key; the client insists on one


class LLMError(BaasError):
    """No LLM configured, the call cap reached, retries exhausted, a malformed answer or a refused request."""


@dataclass
class LLMConfig:
    base_url: str | None = None  # None: no LLM configured (offline)
    model: str = "gpt-4o"
    api_key: str | None = None  # None: a placeholder is sent (local servers need none)
    timeout: float = 30.0  # seconds per request
    max_retries: int = 3  # retries on 429, 408, 5xx, timeouts and connection errors
    max_calls: int = 64  # network calls per client (per run); cache hits do not count
    backoff: float = 1.0  # first wait between attempts in seconds, doubled after each retry

    @classmethod
    def from_env(cls, base_url: str | None = None, model: str | None = None, **overrides: Any) -> LLMConfig:
        """Explicit arguments win, then BAAS_LLM_BASE_URL, BAAS_LLM_MODEL, BAAS_LLM_API_KEY (or OPENAI_API_KEY),
        BAAS_LLM_TIMEOUT, BAAS_LLM_MAX_RETRIES and BAAS_LLM_BACKOFF."""
        env = lambda name: os.environ.get(name) or None  # an empty variable counts as unset
        overrides["api_key"] = overrides.get("api_key") or env("BAAS_LLM_API_KEY") or env("OPENAI_API_KEY")
        for field_name, kind in (("timeout", float), ("max_retries", int), ("backoff", float)):
            text = env(f"BAAS_LLM_{field_name.upper()}")
            if field_name not in overrides and text is not None:
                try:
                    overrides[field_name] = kind(text)
                except ValueError:
                    raise LLMError(f"BAAS_LLM_{field_name.upper()}={text!r}: expected a{'n integer' if kind is int else ' number'}") from None
        return cls(base_url=base_url or env("BAAS_LLM_BASE_URL"), model=model or env("BAAS_LLM_MODEL") or cls.model,
                   **overrides)

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)


class LLMClient:
    """Chat completions with a store cache, a call cap and retries; one instance per run."""

    def __init__(self, config: LLMConfig, store: Store | None = None, warn: Callable[[str], None] | None = None):
        self.config = config
        self.store = store
        self.warn = warn or (lambda message: None)
        self.source = f"llm:{config.model}"
        self.calls = 0  # logical calls sent to the network (cache misses)
        self.requests = 0  # HTTP attempts, retries included
        self.cache_hits = 0
        self._client: openai.OpenAI | None = None

    def _fail(self, what: str) -> LLMError:
        """One line: which endpoint, which model, what happened."""
        endpoint = self.config.base_url or "(not configured)"
        return LLMError(f"LLM endpoint {endpoint} (model {self.config.model}): {what}")

    def _openai(self) -> openai.OpenAI:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                base_url=self.config.base_url,
                api_key=self.config.api_key or NO_KEY,
                timeout=self.config.timeout,
                max_retries=0,  # our loop retries, so `requests` counts every attempt and waits are ours
                http_client=openai.DefaultHttpxClient(trust_env=False),  # no proxy from the environment
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def chat(self, messages: list[dict], max_tokens: int = 400, temperature: float = 0.0) -> str:
        """The assistant's text: from the store cache when this exact request was answered before,
        else from the endpoint (then cached). Raises LLMError with one line on any failure."""
        key = llm_key(self.config.model, messages, max_tokens, temperature)
        if self.store is not None and (cached := self.store.llm_cache_get(key)) is not None:
            self.cache_hits += 1
            return cached
        if not self.config.enabled:
            raise self._fail("no LLM configured (set BAAS_LLM_BASE_URL or pass a base URL)")
        if self.calls >= self.config.max_calls:
            raise self._fail(f"call cap reached ({self.config.max_calls} calls for this run; raise max_calls)")
        self.calls += 1
        text = self._request(messages, max_tokens, temperature)
        if self.store is not None:
            request = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature}
            self.store.llm_cache_put(key, self.config.model, request, text)
        return text

    def _request(self, messages: list[dict], max_tokens: int, temperature: float) -> str:
        import openai

        client, attempts = self._openai(), self.config.max_retries + 1
        for attempt in range(attempts):
            self.requests += 1
            try:
                response = client.chat.completions.create(  # type: ignore[call-overload]
                    model=self.config.model, messages=messages, max_tokens=max_tokens, temperature=temperature)
                return self._text(response)
            except openai.APITimeoutError:
                problem = f"request timed out after {self.config.timeout:g} s"
            except openai.APIConnectionError as exc:
                problem = f"connection error ({_first_line(exc)})"
            except openai.APIStatusError as exc:
                problem = f"HTTP {exc.status_code}: {_first_line(exc)}"
                if exc.status_code not in (408, 429) and exc.status_code < 500:
                    raise self._fail(f"request refused, {problem}") from None
            except (openai.APIResponseValidationError, ValueError) as exc:  # a body that is not JSON
                raise self._fail(f"malformed answer ({_first_line(exc)})") from None
            if attempt + 1 < attempts:
                wait = min(self.config.backoff * 2**attempt, MAX_BACKOFF)
                self.warn(f"{self._fail(problem)}; retry {attempt + 1}/{self.config.max_retries} in {wait:g} s")
                time.sleep(wait)
        raise self._fail(f"{problem}; gave up after {attempts} attempt{'s' if attempts > 1 else ''}")

    def _text(self, response: object) -> str:
        if isinstance(response, str):  # the client hands back a non-JSON body as text
            raise self._fail(f"malformed answer (not JSON: {_first_line(response)!r})")
        choices = getattr(response, "choices", None)
        if not choices:
            raise self._fail("malformed answer (no choices)")
        content = getattr(getattr(choices[0], "message", None), "content", None)
        if not isinstance(content, str) or not content.strip():
            raise self._fail("malformed answer (empty message content)")
        return content


def _first_line(thing: object, limit: int = 200) -> str:
    text = str(thing).strip().splitlines()
    return (text[0] if text else type(thing).__name__)[:limit]
