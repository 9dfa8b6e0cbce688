"""An OpenAI-compatible chat-completions judge for task 3's pairwise protocol (``recinterp.judges``).

The HTTP is the official ``openai`` client's (an optional extra: ``pip install 'recinterp[judge]'``):
its typed errors, timeouts and retries (timeouts, connection errors, 429 and 5xx, with backoff
and the server's Retry-After).  ``base_url`` points it at any compatible server (vLLM,
llama.cpp's server, Ollama: ``http://127.0.0.1:8000/v1``).  What is ours is the protocol:
temperature 0, the answer grammar (``judges.parse_choice``), both orders (``judges.judge_pairs``),
an optional JSONL cache that makes long runs resumable, and failing loudly:

- 401, 403, 404, 405 (a wrong key, a model or URL that is not there: a base URL without
  ``/v1`` is a 404) can never succeed: ``JudgeRejected`` at once, naming the URL and status;
- nothing listens at the URL: ``JudgeUnreachable`` after the retries, naming it;
- a server that accepts but never answers: each question gives up after the retries (``none``);
  ``fail_after`` such questions in a row raise ``JudgeUnreachable`` (the cache keeps what was answered);
- a per-question refusal (400, 413, 422) or a malformed answer is that question's ``none``;
  ``judge_pairs`` warns when every verdict of a run is ``none`` and records it in its result.

    judge = OpenAIJudge(model="gpt-4o-mini", cache_path="results/cpu/05_.../judge_cache.jsonl")
    judge_pairs(judge, [(history_titles, cand_a, cand_b), ...])

Configured by the environment: RECINTERP_JUDGE_MODEL (required), RECINTERP_JUDGE_BASE_URL
(then OPENAI_BASE_URL), RECINTERP_JUDGE_API_KEY (then OPENAI_API_KEY).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from .judges import as_query, build_messages, check_query, parse_choice

# Statuses no retry can fix: a wrong key, no permission, a wrong URL or model, a wrong method.
FATAL_STATUS = (401, 403, 404, 405)


def _env(*names: str) -> str | None:
    for n in names:
        v = os.environ.get(n)
        if v:
            return v
    return None


class JudgeUnreachable(ConnectionError):
    """No answer came from the judge's URL: nothing listens there, or it never answers."""


class JudgeRejected(RuntimeError):
    """The judge's server refuses every request (401, 403, 404, 405): no retry can fix it."""


def openai_judge_configured() -> bool:
    """True when the environment names a judge model (RECINTERP_JUDGE_MODEL)."""
    return _env("RECINTERP_JUDGE_MODEL") is not None


def _openai():
    try:
        import openai
    except ImportError:
        raise ImportError("the OpenAI-compatible judge needs the `openai` package: pip install 'recinterp[judge]' "
                          "(or pip install openai), or run with judge='local' or 'none'") from None
    return openai


class OpenAIJudge:
    """A judge behind an OpenAI-compatible chat-completions endpoint.

    base_url: e.g. "https://api.openai.com/v1" or "http://127.0.0.1:8000/v1"; default from
    RECINTERP_JUDGE_BASE_URL, then OPENAI_BASE_URL, then the OpenAI URL.
    model: required, default from RECINTERP_JUDGE_MODEL. api_key: RECINTERP_JUDGE_API_KEY, then
    OPENAI_API_KEY (may be absent for a local server).
    ``timeout`` (seconds per attempt) and ``max_retries`` go to the client.  ``stats`` counts what
    happened (ok, cached, http_<status> per attempt, timeout, connection_error, malformed, gave_up)
    and ``last_error`` keeps the latest failure.  Answers are remembered per judge object (an
    identical question is asked once: temperature 0); ``cache_path``: JSONL of answered prompts,
    read at start and appended to, so a rerun only asks what is missing.  ``workers``: parallel
    requests in ``compare_batch``.
    """

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 timeout: float = 30.0, max_retries: int = 3, item_word: str = "item", max_tokens: int = 16,
                 workers: int = 4, cache_path: str | os.PathLike | None = None, name: str | None = None,
                 fail_after: int = 8):
        self.base_url = (base_url or _env("RECINTERP_JUDGE_BASE_URL", "OPENAI_BASE_URL")
                         or "https://api.openai.com/v1").rstrip("/")
        url = urllib.parse.urlparse(self.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"judge base_url must be an http(s) URL, got {self.base_url!r}")
        self.model = model or _env("RECINTERP_JUDGE_MODEL")
        if not self.model:
            raise ValueError("no judge model: pass model= or set RECINTERP_JUDGE_MODEL")
        if max_retries < 0 or timeout <= 0 or workers < 1 or fail_after < 1:
            raise ValueError("need max_retries >= 0, timeout > 0, workers >= 1 and fail_after >= 1")
        openai = _openai()
        self.url = self.base_url + "/chat/completions"
        self.timeout, self.max_retries, self.fail_after = timeout, max_retries, fail_after
        self.item_word, self.max_tokens, self.workers = item_word, max_tokens, workers
        self.name = name or f"openai:{self.model}"
        self.stats: Counter = Counter()
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._unanswered = 0  # questions in a row that got no answer after every retry
        self._fatal: Exception | None = None  # JudgeRejected / JudgeUnreachable, raised again for every question
        # A loopback server is reached directly, never through a proxy from the environment; every
        # attempt's status is counted (the client retries inside one call).
        loopback = url.hostname in ("127.0.0.1", "localhost", "::1")
        http = openai.DefaultHttpxClient(trust_env=not loopback, event_hooks={"response": [self._on_response]})
        self.client = openai.OpenAI(base_url=self.base_url, api_key=api_key or _env("RECINTERP_JUDGE_API_KEY",
                                    "OPENAI_API_KEY") or "none", timeout=timeout, max_retries=max_retries,
                                    http_client=http)
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

    def _on_response(self, response) -> None:
        if response.status_code != 200:
            self._count(f"http_{response.status_code}", f"HTTP {response.status_code} from {self.url}")

    def _count(self, what: str, error: str | None = None) -> None:
        with self._lock:
            self.stats[what] += 1
            if error is not None:
                self.last_error = error

    def complete(self, messages: list[dict]) -> str | None:
        """The answer text, or None when this question got no usable answer; raises ``JudgeRejected``
        on a status no retry can fix and ``JudgeUnreachable`` when nothing answers at the URL (and
        again for every later question: such a judge is not there)."""
        payload = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.max_tokens}
        key = hashlib.sha256(json.dumps([self.base_url, payload], sort_keys=True).encode()).hexdigest()
        with self._lock:
            if self._fatal is not None:  # rejected or unreachable before: no request can succeed
                raise self._fatal
            if key in self._cache:
                self.stats["cached"] += 1
                return self._cache[key]
        try:
            return self._ask(payload, key)
        except (JudgeRejected, JudgeUnreachable) as e:
            with self._lock:
                self._fatal = e
            raise

    def _ask(self, payload: dict, key: str) -> str | None:
        openai = _openai()
        try:
            resp = self.client.chat.completions.create(**payload)
        except openai.APIStatusError as e:
            if e.status_code in FATAL_STATUS:
                raise JudgeRejected(f"the judge at {self.url} answered HTTP {e.status_code} ({e.message}): no retry "
                                    f"can fix that. Check the API key, the model name {self.model!r} and the base "
                                    f"URL (an OpenAI-compatible server's usually ends in /v1).") from None
            return self._gave_up(f"HTTP {e.status_code} from {self.url}: {e.message}",
                                 retried=e.status_code == 429 or e.status_code >= 500)
        except openai.APITimeoutError as e:  # before APIConnectionError: it is one
            self._count("timeout")
            return self._gave_up(f"no answer from {self.url} within {self.timeout} s ({e!r})", retried=True)
        except openai.APIConnectionError as e:
            self._count("connection_error", f"{e!r} ({e.__cause__!r})")
            self._count("gave_up")
            raise JudgeUnreachable(f"no judge reachable at {self.url}: {self.max_retries + 1} attempt(s) failed to "
                                   f"connect; last error: {self.last_error}. Start the server or fix "
                                   f"RECINTERP_JUDGE_BASE_URL / base_url (or run with judge='local' or 'none'); "
                                   f"answers so far are kept in the cache, if any.") from None
        except ValueError as e:  # a body that is not JSON
            self._count("malformed", f"malformed response from {self.url}: {e!r}")
            return None
        try:
            content = resp.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as e:
            self._count("malformed", f"malformed response from {self.url}: {e!r}")
            return None
        if not isinstance(content, str):
            self._count("malformed", f"answer content from {self.url} is {type(content).__name__}, not text")
            return None
        with self._lock:
            self.stats["ok"] += 1
            self._unanswered = 0
            self._cache[key] = content
            if self.cache_path:
                with open(self.cache_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"key": key, "content": content}) + "\n")
        return content

    def _gave_up(self, error: str, retried: bool) -> None:
        """This question's ``none``; ``fail_after`` questions in a row that got no answer after every
        retry (timeouts, 429, 5xx) mean a judge that does not answer: raise rather than turn the rest
        of a run into ``none``."""
        with self._lock:
            self.stats["gave_up"] += 1
            self.last_error = error
            self._unanswered = self._unanswered + 1 if retried else 0
            dead = retried and self._unanswered >= self.fail_after
        if dead:
            raise JudgeUnreachable(f"the judge at {self.url} answered none of {self.fail_after} questions in a row "
                                   f"({self.max_retries + 1} attempt(s) each, timeout {self.timeout} s); last error: "
                                   f"{error}. Check the server (or raise timeout / fail_after).")
        return None

    def compare(self, history_titles, cand_a, cand_b) -> str:
        check_query(history_titles, cand_a, cand_b)
        return parse_choice(self.complete(build_messages(history_titles, cand_a, cand_b, self.item_word)))

    def compare_batch(self, queries: Sequence[tuple]) -> list[str]:
        queries = [as_query(q) for q in queries]
        if self.workers == 1 or len(queries) <= 1:
            return [self.compare(*q) for q in queries]
        with ThreadPoolExecutor(self.workers) as pool:
            futures = [pool.submit(self.compare, *q) for q in queries]
            try:
                return [f.result() for f in futures]
            except BaseException:  # a judge that is not there: ask nothing more
                pool.shutdown(wait=True, cancel_futures=True)
                raise
