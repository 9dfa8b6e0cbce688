"""Task 3's encoder route on tiny encoders: appending an embedding equals appending its id."""
import pytest
import torch

from recinterp.instantiation import residual_states, trim_full
from recinterp.models import build_encoder


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "caser"])
def test_appending_a_real_items_embedding_equals_appending_its_id(name):
    torch.manual_seed(0)
    enc = build_encoder(name, n_items=20, d=8, max_len=5).eval()
    pad = enc.pad_id
    ids = torch.tensor([[1, 2, pad, pad, pad], [3, 4, 5, 6, 7]])
    lens = torch.tensor([2, 5])
    new = torch.tensor([9, 11])
    h_b, l_b, h_a, l_a = residual_states(enc, ids, lens, enc.item_embeddings(new))
    assert l_a.tolist() == [3, 5] and l_b.tolist() == [2, 4]
    # the same windows written as ids: [1,2,9] / [1,2]; full window shifts: [4,5,6,7,11] / [4,5,6,7]
    ids_a = torch.tensor([[1, 2, 9, pad, pad], [4, 5, 6, 7, 11]])
    ids_b = torch.tensor([[1, 2, pad, pad, pad], [4, 5, 6, 7, pad]])
    with torch.no_grad():
        want_a = enc.hidden_states(ids_a, l_a)
        want_b = enc.hidden_states(ids_b, l_b)
    torch.testing.assert_close(h_a, want_a)
    torch.testing.assert_close(h_b, want_b)


def test_trim_full_and_shape_checks():
    enc = build_encoder("sasrec", n_items=10, d=4, max_len=3)
    ids, lens = trim_full(enc, torch.tensor([[1, 2, 3], [4, 10, 10]]), torch.tensor([3, 1]))
    assert ids.tolist() == [[2, 3, 10], [4, 10, 10]] and lens.tolist() == [2, 1]
    with pytest.raises(ValueError, match="encoder's item space"):
        residual_states(enc, torch.tensor([[1, 2, 10]]), torch.tensor([2]), torch.zeros(1, 5))
    with pytest.raises(ValueError):
        residual_states(enc, torch.tensor([[1, 2, 10]]), torch.tensor([0]), torch.zeros(1, 4))


def test_route_matches_task2_features_for_real_items():
    """Appending a real item's embedding gives exactly task 2's residual features."""
    from recinterp.data.types import Split
    from recinterp.tasks.residual import residual_cases, residual_features

    torch.manual_seed(0)
    enc = build_encoder("sasrec", n_items=30, d=8, max_len=5).eval()
    pad = enc.pad_id
    seqs = torch.tensor([[1, 2, 3, pad, pad], [4, 5, 6, 7, 8]])
    lens = torch.tensor([3, 5])
    split = Split(seqs, lens, torch.tensor([0, 0]))
    want = residual_cases(enc, split, input="pair").features
    hist = seqs.clone()
    hist[torch.arange(2), lens - 1] = pad
    last = seqs[torch.arange(2), lens - 1]
    h_b, l_b, h_a, l_a = residual_states(enc, hist, lens - 1, enc.item_embeddings(last))
    torch.testing.assert_close(residual_features(h_b, l_b, h_a, l_a, "pair"), want)


def test_candidates_and_naming_end_to_end_on_tiny_models():
    from recinterp.instantiation import candidate_items, name_items, sources
    from recinterp.interpreter import Interpreter
    from recinterp.llm import tiny_llm
    from recinterp.models import DreamRec, DreamRecConfig
    from recinterp.adapter import build_adapter

    torch.manual_seed(0)
    enc = build_encoder("sasrec", n_items=12, d=8, max_len=4).eval()
    dr = DreamRec(DreamRecConfig(n_items=12, d=8, max_len=4, T=5, item_source="frozen"),
                  item_table=enc.item_embeddings.weight[:12].detach()).eval()
    ids = torch.tensor([[1, 2, 12, 12], [3, 4, 5, 6]])
    lens = torch.tensor([2, 4])
    items = candidate_items(enc, dr, ids, lens, seed=1)
    assert sources(enc.name) == ("dreamrec", "sasrec", "random") and set(items) == set(sources(enc.name))
    for src in sources(enc.name):
        assert items[src]["emb"].shape == (2, 8) and items[src]["ids"].shape == (2,)
    torch.testing.assert_close(items["sasrec"]["emb"], enc.item_embeddings(items["sasrec"]["ids"]))
    again = candidate_items(enc, dr, ids, lens, seed=1)
    torch.testing.assert_close(again["dreamrec"]["emb"], items["dreamrec"]["emb"])  # seeded
    llm = tiny_llm()
    interp = Interpreter(llm, build_adapter(kind="linear", d_in=16, d_llm=llm.hidden_size, n_positions=1,
                                            n_tokens=2, input="pair"))
    titles = [f"Title {i}" for i in range(12)]
    out = name_items(interp, enc, ids, lens, items["random"], titles, max_new_tokens=3)
    # the answers are the interpreter's to task 2's prompt over task 2's features of the appended window
    from recinterp.cases import Cases, make_examples
    from recinterp.tasks.residual import residual_features

    h_b, l_b, h_a, l_a = residual_states(enc, ids, lens, items["random"]["emb"])
    cases = Cases("residual", "pair", residual_features(h_b, l_b, h_a, l_a, "pair"), items["random"]["ids"][:, None],
                  torch.full((2, 1), -1), meta={"dataset": ""})
    want = interp.generate(make_examples(cases, range(2), titles, llm, 2, with_targets=False), max_new_tokens=3)
    assert out == want and len(out) == 2
    assert name_items(interp, enc, ids, lens, items["random"], titles, max_new_tokens=3, control="zero") == \
        interp.generate(make_examples(cases, range(2), titles, llm, 2, with_targets=False), max_new_tokens=3,
                        control="zero")


@pytest.mark.parametrize("answer, title", [
    ("  Heat; Casino\nmore", "Heat"),  # the trained format: titles joined by "; "
    ("", ""),
    ('The movie is "The Night of the Abyss" - a 2015 film directed by', "The Night of the Abyss"),  # quoted span
    ("The movie behind the history update is \u201cThe Last Lion\u201d by someone", "The Last Lion"),
    ("The movie is The Night Circus.", "The Night Circus"),  # lead-in, sentence end
    ("The added movie is Heat (1995) by Michael Mann", "Heat (1995)"),  # lead-in, " by " ends the title
    ("The game behind the history update is Outland - a platformer", "Outland"),
    ("It's Toy Story", "Toy Story"),
    # no lead-in naming an item kind: the line is kept whole (titles may hold "is", "...", " - ", " by ")
    ("The Matrix is a film", "The Matrix is a film"),
    ("When Harry Met Sally...", "When Harry Met Sally..."),
    ("Star Wars - Episode IV", "Star Wars - Episode IV"),
])
def test_first_title_takes_the_title_out_of_a_sentence(answer, title):
    from recinterp.instantiation import first_title

    assert first_title(answer) == title


def test_task3_measurements_by_hand():
    import math

    from recinterp.data.types import Catalogue
    from recinterp.instantiation import (content_overlap, history_tags, named_is_next, novelty_summary,
                                         proxy_agreement, retrieval, route_fidelity)

    titles = ["Heat", "Casino", "Fargo", "Alien"]
    # route fidelity: answers name their own item in 2 of 3 cases; paired with another case's item, in none
    fid = route_fidelity(["Heat", "Casino!", "nothing"], torch.tensor([0, 1, 2]), titles)
    assert fid["hit"]["mean"] == pytest.approx(2 / 3) and fid["shuffled"]["mean"] == 0.0
    assert fid["diff"]["mean"] == pytest.approx(2 / 3) and fid["hit"]["n"] == 3
    m = [{"idx": 0, "in_catalogue": True, "empty": False}, {"idx": 3, "in_catalogue": False, "empty": False},
         {"idx": None, "in_catalogue": False, "empty": True}]
    assert novelty_summary(m)["mean"] == 0.5 and novelty_summary(m)["n"] == 2  # the empty answer is left out
    assert math.isnan(novelty_summary(m[2:])["mean"]) and novelty_summary(m[2:])["n"] == 0
    assert named_is_next(m, [0, 3, 1])["mean"] == pytest.approx(1 / 3)  # a novel title is never the next item
    # retrieval through the package's ranking: a tie counts against the true item
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.2], [0.3, 0.3, 0.1, 0.0]])
    assert retrieval(scores, torch.tensor([0, 0]), ks=(1, 2)) == {"retrieval_HR@1": 0.5, "retrieval_HR@2": 1.0}
    # genre overlap of the named and the appended item with the history
    cat = Catalogue(titles, titles, [["crime"], ["crime", "drama"], ["comedy"], []])
    hist = history_tags(cat, torch.tensor([[0, 1, 4]]), torch.tensor([2]))
    assert hist == [[["crime"], ["crime", "drama"]]]
    c = content_overlap(hist * 2, [m[0], m[1]], [2, 1], cat)
    assert c["named_item"]["mean"] == 0.5 and c["named_item"]["n"] == 1  # "Heat" vs {crime, drama}; novel one left out
    assert c["appended_item"]["mean"] == pytest.approx(0.5) and c["appended_item"]["n"] == 2  # Fargo 0, Casino 1
    assert content_overlap(hist, [m[1]], [3], cat) == {"named_item": None, "appended_item": None}  # Alien has no genres
    # judge vs proxy: A = Casino (overlap 1), B = Fargo (0); agreeing, disagreeing, a tie and a novel title left out
    a, b = {"idx": 1, "in_catalogue": True}, {"idx": 2, "in_catalogue": True}
    agree = proxy_agreement(["A", "B", "tie", "A"], hist * 4, [a, a, a, m[1]], [b, b, b, b], cat)
    assert agree["mean"] == 0.5 and agree["n"] == 2
    assert proxy_agreement(["tie"], hist, [a], [b], cat) is None


def test_describe_items_works_without_a_chat_template():
    """The description prompt goes through prompts.chat_prompt: a tokenizer with no chat template gets the plain prompt."""
    from recinterp.instantiation import describe_items
    from recinterp.llm import tiny_llm

    llm = tiny_llm()
    template, llm.tokenizer.chat_template = llm.tokenizer.chat_template, None
    try:
        with pytest.raises(ValueError, match="chat_template"):  # what calling the template directly did
            llm.tokenizer.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=True)
        out = describe_items(llm, ["Heat", "", "Fargo"], "movie", 3, max_new_tokens=2)
    finally:
        llm.tokenizer.chat_template = template
    assert [o["ideal item"] for o in out] == ["Heat", "Fargo"] and all(isinstance(o["description"], str) for o in out)
