"""A scripted OpenAI-compatible chat-completions server for the LLM tests (stdlib only, 127.0.0.1).

The script is a list of behaviours, one consumed per request (the last one repeats once the list is
exhausted):

    ("ok", text)            200 with a chat.completion whose assistant message is `text`
    ("status", code)        `code` (429, 500, 401, ...) with an OpenAI-style error body
    ("sleep", seconds, text) sleep, then answer like ("ok", text)
    ("malformed", "json")   200 with a JSON body that has no `choices`
    ("malformed", "text")   200 with a body that is not JSON at all
    ("malformed", "empty")  200 with a chat.completion whose message content is null

Every request body is recorded in `requests` (parsed JSON), so tests can count requests and read the
messages that were sent.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATHS = ("/v1/chat/completions", "/chat/completions")


class ScriptedLLMServer:
    def __init__(self, script: list[tuple] | None = None):
        self.script: list[tuple] = list(script or [("ok", "hello")])
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.authorizations: list[str | None] = []  # each request's Authorization header
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True  # a handler still sleeping never blocks shutdown
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> ScriptedLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _next(self, body: dict[str, Any], path: str, authorization: str | None = None) -> tuple:
        with self._lock:
            self.requests.append(body)
            self.paths.append(path)
            self.authorizations.append(authorization)
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
                pass

            def _send(self, code: int, payload: bytes, content_type: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path not in PATHS:
                    self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}).encode())
                    return
                body = json.loads(raw or b"{}")
                kind, *args = server._next(body, self.path, self.headers.get("Authorization"))
                if kind == "sleep":
                    time.sleep(args[0])
                    kind, args = "ok", args[1:] or ["slept"]
                if kind == "ok":
                    self._send(200, json.dumps(completion(body.get("model", "?"), args[0])).encode())
                elif kind == "status":
                    error = {"error": {"message": f"scripted status {args[0]}", "type": "test", "code": None}}
                    self._send(args[0], json.dumps(error).encode())
                elif kind == "malformed" and args[0] == "json":
                    self._send(200, json.dumps({"id": "x", "object": "chat.completion", "model": "m"}).encode())
                elif kind == "malformed" and args[0] == "empty":
                    self._send(200, json.dumps(completion(body.get("model", "?"), None)).encode())
                elif kind == "malformed":
                    self._send(200, b"<html>gateway says hi</html>", "text/html")
                else:
                    raise ValueError(f"unknown scripted behaviour {kind!r}")

        return Handler


def completion(model: str, text: str | None) -> dict[str, Any]:
    """The chat.completion JSON shape of the OpenAI API, one choice."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
