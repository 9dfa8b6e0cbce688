"""`python -m recinterp.tasks` (the accelerate-launchable trainer) on tiny models and data."""
import torch

import recinterp.tasks.__main__ as cli
from recinterp.data.types import Catalogue, RecDataset, Split
from recinterp.interpreter import Interpreter
from recinterp.llm import tiny_llm
from recinterp.models import build_encoder, save_checkpoint


def _tiny_dataset(n_items=12):
    g = torch.Generator().manual_seed(0)
    seqs = torch.randint(0, n_items, (24, 10), generator=g)
    lens = torch.full((24,), 10)
    split = Split(seqs, lens, torch.randint(0, n_items, (24,), generator=g))
    titles = [f"Movie {i}" for i in range(n_items)]
    return RecDataset("movielens", n_items, split, split, split, Catalogue(titles, titles, [[] for _ in titles]))


def test_cli_trains_and_resumes(tmp_path, monkeypatch):
    ds = _tiny_dataset()
    save_checkpoint(build_encoder("sasrec", n_items=ds.n_items, d=8), tmp_path / "ckpt", "movielens")
    monkeypatch.setattr(cli, "load_dataset", lambda name: ds)
    monkeypatch.setattr(cli, "load_llm", lambda name, device="auto", dtype="auto": tiny_llm())
    args = ["residual", "--dataset", "movielens", "--preset", "smoke", "--checkpoint-dir", str(tmp_path / "ckpt"),
            "--out", str(tmp_path / "run"), "--steps", "2"]
    r = cli.main(args)
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").exists()
    assert r["task"] == "residual" and r["input"] == "pair" and r["train"]["steps"] == 2
    trained = (tmp_path / "run" / "adapter" / "adapter.safetensors").read_bytes()

    def no_training(self, *a, **k):
        raise AssertionError("a finished run trained again")

    monkeypatch.setattr(Interpreter, "forward", no_training)  # any training step would call it
    again = cli.main(args)  # finished: nothing new is trained
    assert again["train"]["steps"] == 2 and again["train"]["history"] == r["train"]["history"]
    assert (tmp_path / "run" / "adapter" / "adapter.safetensors").read_bytes() == trained
