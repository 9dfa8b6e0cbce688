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
