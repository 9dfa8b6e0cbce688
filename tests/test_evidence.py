"""make evidence's pieces that need no LLM: the linear ceiling and the resumable log."""
import torch

from recinterp.evidence import _have, linear_ceiling


def test_the_linear_ceiling_reads_a_linear_world_and_refuses_a_random_one():
    g = torch.Generator().manual_seed(0)
    items = torch.randn(300, 16, generator=g)
    targets = (items @ torch.randn(16, 2 * 8, generator=g)).view(300, 2, 8)  # titles' tokens ARE a linear image
    rows = linear_ceiling(items, targets, sizes=(64, 0), k=2, ridge=1e-6)
    assert [r["items"] for r in rows] == [64, 300]
    for r in rows:
        assert r["r2_fitted"] > 0.99 and r["top1_fitted"] == 1.0 and r["top1_held_out"] == 1.0
    noise = torch.randn(300, 2, 8, generator=g)  # tokens unrelated to the items: nothing carries to held-out items
    far = linear_ceiling(items, noise, sizes=(0,), k=2)[0]
    assert far["r2_held_out"] < 0.1 and far["top1_held_out"] < 0.1


def test_a_measured_point_is_found_again():
    log = {"points": [{"part": "item_stage", "n_items": 256, "steps": 160}]}
    assert _have(log, part="item_stage", n_items=256, steps=160, start="norm")  # old points: the norm-matched start
    assert not _have(log, part="item_stage", n_items=256, steps=160, start="ls")
    assert not _have(log, part="item_stage", n_items=256, steps=320)
