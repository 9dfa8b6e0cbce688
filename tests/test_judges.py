"""Pairwise judges (recinterp.judges): answer parsing, both-order aggregation, a local HF judge
on a tiny random Llama, and the OpenAI-compatible judge against a fake server on 127.0.0.1."""
import json
import re
import socket
import time
from types import SimpleNamespace

import pytest
import torch

from recinterp.judges import LocalLLMJudge, build_messages, judge_pairs, parse_choice
from recinterp.openai_judge import JudgeRejected, JudgeUnreachable, OpenAIJudge, openai_judge_configured
from fake_openai import FakeOpenAI  # tests/ has no __init__.py: pytest puts it on sys.path

HIST = ["Toy Story", "Babe", "Heat"]


# --------------------------------------------------------------------------- parse_choice

@pytest.mark.parametrize("answer,expected", [
    ("A", "A"), ("B", "B"), ("b.", "B"), ("Option B", "B"), ("(a)", "A"), ("[b]", "B"), ("**B**", "B"),
    ("Answer: A.", "A"), ("Answer:\nB", "B"), ("Final answer: B", "B"), ("The answer is A", "A"),
    ("I'd pick option A because it is animated", "A"), ("The better fit is B.", "B"),
    ("I think B fits better than A.", "B"), ("A is better", "A"), ("A\nBecause the user...", "A"),
    ("B - Toy Story", "B"), ("A (Toy Story)", "A"), ("A: Toy Story", "A"), ("pick A over B", "A"),
    ("Option A is better than option B", "A"),
    ("Based on the history, option a matches best.", "A"), ("The user likes action, so A.", "A"),
    ("Both are fine, but B fits better", "B"), ("A good choice would be B.", "B"),
    ("both", "tie"), ("tie", "tie"), ("It's a tie.", "tie"), ("neither", "tie"), ("equally", "tie"),
    ("A and B are equally good", "tie"), ("Neither A nor B fits", "tie"), ("Both A and B fit", "tie"),
    ("", "none"), ("   ", "none"), (None, "none"), ("banana", "none"), ("I choose a movie", "none"),
    ("A Beautiful Mind fits better", "none"), ("Between A and B, I'd go with B", "none"),
])
def test_parse_choice(answer, expected):
    assert parse_choice(answer) == expected


def test_prompt_shows_history_and_both_candidates():
    msgs = build_messages(HIST, "Fargo", "Casino", item_word="movie")
    user = msgs[-1]["content"]
    assert "1. Toy Story\n2. Babe\n3. Heat" in user and "A: Fargo\nB: Casino" in user and "movies" in user


# --------------------------------------------------------------------------- judge_pairs

class ScriptedJudge:
    """Prefers the candidate containing 'good'; optional position bias; 'none' for 'broken'."""

    name = "scripted"

    def __init__(self, always_first=False):
        self.always_first, self.calls = always_first, []

    def compare(self, history, a, b):
        self.calls.append((a, b))
        if "broken" in a or "broken" in b:
            return "none"
        if self.always_first:
            return "A"
        return "A" if "good" in a else ("B" if "good" in b else "tie")


def test_judge_pairs_consistent_judge():
    cases = [(HIST, "good one", "bad one"), (HIST, "bad two", "good two"), (HIST, "good three", "bad three"),
             {"history": HIST, "a": "x", "b": "y"}]
    res = judge_pairs(ScriptedJudge(), cases)
    assert res["counts"] == {"A": 2, "B": 1, "tie": 1, "none": 0}
    assert res["rates"]["A"]["mean"] == pytest.approx(0.5) and res["rates"]["A"]["n"] == 4
    assert res["a_minus_b"]["mean"] == pytest.approx((1 - 1 + 1 + 0) / 4)
    assert res["position_bias"]["share_first"]["mean"] == pytest.approx(0.5)  # 6 letter answers, 3 first
    assert res["position_bias"]["n_letter_answers"] == 6
    assert res["order_agreement"]["mean"] == 1.0
    assert res["per_case"][0] == {"raw": ["A", "B"], "combined": "A"}


def test_judge_pairs_position_biased_judge_gives_ties():
    judge = ScriptedJudge(always_first=True)
    res = judge_pairs(judge, [(HIST, "good", "bad"), (HIST, "bad", "good")])
    assert res["counts"] == {"A": 0, "B": 0, "tie": 2, "none": 0}
    assert res["position_bias"]["share_first"]["mean"] == 1.0
    assert res["order_agreement"]["mean"] == 0.0
    assert judge.calls == [("good", "bad"), ("bad", "good"), ("bad", "good"), ("good", "bad")]
    single = judge_pairs(judge, [(HIST, "good", "bad"), (HIST, "bad", "good")], both_orders=False)
    assert single["counts"]["A"] == 2 and single["order_agreement"] is None


def test_judge_pairs_no_answer_is_kept_apart():
    res = judge_pairs(ScriptedJudge(), [(HIST, "good", "bad"), (HIST, "broken", "bad")])
    assert res["counts"] == {"A": 1, "B": 0, "tie": 0, "none": 1}
    assert res["rates"]["none"]["mean"] == 0.5
    assert res["a_minus_b"]["n"] == 1  # answered cases only
    assert res["failures"] == {"n_none": 1, "all_none": False, "last_error": None, "stats": {}}
    with pytest.warns(UserWarning, match=r"no verdict for any of the 1 case.*Last error: none recorded"):
        assert judge_pairs(ScriptedJudge(), [(HIST, "broken", "bad")])["failures"]["all_none"]


def test_judge_pairs_rejects_bad_input_before_calling():
    judge = ScriptedJudge()
    with pytest.raises(ValueError, match="history_titles"):
        judge_pairs(judge, [(HIST, "a", "b"), ([], "a", "b")])
    with pytest.raises(ValueError, match="cand_b"):
        judge_pairs(judge, [(HIST, "a", "  ")])
    assert judge.calls == []

    class Broken:
        name = "broken"

        def compare(self, h, a, b):
            return "maybe"

    with pytest.raises(ValueError, match="maybe"):
        judge_pairs(Broken(), [(HIST, "a", "b")])
    empty = judge_pairs(judge, [])
    assert empty["n_cases"] == 0 and empty["rates"]["A"]["n"] == 0


# --------------------------------------------------------------------------- LocalLLMJudge

def _tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["[UNK]", "<pad>", "<|im_start|>", "<|im_end|>"]
    corpus = " ".join(m["content"] for m in build_messages(HIST, "good film", "bad film", "movie"))
    corpus += " system user assistant Toy Story Babe Heat Fargo Casino good bad film one two three Returns"
    words = sorted({w for w, _ in pre_tokenizers.Whitespace().pre_tokenize_str(corpus)})
    vocab = {w: i for i, w in enumerate(specials + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.add_special_tokens(specials)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="<pad>", eos_token="<|im_end|>")
    tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                         "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    return tok


def _tiny_llama(vocab_size):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, pad_token_id=1)
    return LlamaForCausalLM(cfg).eval()


QUERIES = [(HIST, "good film", "bad film"), (HIST[:1], "Fargo", "Casino"), (HIST + ["Fargo"], "Casino", "Babe"),
           (HIST[:2], "bad one", "good two three"), (["Heat"], "Toy Story", "Returns")]


def test_local_judge_logprob_is_batch_invariant_and_deterministic():
    tok = _tiny_tokenizer()
    model = _tiny_llama(len(tok))
    assert LocalLLMJudge(model, tok).letter_ids["A"] == [tok.convert_tokens_to_ids("A")]
    one = LocalLLMJudge(model, tok, batch_size=1).letter_logprobs(QUERIES)
    many_judge = LocalLLMJudge(model, tok, batch_size=3)
    many = many_judge.letter_logprobs(QUERIES)
    assert one.shape == (5, 2) and (one < 0).all()
    # Left padding with masked attention and real-token positions: padded rows equal lone rows.
    assert torch.allclose(one, many, atol=1e-4)
    assert many_judge.compare_batch(QUERIES) == many_judge.compare_batch(QUERIES)
    # the verdict is the letter of higher log-probability (tie_margin 0: exact ties only)
    assert many_judge.compare_batch(QUERIES) == ["A" if a > b else "B" if b > a else "tie" for a, b in many.tolist()]
    assert many_judge.compare(*QUERIES[0]) == many_judge.compare_batch(QUERIES)[0]
    ids = many_judge.prompt_ids(*QUERIES[0])
    assert tok.decode(ids[-2:]) .replace(" ", "") == "<|im_start|>assistant"


def test_local_judge_generate_mode_returns_valid_choices():
    tok = _tiny_tokenizer()
    judge = LocalLLMJudge(_tiny_llama(len(tok)), tok, mode="generate", batch_size=2, max_new_tokens=3)
    answers = judge.generate_answers(QUERIES[:3])
    # batched, left-padded greedy decoding answers as one question at a time does, in the caller's order
    alone = LocalLLMJudge(judge.model, tok, mode="generate", batch_size=1, max_new_tokens=3)
    assert answers == alone.generate_answers(QUERIES[:3]) and len(answers) == 3
    assert judge.compare_batch(QUERIES[:3]) == [parse_choice(a) for a in answers]
    with pytest.raises(ValueError, match="unknown mode"):
        LocalLLMJudge(judge.model, tok, mode="sample")


class _PrefersGood(torch.nn.Module):
    """Stands in for a causal LM: its next-token logits favour the letter whose slot says 'good'."""

    def __init__(self, tok, always_a=False):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.tok, self.always_a, self.V = tok, always_a, len(tok)
        self.ids = {w: tok.convert_tokens_to_ids(w) for w in ("A", "B", ":", "good")}

    def forward(self, input_ids, attention_mask, position_ids):
        logits = torch.zeros(*input_ids.shape, self.V)
        for r, row in enumerate(input_ids.tolist()):
            def slot(L):  # position of the "L :" label
                return next(p for p in range(len(row) - 1) if row[p] == self.ids[L] and row[p + 1] == self.ids[":"])

            pa, pb = slot("A"), slot("B")
            good_in_a = any(pa < p < pb for p, t in enumerate(row) if t == self.ids["good"])
            winner = "A" if (self.always_a or good_in_a) else "B"
            logits[r, -1, self.ids[winner]] = 5.0
        return SimpleNamespace(logits=logits)


def test_local_judge_maps_orders_back():
    tok = _tiny_tokenizer()
    cases = [(HIST, "good film", "bad film"), (HIST, "bad film", "good film"), (HIST, "good one", "bad two")]
    res = judge_pairs(LocalLLMJudge(_PrefersGood(tok), tok, batch_size=2), cases)
    assert res["counts"] == {"A": 2, "B": 1, "tie": 0, "none": 0}
    assert res["position_bias"]["share_first"]["mean"] == 0.5
    biased = judge_pairs(LocalLLMJudge(_PrefersGood(tok, always_a=True), tok), cases)
    assert biased["counts"]["tie"] == 3 and biased["position_bias"]["share_first"]["mean"] == 1.0


# --------------------------------------------------------------------------- OpenAIJudge

@pytest.fixture(autouse=True)
def _no_judge_env(monkeypatch):
    for var in ("RECINTERP_JUDGE_BASE_URL", "RECINTERP_JUDGE_MODEL", "RECINTERP_JUDGE_API_KEY",
                "OPENAI_BASE_URL", "OPENAI_API_KEY", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)


def _judge(url, **kw):
    kw = {"model": "fake-judge", "timeout": 2.0, "max_retries": 2, **kw}
    return OpenAIJudge(base_url=url, **kw)


def test_openai_normal_and_parsed_answers():
    answers = iter(["A", "I'd pick option B because it is a comedy."])
    with FakeOpenAI(lambda req, n: ("ok", next(answers))) as srv:
        judge = _judge(srv.url, api_key="sk-test")
        assert judge.compare(HIST, "Fargo", "Casino") == "A"
        assert judge.compare(HIST, "Casino", "Fargo") == "B"
        assert judge.compare(HIST, "Fargo", "Casino") == "A"  # same question: answered from memory
    assert len(srv.requests) == 2 and judge.stats["cached"] == 1
    req = srv.requests[0]
    assert req["model"] == "fake-judge" and req["temperature"] == 0
    assert "A: Fargo\nB: Casino" in req["messages"][-1]["content"]
    assert srv.headers[0]["authorization"] == "Bearer sk-test"
    assert judge.stats["ok"] == 2


def test_openai_timeout_gives_none_after_retries():
    with FakeOpenAI(lambda req, n: ("sleep", 0.6, "A")) as srv:
        judge = _judge(srv.url, timeout=0.2, max_retries=1)
        t0 = time.time()
        assert judge.compare(HIST, "Fargo", "Casino") == "none"
        assert time.time() - t0 < 3  # two 0.2 s attempts and the client's backoff between them
    assert len(srv.requests) == 2 and judge.stats["timeout"] == 1 and judge.stats["gave_up"] == 1
    assert "within 0.2 s" in judge.last_error


@pytest.mark.parametrize("code", [500, 503, 429])
def test_openai_retries_server_errors_then_succeeds(code):
    with FakeOpenAI(lambda req, n: ("status", code) if n == 0 else ("ok", "B")) as srv:
        judge = _judge(srv.url)
        assert judge.compare(HIST, "Fargo", "Casino") == "B"
    assert len(srv.requests) == 2 and judge.stats[f"http_{code}"] == 1 and judge.stats["ok"] == 1


def test_openai_client_error_is_not_retried():
    with FakeOpenAI(lambda req, n: ("status", 400)) as srv:
        judge = _judge(srv.url)
        assert judge.compare(HIST, "Fargo", "Casino") == "none"
    assert len(srv.requests) == 1 and judge.last_error.startswith(f"HTTP 400 from {srv.url}/chat/completions")


@pytest.mark.parametrize("body", [b"not json", b'{"choices": []}', b'{"object": "error"}',
                                  json.dumps({"choices": [{"message": {"content": None}}]}).encode()])
def test_openai_malformed_answer_is_none(body):
    with FakeOpenAI(lambda req, n: ("raw", body)) as srv:
        judge = _judge(srv.url)
        assert judge.compare(HIST, "Fargo", "Casino") == "none"
    assert len(srv.requests) == 1 and judge.stats["malformed"] == 1


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def test_openai_nothing_listening_raises_after_retries_naming_url_and_error():
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    judge = _judge(url, max_retries=1)
    t0 = time.time()
    with pytest.raises(JudgeUnreachable, match=re.escape(url) + r".*2 attempt.*last error: .*(Refused|refused)"):
        judge.compare(HIST, "Fargo", "Casino")
    assert time.time() - t0 < 5
    assert judge.stats["connection_error"] == 1 and judge.stats["gave_up"] == 1


def test_openai_nothing_listening_stops_a_batch():
    judge = _judge(f"http://127.0.0.1:{_closed_port()}/v1", max_retries=0, workers=2)
    with pytest.raises(JudgeUnreachable):
        judge_pairs(judge, [(HIST, "Fargo", "Casino"), (HIST, "Heat", "Casino")])


def test_openai_batch_keeps_the_other_results():
    def behave(req, n):
        user = req["messages"][-1]["content"]
        if "Broken" in user:
            return ("status", 400)
        return ("ok", "A" if user.index("good") < user.index("B: ") else "B")

    cases = [(HIST, "good film", "Casino"), (HIST, "Broken", "good film"), (HIST, "Fargo", "good one")]
    with FakeOpenAI(behave) as srv:
        res = judge_pairs(_judge(srv.url, workers=3), cases)
    assert [c["combined"] for c in res["per_case"]] == ["A", "none", "B"]
    assert res["counts"] == {"A": 1, "B": 1, "tie": 0, "none": 1}
    assert len(srv.requests) == 6


def test_openai_settings_from_environment(monkeypatch):
    with FakeOpenAI(lambda req, n: ("ok", "B")) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/unused")
        monkeypatch.setenv("RECINTERP_JUDGE_BASE_URL", srv.url)  # the project variable wins
        monkeypatch.setenv("RECINTERP_JUDGE_MODEL", "env-model")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
        assert openai_judge_configured()
        judge = OpenAIJudge(timeout=2.0)
        assert judge.compare(HIST, "Fargo", "Casino") == "B"
    assert srv.requests[0]["model"] == "env-model" and srv.headers[0]["authorization"] == "Bearer sk-env"
    assert judge.name == "openai:env-model"


def test_openai_bad_settings_raise_clearly(monkeypatch):
    assert not openai_judge_configured()
    with pytest.raises(ValueError, match="RECINTERP_JUDGE_MODEL"):
        OpenAIJudge(base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="http"):
        OpenAIJudge(base_url="file:///etc", model="m")


def test_openai_cache_makes_reruns_free(tmp_path):
    cache = tmp_path / "judge.jsonl"
    with FakeOpenAI(lambda req, n: ("ok", "A")) as srv:
        assert _judge(srv.url, cache_path=cache).compare(HIST, "Fargo", "Casino") == "A"
        with open(cache, "a") as f:
            f.write('{"key": "cut')  # an interrupted write is skipped, not fatal
        again = _judge(srv.url, cache_path=cache)
        assert again.compare(HIST, "Fargo", "Casino") == "A"
        assert again.compare(HIST, "Casino", "Fargo") == "A"  # a new question is asked
    assert len(srv.requests) == 2 and again.stats["cached"] == 1
