"""Pairwise judges: which of two candidate next items better fits a user's history? (task 3)

What it measures
----------------
The paper asks ChatGPT whether DreamRec's instantiated item or SASRec's recommendation (or a
random item) better fits a history. Here a *judge* answers one such question with
``compare(history_titles, cand_a, cand_b) -> "A" | "B" | "tie" | "none"``, and
:func:`judge_pairs` runs it over many cases, **in both orders** (A/B swapped, answers mapped
back): a case counts as a win only if both orders agree, as a tie if they disagree, and as
"none" (no answer) if either order gave no usable answer. It reports counts, rates with
bootstrap 95% CIs, the paired score (+1 win / -1 loss / 0 tie) and the raw position bias (share
of letter answers naming whatever was shown first; 0.5 = no bias, 1.0 = always "A").

Judges
------
- :class:`LocalLLMJudge`: any Hugging Face causal LM with its tokenizer (the notebooks pass the
  embedded SmolLM2-135M-Instruct). ``mode="logprob"`` (default) compares the next-token
  log-probability of the letters after the chat-templated prompt: deterministic, batched, never
  unparseable. ``mode="generate"`` decodes greedily and parses with :func:`parse_choice`.
- :class:`OpenAIJudge`: any OpenAI-compatible ``/chat/completions`` endpoint, standard library
  only (urllib + json), temperature 0, retries with exponential backoff on timeouts, connection
  errors, HTTP 429 and 5xx. When every attempt failed to connect (nothing listens at the URL) it
  raises :class:`JudgeUnreachable` naming the URL and the last error; any other failure is
  counted as "none", so one bad call never loses the other results. Optional JSONL cache makes
  long runs resumable (answers already received are kept).

Known limits
------------
- A 135M-parameter judge is close to a coin flip with a strong position bias; report its bias
  and the random-item control next to any comparison, and prefer a strong judge when one is
  configured. Judges see titles only (no plots, no genres).
- Forced choice: the prompt asks for A or B; ties arise only from order disagreement (or an
  explicit tie answer that :func:`parse_choice` recognises).
- :func:`parse_choice` is a rule set, not understanding (rules in its docstring); an answer
  that names both letters without a leading verdict is "none".
"""
from __future__ import annotations

import hashlib
import http.client
import inspect
import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol, Sequence

import numpy as np

from .metrics import summarize

if TYPE_CHECKING:  # torch is imported where the local judge runs, so the HTTP judge works without it
    import torch

CHOICES = ("A", "B", "tie", "none")


class Judge(Protocol):
    name: str

    def compare(self, history_titles: list[str], cand_a: str, cand_b: str) -> str:
        """"A" | "B" | "tie" | "none" for: which candidate is the better next item?"""
        ...


# --------------------------------------------------------------------------- prompt

SYSTEM_PROMPT = "You are an expert recommender. You judge which next item suits a user best."


def build_messages(history_titles: Sequence[str], first: str, second: str, item_word: str = "item") -> list[dict]:
    """Chat messages asking which of two candidates (shown as A, B) best continues the history."""
    history = "\n".join(f"{i}. {t}" for i, t in enumerate(history_titles, 1))
    user = (f"A user interacted with these {item_word}s, oldest first:\n{history}\n\n"
            f"Which candidate is the better next {item_word} for this user?\n"
            f"A: {first}\nB: {second}\n\n"
            "Reply with a single letter: A or B.")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def _check_query(history_titles, cand_a, cand_b) -> None:
    if isinstance(history_titles, str) or len(history_titles) == 0:
        raise ValueError("history_titles must be a non-empty list of titles")
    for name, c in (("cand_a", cand_a), ("cand_b", cand_b)):
        if not isinstance(c, str) or not c.strip():
            raise ValueError(f"{name} must be a non-empty title string, got {c!r}")


# --------------------------------------------------------------------------- parsing

_LEAD = r"^[\s*#>`\"'_~-]*"
# Optional lead-in before a verdict at the start of the answer.
_INTRO = (r"(?:(?:(?:my|the)\s+)?(?:final\s+)?(?:answer|choice|pick|verdict|recommendation)"
          r"\s*(?:is|would\s+be)?\s*[:=-]?\s*"
          r"|i\s*(?:would|'d|will)?\s*(?:choose|pick|select|go\s+with|prefer|recommend)\s*:?\s*"
          r"|(?:i\s+think|i\s+believe)\s*,?\s*"
          r"|the\s+(?:better|best)\s+(?:fit|choice|option|candidate|next\s+\w+)\s+is\s*:?\s*)?")
_SLOT = r"(?:(?:option|candidate|choice)\s*)?[*\"'`]*[(\[]?\s*(?P<x>[ab])\s*[)\]]?[*\"'`]*"
# Words that may follow a leading letter verdict ("A is better", "B because ...", "A over B").
_VERDICT_NEXT = r"(?:is|fits|because|would|seems|matches|since|as|over|rather\s+than)"
_AFTER = rf"(?=\s*$|\s*[.:,;!)\]\n-]|\s+\(|\s+{_VERDICT_NEXT}\b)"
# Words that may follow a letter mentioned anywhere ("A and B are ...", "neither A nor B").
_VERBS = r"(?:is|are|fits|fit|because|would|seems|matches|since|as|over|than|and|or|nor)"
_LEADING = re.compile(_LEAD + _INTRO + _SLOT + _AFTER, re.IGNORECASE)
_MENTIONS = [
    # "option A", "candidate (b)": an explicit slot word makes any case a letter.
    re.compile(r"(?i:\b(?:option|candidate))\s*[(\[]?(?P<x>[ABab])[)\]]?(?![A-Za-z0-9])"),
    # "I pick A", "answer: B" (upper-case letter only: "choose a movie" is prose).
    re.compile(r"(?i:\b(?:answer|choice|pick|choose|select|prefer|recommend)(?:\s+is)?)"
               r"\s*[:=-]?\s*(?P<x>[AB])(?![A-Za-z0-9])"),
    # "(a)", "[B]"
    re.compile(r"[(\[](?P<x>[ABab])[)\]]"),
    # A lone capital letter not followed by an ordinary word ("A Beautiful Mind", "A good one" are prose).
    re.compile(rf"(?<![A-Za-z0-9'’])(?P<x>[AB])(?![A-Za-z0-9'’])(?!\s+(?!(?i:{_VERBS})\b)[A-Za-z])"),
]
_TIE = re.compile(r"\b(?:tie|tied|both|neither|equally|equal|same|either|no\s+preference|undecided|"
                  r"can(?:not|'t)\s+decide|as\s+good\s+as)\b", re.IGNORECASE)


def parse_choice(answer: str | None) -> str:
    """Map a free-text answer to "A" | "B" | "tie" | "none".

    Rules, in order:
    1. Empty or not a string -> "none".
    2. A verdict at the very start wins, whatever follows: "A", "b.", "(A)", "**B**", "Option B",
       "Answer: A.", "Final answer: B", "I'd pick option A because...", "The better fit is B".
       A bare leading letter must be followed by the end, punctuation, "(" or a verb-like word
       ("A is ...", "B because ...", "A over B") so that the article in "A good choice is B" is
       not read as A.
    3. Otherwise collect letter mentions anywhere ("option a", "I pick B", "(b)", a lone capital
       A/B not followed by an ordinary word). Exactly one distinct letter -> that letter, even
       next to tie words ("Both are fine, but B fits better" -> B).
    4. Both letters mentioned: "tie" if a tie word is present ("A and B are equally good"),
       else "none" (ambiguous: "Between A and B, I'd go with B" is "none" by this rule).
    5. No letter: a tie word ("tie", "both", "neither", "equally", "same", "either", ...) ->
       "tie"; anything else -> "none".
    """
    if not isinstance(answer, str) or not answer.strip():
        return "none"
    m = _LEADING.match(answer)
    if m:
        return m["x"].upper()
    letters = {mm["x"].upper() for pat in _MENTIONS for mm in pat.finditer(answer)}
    if len(letters) == 1:
        return letters.pop()
    if _TIE.search(answer):
        return "tie"
    return "none"


# --------------------------------------------------------------------------- aggregation

def _summ(values) -> dict:
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    return summarize(v)


def _as_query(case) -> tuple[list[str], str, str]:
    if isinstance(case, dict):
        h, a, b = case["history"], case["a"], case["b"]
    else:
        h, a, b = case
    _check_query(h, a, b)
    return list(h), a, b


_SWAP = {"A": "B", "B": "A", "tie": "tie", "none": "none"}


def _run(judge, queries: list[tuple[list[str], str, str]]) -> list[str]:
    if hasattr(judge, "compare_batch"):
        out = list(judge.compare_batch(queries))
    else:
        out = [judge.compare(h, a, b) for h, a, b in queries]
    if len(out) != len(queries):
        raise ValueError(f"judge {getattr(judge, 'name', judge)!r} returned {len(out)} answers "
                         f"for {len(queries)} queries")
    bad = sorted({o for o in out if o not in CHOICES})
    if bad:
        raise ValueError(f"judge {getattr(judge, 'name', judge)!r} returned {bad}; expected one of {CHOICES}")
    return out


def judge_pairs(judge: Judge, cases: Sequence, both_orders: bool = True) -> dict:
    """Run ``judge`` on cases ``(history_titles, cand_a, cand_b)`` (or dicts history/a/b).

    Returns {"judge", "n_cases", "both_orders", "counts", "rates", "a_minus_b",
    "position_bias", "order_agreement", "per_case"}:
    - counts/rates: outcome per case from A's side: "A" = A wins, "B" = A loses, "tie", "none"
      (rates over all cases, each a {mean, lo, hi, n} bootstrap summary);
    - a_minus_b: mean of +1 (A wins) / -1 (B wins) / 0 (tie) over answered cases, with CI;
      its interval excluding 0 is the evidence that one side is preferred;
    - position_bias: share of raw letter answers (every query, before mapping back) that chose
      the candidate shown first;
    - order_agreement (both orders only): share of cases, both orders answered with a letter,
      where the two orders picked the same candidate.
    """
    queries = [_as_query(c) for c in cases]  # validate everything before the first (paid) call
    asked = list(queries)
    if both_orders:
        asked += [(h, b, a) for h, a, b in queries]
    raw = _run(judge, asked)
    n = len(queries)
    first, second = raw[:n], [_SWAP[r] for r in raw[n:]] if both_orders else None
    per_case, combined = [], []
    for i in range(n):
        if not both_orders:
            c = first[i]
            per_case.append({"raw": [raw[i]], "combined": c})
        else:
            x, y = first[i], second[i]
            c = "none" if "none" in (x, y) else (x if x == y else "tie")
            per_case.append({"raw": [raw[i], raw[n + i]], "combined": c})
        combined.append(c)
    counts = {k: combined.count(k) for k in CHOICES}
    rates = {k: _summ([c == k for c in combined]) if n else _summ([]) for k in CHOICES}
    score = [{"A": 1.0, "B": -1.0, "tie": 0.0}[c] for c in combined if c != "none"]
    letters = [r == "A" for r in raw if r in ("A", "B")]
    out = {"judge": getattr(judge, "name", type(judge).__name__), "n_cases": n, "both_orders": both_orders,
           "counts": counts, "rates": rates, "a_minus_b": _summ(score),
           "position_bias": {"share_first": _summ(letters), "n_letter_answers": len(letters)},
           "order_agreement": None, "per_case": per_case}
    if both_orders:
        agree = [x == y for x, y in zip(first, second) if x in ("A", "B") and y in ("A", "B")]
        out["order_agreement"] = _summ(agree)
    return out


# --------------------------------------------------------------------------- local LLM judge

class LocalLLMJudge:
    """A Hugging Face causal LM as judge (see the module docstring).

    model: a ``PreTrainedModel`` for causal LM (frozen; only forward/generate are called).
    tokenizer: its tokenizer; the chat template is used when it has one.
    mode: "logprob" (compare log P(letter) of the first answer token) or "generate" (greedy
    decode ``max_new_tokens`` tokens, then :func:`parse_choice`).
    tie_margin: in logprob mode, |log P(A) - log P(B)| <= tie_margin is a "tie" (0: exact ties only).
    """

    def __init__(self, model, tokenizer, item_word: str = "item", mode: str = "logprob", batch_size: int = 8,
                 max_new_tokens: int = 8, tie_margin: float = 0.0, name: str | None = None):
        if mode not in ("logprob", "generate"):
            raise ValueError(f"unknown mode {mode!r}: choose 'logprob' or 'generate'")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model, self.tokenizer = model, tokenizer
        self.item_word, self.mode, self.batch_size = item_word, mode, batch_size
        self.max_new_tokens, self.tie_margin = max_new_tokens, tie_margin
        path = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
        self.name = name or f"local:{os.path.basename(str(path).rstrip('/')) or path}:{mode}"
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        self.letter_ids = {L: self._letter_token_ids(L) for L in "AB"}
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        if set(self.letter_ids["A"]) & set(self.letter_ids["B"]):
            raise ValueError("the tokenizer maps 'A' and 'B' to a shared token: cannot compare them")

    def _letter_token_ids(self, letter: str) -> list[int]:
        # The answer's first token may be "A" or " A" depending on the template: score both.
        ids = []
        for variant in (letter, " " + letter):
            enc = self.tokenizer.encode(variant, add_special_tokens=False)
            if len(enc) == 1 and enc[0] not in ids:
                ids.append(enc[0])
        if not ids:
            raise ValueError(f"the tokenizer has no single token for {letter!r} or ' {letter}'")
        return ids

    def prompt_ids(self, history_titles, first: str, second: str) -> list[int]:
        """Token ids of the full prompt, ending where the assistant's answer begins."""
        msgs = build_messages(history_titles, first, second, self.item_word)
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            return tok(text, add_special_tokens=False)["input_ids"]
        text = f"{msgs[0]['content']}\n\n{msgs[1]['content']}\nAnswer:"
        return tok(text)["input_ids"]

    def _batches(self, queries):
        ids = [self.prompt_ids(*q) for q in queries]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths share a batch
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            yield idx, self._left_pad([ids[i] for i in idx])

    def _left_pad(self, seqs: list[list[int]]):
        import torch

        device = next(self.model.parameters()).device
        T = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), T), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), T), dtype=torch.long)
        for r, s in enumerate(seqs):  # left padding: the last position is every row's next token
            input_ids[r, T - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[r, T - len(s):] = 1
        return input_ids.to(device), mask.to(device)

    def letter_logprobs(self, queries: Sequence[tuple]) -> torch.Tensor:
        """(N, 2) log P(first answer token = A-letter), log P(= B-letter) (variants summed)."""
        import torch

        out = torch.empty(len(queries), 2)
        self.model.eval()
        for idx, (input_ids, mask) in self._batches(queries):
            # Positions count real tokens only, so a left-padded row sees the same positions as alone
            # (RoPE models do not need it; models with absolute position embeddings do).
            pos = (mask.cumsum(1) - 1).clamp(min=0)
            kw = {"logits_to_keep": 1} if self._keeps_logits else {}  # skip the LM head elsewhere
            with torch.inference_mode():
                logits = self.model(input_ids=input_ids, attention_mask=mask, position_ids=pos, **kw).logits[:, -1, :]
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()  # (b, V)
            for L, col in (("A", 0), ("B", 1)):
                out[idx, col] = torch.logsumexp(logp[:, self.letter_ids[L]], dim=-1)
        return out

    def generate_answers(self, queries: Sequence[tuple]) -> list[str]:
        import torch

        out = [""] * len(queries)
        self.model.eval()
        for idx, (input_ids, mask) in self._batches(queries):
            with torch.inference_mode():
                gen = self.model.generate(input_ids=input_ids, attention_mask=mask, do_sample=False,
                                          max_new_tokens=self.max_new_tokens, pad_token_id=self.pad_id)
            for r, i in enumerate(idx):
                out[i] = self.tokenizer.decode(gen[r, input_ids.shape[1]:], skip_special_tokens=True)
        return out

    def compare_batch(self, queries: Sequence[tuple]) -> list[str]:
        queries = [_as_query(q) for q in queries]
        if not queries:
            return []
        if self.mode == "generate":
            return [parse_choice(a) for a in self.generate_answers(queries)]
        lp = self.letter_logprobs(queries)
        diff = (lp[:, 0] - lp[:, 1]).tolist()
        return ["tie" if abs(d) <= self.tie_margin else ("A" if d > 0 else "B") for d in diff]

    def compare(self, history_titles, cand_a, cand_b) -> str:
        return self.compare_batch([(history_titles, cand_a, cand_b)])[0]


# --------------------------------------------------------------------------- OpenAI-compatible judge

def _env(*names: str) -> str | None:
    for n in names:
        v = os.environ.get(n)
        if v:
            return v
    return None


def openai_judge_configured() -> bool:
    """True when the environment names a judge model (RECINTERP_JUDGE_MODEL)."""
    return _env("RECINTERP_JUDGE_MODEL") is not None


class JudgeUnreachable(ConnectionError):
    """Nothing answered at the judge's URL in any attempt (refused, unknown host, unreachable)."""


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
        _check_query(history_titles, cand_a, cand_b)
        return parse_choice(self.complete(build_messages(history_titles, cand_a, cand_b, self.item_word)))

    def compare_batch(self, queries: Sequence[tuple]) -> list[str]:
        queries = [_as_query(q) for q in queries]
        if self.workers == 1 or len(queries) <= 1:
            return [self.compare(*q) for q in queries]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(lambda q: self.compare(*q), queries))
