"""recinterp.prompts: placeholder expansion, chat wrapping, paraphrase sets, targets."""
import random

import pytest

from recinterp import prompts as P
from recinterp.llm import SLOT_TOKEN, tiny_tokenizer

ALL = (P.ITEM, P.RECOVERY, P.RESIDUAL_TWO, P.RESIDUAL_ONE)


@pytest.mark.parametrize("tp", ALL, ids=lambda t: f"{t.task}-{len(t.slots)}")
def test_every_template_expands_to_k_slots_per_placeholder(tp):
    for tmpl in tp.train + tp.eval:
        text = P.expand(tmpl, tp.slots, 3, SLOT_TOKEN, "movie", "movies")
        assert text.count(SLOT_TOKEN) == 3 * len(tp.slots)
        assert "<" + tp.slots[0] + ">" not in text and "{noun" not in text


@pytest.mark.parametrize("tp", ALL, ids=lambda t: f"{t.task}-{len(t.slots)}")
def test_held_out_phrasings_are_not_training_ones(tp):
    assert len(tp.train) >= 3 and len(tp.eval) >= 2
    assert not set(tp.train) & set(tp.eval)


def test_placeholders_must_match_the_slots_in_order():
    with pytest.raises(ValueError, match="placeholders"):
        P.expand("A <after> B <before>", ("before", "after"), 1, SLOT_TOKEN)
    with pytest.raises(ValueError, match="placeholders"):
        P.expand("only <before>", ("before", "after"), 1, SLOT_TOKEN)
    with pytest.raises(ValueError, match="placeholders"):
        P.expand("<seq> and <seq>", ("seq",), 1, SLOT_TOKEN)
    with pytest.raises(ValueError, match="n_tokens"):
        P.expand("<seq>", ("seq",), 0, SLOT_TOKEN)


def test_nouns_are_filled():
    text = P.expand("Which {noun} among {nouns}? <emb>", ("emb",), 1, SLOT_TOKEN, "game", "games")
    assert text == f"Which game among games? {SLOT_TOKEN}"


def test_chat_prompt_uses_a_short_system_message_and_ends_at_the_answer():
    tok = tiny_tokenizer()
    text = P.build_prompt(tok, P.RECOVERY.eval[0], ("seq",), 2, SLOT_TOKEN, "movie", "movies")
    assert text.startswith("<|im_start|>system\n" + P.SYSTEM + "<|im_end|>")
    assert text.endswith("<|im_start|>assistant\n")
    assert text.count(SLOT_TOKEN) == 2


def test_prompt_without_chat_template():
    class Bare:
        chat_template = None
    assert P.chat_prompt(Bare(), "Q?", system="S") == "S\nQ?\nAnswer:"


def test_pick_template():
    rng = random.Random(0)
    seen = {P.pick_template(P.RECOVERY, "train", rng) for _ in range(200)}
    assert seen == set(P.RECOVERY.train)
    assert P.pick_template(P.RECOVERY, "eval", index=1) == P.RECOVERY.eval[1]
    with pytest.raises(ValueError, match="phase"):
        P.pick_template(P.RECOVERY, "test")


def test_targets():
    assert P.list_target(["Heat", "Hussard sur le toit, Le"]) == "Heat; Hussard sur le toit, Le"
    assert P.title_target("Heat") == "Heat"
    with pytest.raises(ValueError):
        P.list_target([])
    with pytest.raises(ValueError):
        P.title_target("")
