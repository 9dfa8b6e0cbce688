"""A tiny OpenAI-compatible chat-completions server on 127.0.0.1 for judge tests.

``FakeOpenAI(behave)`` serves POST /v1/chat/completions on a free loopback port. ``behave``
gets (request JSON, 0-based request number) and returns one of:
    ("ok", content)              200 with a normal chat-completion body
    ("status", code)             that HTTP status with a small JSON error body
    ("sleep", seconds, content)  wait, then answer like "ok" (to trip client timeouts)
    ("raw", bytes)               200 with exactly these bytes (malformed bodies)
Every request body is kept in ``requests``. Use as a context manager.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def chat_body(content) -> dict:
    return {"id": "fake", "object": "chat.completion", "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]}


class FakeOpenAI:
    def __init__(self, behave):
        self.behave = behave
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = json.loads(body)
                with fake._lock:
                    n = len(fake.requests)
                    fake.requests.append(req)
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})  # header names are case-blind
                if self.path != "/v1/chat/completions":
                    return self._send(404, b'{"error": "not found"}')
                action = fake.behave(req, n)
                kind = action[0]
                if kind == "sleep":
                    time.sleep(action[1])
                    kind, action = "ok", ("ok", action[2])
                try:
                    if kind == "ok":
                        self._send(200, json.dumps(chat_body(action[1])).encode())
                    elif kind == "status":
                        self._send(action[1], json.dumps({"error": {"message": "fake"}}).encode())
                    elif kind == "raw":
                        self._send(200, action[1])
                    else:
                        raise ValueError(f"unknown action {action!r}")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to answer

            def _send(self, code: int, payload: bytes):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # do not wait for a handler still sleeping
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
