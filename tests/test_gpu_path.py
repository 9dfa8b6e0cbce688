"""The gpu preset's own code paths, run on CPU with a tiny random LLaMA (`--llm tiny`), so a GPU
user never meets a path no test ran: bf16 weights without autocast, an fp32 adapter and fp32
features feeding a bf16 LLM, the authors' optimiser, epochs instead of steps, every test case
evaluated at evaluation batch 32; plus gradient checkpointing and the embedded-GGUF override."""
import math
import sys
from pathlib import Path

import pytest
import torch

import recinterp.tasks.__main__ as cli
from recinterp import llm as L
from recinterp.plan import resolve_preset
from recinterp.data.types import Catalogue, RecDataset, Split
from recinterp.collator import Example
from recinterp.interpreter import Interpreter
from recinterp.memory import measure_saved_bytes
from recinterp.models import build_encoder, save_checkpoint
from recinterp.adapter import build_adapter
from recinterp.cases import Cases, make_examples
from recinterp.tasks import run_task
from recinterp.train_adapter import TrainConfig, train_adapter

N_ITEMS = 30
TITLES = [f"Movie {i}" for i in range(N_ITEMS)]


def tiny_dataset(n_rows=40):
    g = torch.Generator().manual_seed(0)
    seqs = torch.stack([torch.randperm(N_ITEMS, generator=g)[:10] for _ in range(n_rows)])
    lens = torch.randint(3, 11, (n_rows,), generator=g)
    seqs[torch.arange(10)[None, :] >= lens[:, None]] = N_ITEMS  # right padding with the pad id
    split = Split(seqs, lens, torch.randint(0, N_ITEMS, (n_rows,), generator=g))
    test = split.subset(range(20))
    return RecDataset("movielens", N_ITEMS, split, test, test, Catalogue(TITLES, TITLES, [[] for _ in TITLES]))


def recovery_batch(llm, n=4, d=8):
    g = torch.Generator().manual_seed(1)
    answers = torch.stack([torch.randperm(N_ITEMS, generator=g)[:10] for _ in range(n)])
    cases = Cases("recovery", "all", torch.randn(n, 1, 10, d, generator=g), answers, answers.clone(),
                  meta={"dataset": "movielens", "n_items": N_ITEMS})
    return make_examples(cases, range(n), TITLES, llm, 10, phase="train", seed=0)


def adapter(llm, d=8):
    torch.manual_seed(0)
    return build_adapter(kind="linear", d_in=d, d_llm=llm.hidden_size, n_positions=10, n_tokens=10, input="all")


# -- loading ------------------------------------------------------------------------------
def test_load_llm_tiny_follows_the_dtype_rules():
    bf = L.load_llm("tiny", device="cpu", dtype="bf16")  # the GPU path: bf16 weights, no autocast
    assert {p.dtype for p in bf.model.parameters()} == {torch.bfloat16}
    assert (bf.compute_dtype, bf.use_autocast, bf.device.type) == (torch.bfloat16, False, "cpu")
    auto = L.load_llm("tiny", device="cpu")
    w, c, ac = L.pick_dtype(torch.device("cpu"), "auto")
    assert next(auto.model.parameters()).dtype == w and (auto.compute_dtype, auto.use_autocast) == (c, ac)
    L.check_frozen(bf.model)


def test_embedded_gguf_can_be_pointed_at_a_carried_copy(tmp_path, monkeypatch):
    f = tmp_path / "carried" / L.EMBEDDED_FILE
    f.parent.mkdir()
    f.write_bytes(b"GGUF")
    monkeypatch.setenv(L.EMBEDDED_ENV, str(f))
    assert L.embedded_gguf() == (f.parent, L.EMBEDDED_FILE)
    monkeypatch.setenv(L.EMBEDDED_ENV, str(tmp_path / "missing.gguf"))
    with pytest.raises(FileNotFoundError, match=L.EMBEDDED_ENV):
        L.embedded_gguf()


# -- dtype mismatch: fp32 adapter and features, bf16 LLM -----------------------------------------
def test_fp32_adapter_and_features_feed_a_bf16_llm():
    lm32, lm16 = L.tiny_llm(), L.load_llm("tiny", device="cpu", dtype="bf16")  # same seed: same weights
    ex = recovery_batch(lm16)
    losses, grads = {}, {}
    for name, lm in (("fp32", lm32), ("bf16", lm16)):
        interp = Interpreter(lm, adapter(lm))
        batch = interp.collator(ex)
        assert batch.features.dtype == torch.float32  # features stay fp32 (and on CPU) until the adapter
        loss = interp(batch)
        loss.backward()
        L.check_frozen(lm.model)
        w = interp.adapter.layers.net.weight
        assert loss.dtype == torch.float32 and w.dtype == torch.float32 and w.grad.dtype == torch.float32
        losses[name], grads[name] = float(loss.detach()), w.grad.clone()
    assert math.isfinite(losses["bf16"]) and abs(losses["bf16"] - losses["fp32"]) < 0.05 * losses["fp32"]
    cos = torch.nn.functional.cosine_similarity(grads["bf16"].flatten(), grads["fp32"].flatten(), dim=0)
    assert cos > 0.95, cos
    interp = Interpreter(lm16, adapter(lm16))
    gen = [Example(e.prompt, e.features.double()) for e in ex[:2]]  # even fp64 features are cast on the way in
    scores = interp.score_candidates(gen, [TITLES[:3], TITLES[3:6]])
    assert scores.shape == (2, 3) and torch.isfinite(scores).all()
    assert len(interp.generate(gen, max_new_tokens=3)) == 2


# -- gradient checkpointing of the frozen LLM -------------------------------------------------------
def test_gradient_checkpointing_gives_the_same_loss_and_adapter_gradients_with_less_memory():
    lm = L.tiny_llm(hidden=32, layers=3)
    ex = recovery_batch(lm)
    out = {}
    for ck in (False, True):
        L.set_gradient_checkpointing(lm.model, ck)
        interp = Interpreter(lm, adapter(lm))
        with measure_saved_bytes(lm.model) as m:
            loss = interp(interp.collator(ex))
        loss.backward()
        L.check_frozen(lm.model)  # still frozen, still in eval mode
        out[ck] = (float(loss.detach()), interp.adapter.layers.net.weight.grad.clone(), m["bytes"])
    assert out[True][0] == pytest.approx(out[False][0], abs=1e-6)
    assert torch.allclose(out[True][1], out[False][1], atol=1e-6)
    assert out[True][2] < 0.5 * out[False][2]  # the layers' intermediates are not kept
    # switching off (or on twice) leaves exactly one plain forward per layer
    L.set_gradient_checkpointing(lm.model, True)
    L.set_gradient_checkpointing(lm.model, False)
    assert not any(hasattr(layer, "_recinterp_plain_forward") for layer in lm.model.get_decoder().layers)
    interp = Interpreter(lm, adapter(lm))
    with measure_saved_bytes(lm.model) as m:
        interp(interp.collator(ex))
    assert m["bytes"] == out[False][2]


def test_train_config_flag_turns_checkpointing_on(tmp_path):
    lm = L.tiny_llm()
    interp = Interpreter(lm, adapter(lm))
    g = torch.Generator().manual_seed(0)
    answers = torch.stack([torch.randperm(N_ITEMS, generator=g)[:10] for _ in range(4)])
    cases = Cases("recovery", "all", torch.randn(4, 1, 10, 8, generator=g), answers, answers.clone(),
                  meta={"dataset": "movielens", "n_items": N_ITEMS})
    h = train_adapter(interp, cases, TITLES, TrainConfig(max_steps=1, batch_size=4, gradient_checkpointing=True),
                      progress=False)
    assert h["steps"] == 1 and lm.model._recinterp_gradient_checkpointing


# -- the gpu preset, shrunk only in size -----------------------------------------------------------
def test_gpu_preset_recovery_runs_its_own_paths_on_a_tiny_bf16_llm(tmp_path):
    cfg = resolve_preset("gpu", "recovery")
    tr, ev = dict(cfg["train"]), dict(cfg["eval"])
    # the gpu preset's own settings, as they are (a change there must be seen here)
    assert tr["max_steps"] is None and tr["epochs"] >= 1 and (tr["lr"], tr["weight_decay"], tr["batch_size"]) == (1e-3, 1e-6, 16)
    assert ev["n_cases"] is None and ev["batch_size"] == 32 and ev["generate"]
    ev["max_new_tokens"] = 6  # shrunk: the only size changed besides the data and the LLM
    ds, lm = tiny_dataset(), L.load_llm("tiny", device="cpu", dtype="bf16")
    enc = build_encoder("sasrec", n_items=N_ITEMS, d=8).eval()
    r = run_task("recovery", enc, ds, lm, out_dir=tmp_path / "run", adapter=cfg["adapters"][0], train=tr, eval=ev,
                 max_train_cases=cfg["max_train_cases"], readout={"epochs": 2}, progress=False)
    t = r["train"]
    micro = math.ceil(len(ds.train) / tr["batch_size"])
    assert t["steps"] == t["total_steps"] == math.ceil(tr["epochs"] * micro) and t["epochs"] == pytest.approx(tr["epochs"])
    assert (t["config"]["lr"], t["config"]["weight_decay"], t["config"]["warmup_start"]) == (1e-3, 1e-6, 0.2)
    assert t["history"][0]["lr"] == pytest.approx(1e-3 * (0.2 + 0.8 / tr["warmup_steps"]))  # warm-up from 0.2x
    assert all(math.isfinite(h["loss"]) for h in t["history"])
    e = r["eval"]["test"]
    assert e["generation"]["n"] == len(ds.test)  # every test case
    assert e["generation"]["decoding"]["batch_size"] == 32
    for sampler in ev["samplers"]:
        assert e["ranking"][sampler]["n"] == len(ds.test)


def test_cli_with_the_gpu_preset_and_llm_tiny(tmp_path, monkeypatch):
    """`python -m recinterp.tasks residual --preset gpu --llm tiny --dtype bf16`: epochs, not steps."""
    ds = tiny_dataset(24)
    save_checkpoint(build_encoder("sasrec", n_items=N_ITEMS, d=8), tmp_path / "ckpt", "movielens")
    monkeypatch.setattr(cli, "load_dataset", lambda name: ds)
    r = cli.main(["residual", "--dataset", "movielens", "--preset", "gpu", "--llm", "tiny", "--dtype", "bf16",
                  "--device", "cpu", "--checkpoint-dir", str(tmp_path / "ckpt"), "--out", str(tmp_path / "run")])
    tr = resolve_preset("gpu", "residual")["train"]
    n_cases = r["train"]["n_cases"]
    assert r["train"]["steps"] == math.ceil(tr["epochs"] * math.ceil(n_cases / tr["batch_size"]))
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").exists()


# -- the benchmark's plumbing ------------------------------------------------------------------------
def test_bench_llm_on_the_tiny_arch(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import bench_llm

    r = bench_llm.main(["--arch", "tiny", "--device", "cpu", "--batch", "2", "--repeats", "1", "--single-samples", "1",
                        "--new-tokens", "2", "--candidates", "3", "--align-items", "20", "--out", str(tmp_path / "b.json")])
    run = r["runs"][0]
    assert run["batch"] == 2 and run["step_s"] > 0 and run["floor_s"] > 0 and run["mfu_step"] is None
    assert run["step_flops"] == 2 * run["forward_flops"] > 0 and run["saved_activations_gb"] > 0
    assert r["generation"]["new_tokens"] == 2 and r["scoring"]["candidates"] == 3
    assert r["align"]["items"] == 20 and r["align"]["fit_s"] >= 0 and r["align"]["fit_report"]["n_items"] == 20
    assert (tmp_path / "b.json").exists()
    with_peak = bench_llm.device_peak(torch.device("cpu"), 100.0)
    assert with_peak[0] == 100e12
