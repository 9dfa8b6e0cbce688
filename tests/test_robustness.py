"""Gaps found by using the package as a new user would (issue 10, part 2); each test failed before its fix.

The processed-cache checks live in test_data_own.py, the unreachable judge in test_judges.py.
"""
import socket
import time

import pytest
import torch

from recinterp import reproduce
from recinterp.data.types import Split
from recinterp.interpreter import Interpreter
from recinterp.llm import load_llm, tiny_llm
from recinterp.llm_source import ModelUnavailable
from recinterp.models import build_encoder, load_checkpoint, save_checkpoint
from recinterp.params import check_params, declared_defaults
from recinterp.adapter import build_adapter
from recinterp.tasks import residual_cases
from recinterp.train_adapter import TrainConfig, train_adapter


# -- Caser on an empty batch, like SASRec and GRU4Rec ------------------------------------------
@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "caser"])
def test_an_empty_batch_gives_empty_outputs(name):
    enc = build_encoder(name, n_items=7, d=8, max_len=10).eval()
    ids, lens = torch.empty(0, 10, dtype=torch.long), torch.empty(0, dtype=torch.long)
    assert enc.hidden_states(ids, lens).shape == (0, 10, 8)
    assert enc.user_state(ids, lens).shape == (0, 8)
    assert enc.score_sequences(ids, lens).shape == (0, 7)


# -- load_checkpoint with a misspelt name ----------------------------------------------------------
def test_a_misspelt_checkpoint_name_lists_saved_and_known_models(tmp_path):
    save_checkpoint(build_encoder("sasrec", n_items=5, d=8), tmp_path, "mydata")
    with pytest.raises(FileNotFoundError, match=r"'sasrek'.*Saved there: \['sasrec'\].*known models: .*'gru4rec'"):
        load_checkpoint(tmp_path, "mydata", "sasrek")


# -- reproduce --param: declared names only, values of the declared type --------------------------
def test_a_misspelt_parameter_is_refused_listing_the_declared_ones():
    with pytest.raises(ValueError, match=r"unknown parameter 'devcie'.*Declared: .*device.*seed"):
        reproduce.main(["--preset", "smoke", "--only", "02", "--param", "devcie=cuda"])


@pytest.mark.parametrize("pair, message", [("seed=abc", "seed is an int, got 'abc'"),
                                           ("refresh=maybe", "refresh is a bool"),
                                           ("seed", "expects NAME=VALUE")])
def test_a_value_of_the_wrong_type_is_refused(pair, message):
    with pytest.raises(ValueError, match=message):
        reproduce.main(["--preset", "smoke", "--only", "01", "--param", pair])


def test_values_take_the_declared_types():
    nbs = reproduce.notebooks(["01", "03"])
    got = check_params(["seed=3", "refresh=true", "datasets=1,2", "llm=meta-llama/Llama-2-7b-hf"], nbs)
    assert got == {"seed": 3, "refresh": True, "datasets": "1,2", "llm": "meta-llama/Llama-2-7b-hf"}
    assert declared_defaults(nbs[0])["refresh"] is False


# -- resuming adapter training with changed settings ---------------------------------------------
@pytest.fixture(scope="module")
def small_task():
    torch.manual_seed(0)
    enc = build_encoder("sasrec", 20, d=8)
    seqs = torch.full((8, 10), 20)
    seqs[:, :3] = torch.randint(0, 20, (8, 3))
    cases = residual_cases(enc, Split(seqs, torch.full((8,), 3), torch.zeros(8, dtype=torch.long)), input="pair")
    return cases, tiny_llm(), [f"Film {i}" for i in range(20)]


def _interp(llm):
    return Interpreter(llm, build_adapter(kind="linear", d_in=16, d_llm=llm.hidden_size, n_tokens=1, input="pair"))


def test_resuming_with_another_lr_is_refused_and_the_checkpoint_kept(small_task, tmp_path):
    cases, llm, titles = small_task
    cfg = dict(batch_size=4, warmup_steps=0, ckpt_every=1)
    train_adapter(_interp(llm), cases, titles, TrainConfig(max_steps=1, lr=1e-3, **cfg), out_dir=tmp_path, progress=False)
    state = (tmp_path / "checkpoint" / "train_state.pt").read_bytes()
    with pytest.raises(ValueError, match=r"other settings \(lr: 0.001 -> 0.01\).*Delete .*allow_config_change=True"):
        train_adapter(_interp(llm), cases, titles, TrainConfig(max_steps=2, lr=1e-2, **cfg), out_dir=tmp_path,
                      progress=False)
    assert (tmp_path / "checkpoint" / "train_state.pt").read_bytes() == state  # nothing lost
    # more steps is a resumable change; the explicit override continues with the new lr
    assert train_adapter(_interp(llm), cases, titles, TrainConfig(max_steps=2, lr=1e-3, **cfg), out_dir=tmp_path,
                         progress=False)["steps"] == 2
    h = train_adapter(_interp(llm), cases, titles, TrainConfig(max_steps=3, lr=1e-2, **cfg), out_dir=tmp_path,
                      progress=False, allow_config_change=True)
    assert h["steps"] == 3 and h["config"]["lr"] == 1e-2


# -- load_llm: a missing folder, an unknown hub id with no network ---------------------------------
def test_a_missing_local_folder_is_file_not_found(tmp_path):
    for name in ("/some/missing/folder", str(tmp_path / "nope"), "./models/nope"):
        with pytest.raises(FileNotFoundError, match="no such model folder"):
            load_llm(name)


@pytest.fixture
def no_network(monkeypatch):
    """The hub "is" at a loopback port where nothing listens: a refused connection, no real network."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    for v in ("HTTPS_PROXY", "https_proxy", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    return port


def test_an_uncached_hub_id_without_network_fails_in_seconds(no_network):
    t0 = time.time()
    with pytest.raises(ModelUnavailable, match=r"'nobody/not-a-model'.*cannot be reached \(probed 127.0.0.1:\d+.*"
                                               r"download it first"):
        load_llm("nobody/not-a-model")
    assert time.time() - t0 < 10


def test_an_uncached_hub_id_offline_says_download_first(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="HF_HUB_OFFLINE.*download it first"):
        load_llm("nobody/not-a-model")


# -- the tasks CLI takes a dataset of one's own by path ------------------------------------------
def test_tasks_cli_keys_checkpoints_by_the_dataset_name_not_its_path(tmp_path, monkeypatch):
    import recinterp.tasks.__main__ as cli
    from recinterp.data.types import Catalogue, RecDataset

    g = torch.Generator().manual_seed(0)
    split = Split(torch.randint(0, 12, (16, 10), generator=g), torch.full((16,), 10), torch.randint(0, 12, (16,), generator=g))
    titles = [f"Track {i}" for i in range(12)]
    ds = RecDataset("mydata", 12, split, split, split, Catalogue(titles, titles, [[] for _ in titles]), noun="track")
    save_checkpoint(build_encoder("sasrec", n_items=12, d=8), tmp_path / "ckpt", "mydata")
    monkeypatch.setattr(cli, "load_dataset", lambda name: ds)
    monkeypatch.setattr(cli, "load_llm", lambda name, device="auto", dtype="auto": tiny_llm())
    r = cli.main(["residual", "--dataset", str(tmp_path / "src" / "mydata"), "--preset", "smoke", "--checkpoint-dir",
                  str(tmp_path / "ckpt"), "--out", str(tmp_path / "run"), "--steps", "1"])
    assert r["dataset"] == "mydata" and r["train"]["steps"] == 1
