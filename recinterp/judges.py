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
- ``recinterp.openai_judge.OpenAIJudge``: any OpenAI-compatible ``/chat/completions`` endpoint
  through the official ``openai`` client (its own module; it reads answers with :func:`parse_choice`).

Known limits
------------
- A small local judge can sit near chance with a strong position bias: report its bias and
  the random-item control next to any comparison, and prefer a strong judge when one is
  configured. Judges see titles only (no plots, no genres).
- Forced choice: the prompt asks for A or B; ties arise only from order disagreement (or an
  explicit tie answer that :func:`parse_choice` recognises).
- :func:`parse_choice` is a rule set, not understanding (rules in its docstring); an answer
  that names both letters without a leading verdict is "none".
"""
from __future__ import annotations

import inspect
import os
import re
import warnings
from typing import Protocol, Sequence

import numpy as np
import torch

from .collator import pad, positions
from .metrics import summarize
from .prompts import chat_prompt

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


def check_query(history_titles, cand_a, cand_b) -> None:
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


def as_query(case) -> tuple[list[str], str, str]:
    if isinstance(case, dict):
        h, a, b = case["history"], case["a"], case["b"]
    else:
        h, a, b = case
    check_query(h, a, b)
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
    "position_bias", "order_agreement", "failures", "per_case"}:
    - counts/rates: outcome per case from A's side: "A" = A wins, "B" = A loses, "tie", "none"
      (rates over all cases, each a {mean, lo, hi, n} bootstrap summary);
    - a_minus_b: mean of +1 (A wins) / -1 (B wins) / 0 (tie) over answered cases, with CI;
      its interval excluding 0 is the evidence that one side is preferred;
    - position_bias: share of raw letter answers (every query, before mapping back) that chose
      the candidate shown first;
    - order_agreement (both orders only): share of cases, both orders answered with a letter,
      where the two orders picked the same candidate;
    - failures: the ``none`` count, ``all_none`` (warned: nothing was judged), the judge's last
      error and counts (see ``_failures``).
    """
    queries = [as_query(c) for c in cases]  # validate everything before the first (paid) call
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
    out["failures"] = _failures(judge, counts["none"], n)
    return out


def _failures(judge, n_none: int, n: int) -> dict:
    """What kept verdicts from a run: its ``none`` count, whether every case is ``none`` (then a
    warning with the judge's last error: such a run measured nothing, it is not "all ties"), the
    judge's own counts and last error when it keeps them (``OpenAIJudge``)."""
    stats, last = dict(getattr(judge, "stats", None) or {}), getattr(judge, "last_error", None)
    all_none = n > 0 and n_none == n
    if all_none:
        warnings.warn(f"judge {getattr(judge, 'name', judge)!r} gave no verdict for any of the {n} case(s) (every "
                      f"one is 'none'): this comparison measured nothing. Last error: {last or 'none recorded'}; "
                      f"counts: {stats or 'none kept'}", stacklevel=3)
    return {"n_none": n_none, "all_none": all_none, "last_error": last, "stats": stats}


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
        text = chat_prompt(self.tokenizer, msgs[1]["content"], system=msgs[0]["content"])
        # a chat template writes its own special tokens; a bare prompt gets the tokenizer's (BOS)
        return self.tokenizer(text, add_special_tokens=not getattr(self.tokenizer, "chat_template", None))["input_ids"]

    def _batches(self, queries):
        ids = [self.prompt_ids(*q) for q in queries]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths share a batch
        device = next(self.model.parameters()).device
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            rows = [ids[i] for i in idx]  # left padding: the last position is every row's next token
            yield idx, (pad(rows, self.pad_id, "left").to(device), pad([[1] * len(r) for r in rows], 0, "left").to(device))

    def letter_logprobs(self, queries: Sequence[tuple]) -> torch.Tensor:
        """(N, 2) log P(first answer token = A-letter), log P(= B-letter) (variants summed)."""
        out = torch.empty(len(queries), 2)
        self.model.eval()
        for idx, (input_ids, mask) in self._batches(queries):
            # Positions count real tokens only, so a left-padded row sees the same positions as alone
            # (RoPE models do not need it; models with absolute position embeddings do).
            pos = positions(mask)
            kw = {"logits_to_keep": 1} if self._keeps_logits else {}  # skip the LM head elsewhere
            with torch.inference_mode():
                logits = self.model(input_ids=input_ids, attention_mask=mask, position_ids=pos, **kw).logits[:, -1, :]
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()  # (b, V)
            for L, col in (("A", 0), ("B", 1)):
                out[idx, col] = torch.logsumexp(logp[:, self.letter_ids[L]], dim=-1)
        return out

    def generate_answers(self, queries: Sequence[tuple]) -> list[str]:
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
        queries = [as_query(q) for q in queries]
        if not queries:
            return []
        if self.mode == "generate":
            return [parse_choice(a) for a in self.generate_answers(queries)]
        lp = self.letter_logprobs(queries)
        diff = (lp[:, 0] - lp[:, 1]).tolist()
        return ["tie" if abs(d) <= self.tie_margin else ("A" if d > 0 else "B") for d in diff]

    def compare(self, history_titles, cand_a, cand_b) -> str:
        return self.compare_batch([(history_titles, cand_a, cand_b)])[0]
