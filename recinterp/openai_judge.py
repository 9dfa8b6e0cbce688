"""An OpenAI-compatible chat-completions judge for task 3's pairwise protocol (``recinterp.judges``).

Standard library only (urllib + json): temperature 0; retries with exponential backoff on
timeouts, connection errors, HTTP 429 and 5xx (when every attempt failed to connect, nothing
listens at the URL: ``JudgeUnreachable`` names it and the last error); a loopback server is reached without the
environment's proxy; ``compare_batch`` asks in parallel (a thread pool); an optional JSONL
cache makes long runs resumable.  The answer text is read with ``judges.parse_choice``.

    judge = OpenAIJudge(model="gpt-4o-mini", cache_path="results/cpu/05_.../judge_cache.jsonl")
    judge_pairs(judge, [(history_titles, cand_a, cand_b), ...])

Configured by the environment: RECINTERP_JUDGE_MODEL (required), RECINTERP_JUDGE_BASE_URL
(then OPENAI_BASE_URL), RECINTERP_JUDGE_API_KEY (then OPENAI_API_KEY).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from .judges import as_query, build_messages, check_query, parse_choice


def _env(*names: str) -> str | None:
    for n in names:
        v = os.environ.get(n)
        if v:
            return v
    return None


class JudgeUnreachable(ConnectionError):
    """Nothing answered at the judge's URL in any attempt (refused, unknown host, unreachable)."""


def openai_judge_configured() -> bool:
    """True when the environment names a judge model (RECINTERP_JUDGE_MODEL)."""
    return _env("RECINTERP_JUDGE_MODEL") is not None


class OpenAIJudge:
    """A judge behind an OpenAI-compatible chat-completions endpoint (standard library only).

    base_url: e.g. "https://api.openai.com/v1" or "http://127.0.0.1:8000/v1"; default from
    RECINTERP_JUDGE_BASE_URL, then OPENAI_BASE_URL, then the OpenAI URL.
    model: required, default from RECINTERP_JUDGE_MODEL. api_key: RECINTERP_JUDGE_API_KEY, then
    OPENAI_API_KEY (may be absent for a local server).
    Up to ``1 + max_retries`` attempts per question; waits ``min(max_backoff, backoff * 2**i)``
    (or the server's numeric Retry-After, capped) between them. Retried: timeouts, connection
    errors, HTTP 429 and 5xx. Not retried: other HTTP errors, a malformed answer body. A
    question that still has no answer is "none" (but when no attempt could even connect,
    :class:`JudgeUnreachable` is raised: a judge that is not there); ``stats`` counts what happened and
    ``last_error`` keeps the latest failure. Answers are remembered per judge object (an
    identical question is asked once: temperature 0); ``cache_path``: JSONL of answered prompts,
    read at start and appended to, so a rerun only asks what is missing. ``workers``: parallel requests
    in ``compare_batch``.
    """

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 timeout: float = 30.0, max_retries: int = 3, backoff: float = 1.0, max_backoff: float = 30.0,
                 item_word: str = "item", max_tokens: int = 16, workers: int = 4,
                 cache_path: str | os.PathLike | None = None, name: str | None = None):
        self.base_url = (base_url or _env("RECINTERP_JUDGE_BASE_URL", "OPENAI_BASE_URL")
                         or "https://api.openai.com/v1").rstrip("/")
        scheme = urllib.parse.urlparse(self.base_url)
        if scheme.scheme not in ("http", "https") or not scheme.hostname:
            raise ValueError(f"judge base_url must be an http(s) URL, got {self.base_url!r}")
        self.model = model or _env("RECINTERP_JUDGE_MODEL")
        if not self.model:
            raise ValueError("no judge model: pass model= or set RECINTERP_JUDGE_MODEL")
        self.api_key = api_key or _env("RECINTERP_JUDGE_API_KEY", "OPENAI_API_KEY")
        if max_retries < 0 or timeout <= 0 or workers < 1:
            raise ValueError("need max_retries >= 0, timeout > 0 and workers >= 1")
        self.timeout, self.max_retries, self.backoff, self.max_backoff = timeout, max_retries, backoff, max_backoff
        self.item_word, self.max_tokens, self.workers = item_word, max_tokens, workers
        self.name = name or f"openai:{self.model}"
        self.stats: Counter = Counter()
        self.last_error: str | None = None
        self._lock = threading.Lock()
        # A loopback server is reached directly, never through a proxy from the environment.
        loopback = scheme.hostname in ("127.0.0.1", "localhost", "::1")
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({})) if loopback \
            else urllib.request.build_opener()
        self.cache_path = os.fspath(cache_path) if cache_path is not None else None
        self._cache: dict[str, str] = {}
        if self.cache_path and os.path.exists(self.cache_path):
            with open(self.cache_path, encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                        self._cache[rec["key"]] = rec["content"]
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut by an interrupted run: ask again

    def _count(self, what: str, error: str | None = None) -> None:
        with self._lock:
            self.stats[what] += 1
            if error is not None:
                self.last_error = error

    def _post(self, payload: dict) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base_url + "/chat/completions", data=json.dumps(payload).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        with self._opener.open(req, timeout=self.timeout) as resp:
            return resp.status, resp.read()

    def _wait(self, attempt: int, retry_after: str | None = None) -> None:
        delay = self.backoff * (2 ** attempt)
        if retry_after is not None:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        time.sleep(min(self.max_backoff, delay))

    def complete(self, messages: list[dict]) -> str | None:
        """The answer text, or None after retries / on a malformed response; raises
        :class:`JudgeUnreachable` only when no attempt could connect."""
        payload = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.max_tokens}
        key = hashlib.sha256(json.dumps([self.base_url, payload], sort_keys=True).encode()).hexdigest()
        with self._lock:
            if key in self._cache:
                self.stats["cached"] += 1
                return self._cache[key]
        unreachable = True  # every attempt failed to connect: nothing listens at the URL
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                _, body = self._post(payload)
            except urllib.error.HTTPError as e:
                unreachable = False
                self._count(f"http_{e.code}", f"HTTP {e.code}")
                if not (e.code == 429 or e.code >= 500):
                    return None
                retry_after = e.headers.get("Retry-After") if e.headers else None
            except (OSError, http.client.HTTPException) as e:
                # Timeouts, refused/reset connections, cut responses (URLError is an OSError).
                timed_out = "timed out" in str(e).lower()
                unreachable = unreachable and not timed_out
                self._count("timeout" if timed_out else "connection_error", repr(e))
            except Exception as e:  # noqa: BLE001 - one odd failure must not end a long paid run
                self._count("unexpected_error", repr(e))
                return None
            else:
                content = self._content(body)
                if content is None:
                    return None
                self._count("ok")
                self._remember(key, content)
                return content
            if attempt < self.max_retries:
                self._count("retries")
                self._wait(attempt, retry_after)
        self._count("gave_up")
        if unreachable:
            raise JudgeUnreachable(f"no judge reachable at {self.base_url}/chat/completions: {self.max_retries + 1} "
                                   f"attempt(s) failed to connect; last error: {self.last_error}. Start the server or "
                                   f"fix RECINTERP_JUDGE_BASE_URL / base_url (or run with judge='local' or 'none').")
        return None

    def _content(self, body: bytes) -> str | None:
        try:
            content = json.loads(body)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            self._count("malformed", f"malformed response: {e!r}; body starts {body[:80]!r}")
            return None
        if not isinstance(content, str):
            self._count("malformed", f"answer content is {type(content).__name__}, not text")
            return None
        return content

    def _remember(self, key: str, content: str) -> None:
        with self._lock:
            self._cache[key] = content
            if self.cache_path:
                with open(self.cache_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"key": key, "content": content}) + "\n")

    def compare(self, history_titles, cand_a, cand_b) -> str:
        check_query(history_titles, cand_a, cand_b)
        return parse_choice(self.complete(build_messages(history_titles, cand_a, cand_b, self.item_word)))

    def compare_batch(self, queries: Sequence[tuple]) -> list[str]:
        queries = [as_query(q) for q in queries]
        if self.workers == 1 or len(queries) <= 1:
            return [self.compare(*q) for q in queries]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(lambda q: self.compare(*q), queries))
