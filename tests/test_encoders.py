"""The shared encoder interface: shapes, padding, causality, entry points, checks, checkpoints."""
import json

import pytest
import torch

from recinterp.models import ENCODERS, DreamRec, DreamRecConfig, build_encoder, load_checkpoint, save_checkpoint


N_ITEMS, L, D = 50, 10, 16
NAMES = sorted(ENCODERS)


def batch(B=6, seed=0, lens=None):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, N_ITEMS, (B, L), generator=g)
    lens = torch.tensor(lens) if lens is not None else torch.randint(1, L + 1, (B,), generator=g)
    ids[torch.arange(L)[None] >= lens[:, None]] = N_ITEMS  # right padding
    return ids, lens


def make(name, **kw):
    torch.manual_seed(0)
    return build_encoder(name, n_items=N_ITEMS, d=D, max_len=L, **kw).eval()


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtypes(name):
    enc = make(name)
    ids, lens = batch(lens=[1, 3, 10, 7, 2, 10])
    h = enc.hidden_states(ids, lens)
    assert h.shape == (6, L, D) and h.dtype == torch.float32
    assert enc.name == name and enc.n_items == N_ITEMS and enc.d == D
    assert enc.item_embeddings.num_embeddings == N_ITEMS + 1 and enc.item_embeddings.padding_idx == N_ITEMS
    assert torch.all(enc.item_embeddings.weight[N_ITEMS] == 0)
    pad = torch.arange(L)[None] >= lens[:, None]
    assert torch.all(h[pad] == 0) and torch.all(h[~pad].abs().sum(-1) > 0)
    u = enc.user_repr(h, lens)
    assert u.shape == (6, D) and torch.equal(u[2], h[2, 9]) and torch.equal(u[0], h[0, 0])
    s = enc.scores(u)
    assert s.shape == (6, N_ITEMS) and s.dtype == torch.float32
    # user_state (the training shortcut) agrees with the interface
    assert torch.allclose(enc.user_state(ids, lens), u, atol=1e-6)
    # shorter windows than max_len work too
    assert enc.hidden_states(ids[:, :4], lens.clamp(max=4)).shape == (6, 4, D)


@pytest.mark.parametrize("name", NAMES)
def test_padding_invariance(name):
    enc = make(name)
    ids, lens = batch(B=8, seed=1)
    other = ids.clone()
    pad = torch.arange(L)[None] >= lens[:, None]
    other[pad] = torch.randint(0, N_ITEMS, (int(pad.sum()),))  # any real id in padded slots
    assert not torch.equal(ids, other)
    assert torch.equal(enc.hidden_states(ids, lens), enc.hidden_states(other, lens))


@pytest.mark.parametrize("name", NAMES)
def test_causality(name):
    """Perturbing position j leaves states 0..j-1 unchanged (and changes state j)."""
    enc = make(name)
    ids, lens = batch(B=4, seed=2, lens=[10, 10, 8, 6])
    h = enc.hidden_states(ids, lens)
    for j in (1, 4, 5):
        pert = ids.clone()
        pert[:, j] = (pert[:, j] + 1) % N_ITEMS
        hp = enc.hidden_states(pert, lens)
        assert torch.equal(h[:, :j], hp[:, :j]), f"position {j} leaked backwards"
        assert not torch.allclose(h[:, j], hp[:, j])


@pytest.mark.parametrize("name", NAMES)
def test_ids_and_embeddings_agree(name):
    enc = make(name)
    ids, lens = batch(B=5, seed=3)
    x = enc.item_embeddings(ids)
    assert torch.equal(enc.hidden_states(ids, lens), enc.hidden_states_from_embeddings(x, lens))
    # padded rows may hold anything, even NaN, without leaking
    x2 = x.clone()
    x2[torch.arange(L)[None].expand(5, L) >= lens[:, None]] = float("nan")
    assert torch.equal(enc.hidden_states(ids, lens), enc.hidden_states_from_embeddings(x2, lens))
    # an item without an id (any vector) appended after a history gives a new last state
    short = lens.clamp(max=L - 1)
    x3 = x.clone()
    x3[torch.arange(5), short] = torch.randn(5, D)
    h3 = enc.hidden_states_from_embeddings(x3, short + 1)
    assert torch.equal(h3[torch.arange(5), short - 1], enc.hidden_states(ids, short)[torch.arange(5), short - 1])


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_raises(name):
    enc = make(name)
    ids, lens = batch(B=3, seed=4, lens=[3, 10, 5])
    bad = ids.clone(); bad[0, 0] = N_ITEMS + 1
    with pytest.raises(ValueError, match="out of range"):
        enc.hidden_states(bad, lens)
    bad = ids.clone(); bad[0, 0] = -1
    with pytest.raises(ValueError, match="out of range"):
        enc.hidden_states(bad, lens)
    bad = ids.clone(); bad[1, 4] = N_ITEMS
    with pytest.raises(ValueError, match="padding id"):
        enc.hidden_states(bad, lens)
    with pytest.raises(ValueError, match="lens"):
        enc.hidden_states(ids, torch.tensor([0, 3, 3]))
    with pytest.raises(ValueError, match="lens"):
        enc.hidden_states(ids, torch.tensor([11, 3, 3]))
    with pytest.raises(ValueError, match="lens"):
        enc.hidden_states(ids, torch.tensor([3, 3]))
    with pytest.raises(ValueError, match="max_len"):
        enc.hidden_states(torch.zeros(3, L + 1, dtype=torch.long), lens)
    with pytest.raises(ValueError, match="integer"):
        enc.hidden_states(ids.float(), lens)
    with pytest.raises(ValueError, match="x must be"):
        enc.hidden_states_from_embeddings(torch.zeros(3, L, D + 1), lens)
    with pytest.raises(ValueError, match="target"):
        enc.loss(ids, lens, torch.tensor([0, 1, N_ITEMS]))


def test_build_encoder_errors():
    with pytest.raises(ValueError, match="unknown encoder"):
        build_encoder("bert4rec", n_items=5)
    with pytest.raises(ValueError, match="unknown option"):
        build_encoder("sasrec", n_items=5, n_layers=2)


def test_encoder_labels_need_no_torch_and_follow_registration():
    """Prose (and the torch-free report) names an encoder by the label its class carries."""
    from recinterp import labels
    from recinterp.models import SASRec, SASRecConfig, encoder_label, register_encoder

    assert encoder_label is labels.encoder_label
    assert {n: labels.encoder_label(n) for n in NAMES} == {n: ENCODERS[n][0].label for n in NAMES}

    class Named(SASRec):
        label = "Named SASRec"

    class Unnamed(SASRec):
        label = ""

    try:
        register_encoder("named", Named, SASRecConfig)
        assert labels.encoder_label("named") == "Named SASRec"
        register_encoder("named", Unnamed, SASRecConfig)  # re-registered without a label: its name
        assert labels.encoder_label("named") == "named"
    finally:
        ENCODERS.pop("named", None)
        labels.ENCODER_LABELS.pop("named", None)


@pytest.mark.parametrize("name", NAMES)
def test_all_positions_loss(name):
    enc = make(name)
    ids, lens = batch(B=4, seed=5, lens=[1, 4, 10, 2])
    target = torch.tensor([3, 4, 5, 6])
    h = enc.hidden_states(ids, lens)
    # manual: position t predicts ids[t+1], the last valid position predicts target
    logits, tgts = [], []
    for b in range(4):
        for t in range(int(lens[b])):
            logits.append(enc.scores(h[b, t][None])[0])
            tgts.append(int(ids[b, t + 1]) if t < lens[b] - 1 else int(target[b]))
    manual = torch.nn.functional.cross_entropy(torch.stack(logits), torch.tensor(tgts))
    assert torch.allclose(enc.loss(ids, lens, target, positions="all"), manual, atol=1e-6)
    last = torch.nn.functional.cross_entropy(enc.scores(enc.user_repr(h, lens)), target)
    assert torch.allclose(enc.loss(ids, lens, target), last, atol=1e-6)


@pytest.mark.parametrize("name", NAMES + ["dreamrec"])
def test_checkpoint_roundtrip_bit_for_bit(name, tmp_path):
    torch.manual_seed(0)
    if name == "dreamrec":
        model = DreamRec(DreamRecConfig(n_items=N_ITEMS, d=D, T=7, schedule="cosine"))
    else:
        model = build_encoder(name, n_items=N_ITEMS, d=D, dropout=0.1)
    with torch.no_grad():  # move off the init so a reload that re-initialises would show
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    out = save_checkpoint(model, tmp_path, "toy", metrics={"HR@10": 0.5}, seed=3)
    assert (out / "model.safetensors").exists() and out == tmp_path / "toy" / name
    info = json.loads((out / "config.json").read_text())
    assert info["name"] == name and info["seed"] == 3 and info["metrics"]["HR@10"] == 0.5
    back = load_checkpoint(tmp_path, "toy", name)
    assert not back.training and type(back) is type(model)
    a, b = model.state_dict(), back.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ids, lens = batch(B=3, seed=6)
    model.eval()
    if name == "dreamrec":
        g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
        assert torch.equal(model.sample_ideal(ids, lens, generator=g1), back.sample_ideal(ids, lens, generator=g2))
    else:
        assert torch.equal(model.hidden_states(ids, lens), back.hidden_states(ids, lens))


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path, "toy", "sasrec")
    out = save_checkpoint(make("gru4rec"), tmp_path, "toy")
    (out / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="model.safetensors does not match the SHA-256"):
        load_checkpoint(tmp_path, "toy", "gru4rec")


@pytest.mark.parametrize("name", NAMES)
def test_append_embedding(name):
    enc = make(name)
    ids, lens = batch(B=3, seed=7, lens=[2, 9, 5])
    e = torch.randn(3, D)
    x, lens2 = enc.append_embedding(ids, lens, e)
    assert torch.equal(lens2, lens + 1) and torch.equal(x[torch.arange(3), lens], e)
    h = enc.hidden_states_from_embeddings(x, lens2)
    # the earlier states are those of the history alone; the new last state differs
    h0 = enc.hidden_states(ids, lens)
    for b in range(3):
        assert torch.equal(h[b, : lens[b]], h0[b, : lens[b]])
    # appending the embedding of a real item equals appending its id
    item = torch.tensor([4, 7, 1])
    x, l2 = enc.append_embedding(ids, lens, enc.item_embeddings(item))
    ids2 = ids.clone(); ids2[torch.arange(3), lens] = item
    assert torch.equal(enc.hidden_states_from_embeddings(x, l2), enc.hidden_states(ids2, l2))
    full_ids, full_lens = batch(B=1, seed=8, lens=[10])
    with pytest.raises(ValueError, match="no room"):
        enc.append_embedding(full_ids, full_lens, torch.zeros(1, D))
