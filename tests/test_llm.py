"""recinterp.llm: freezing, dtype choice, the slot token, the tiny test LLM."""
import pytest
import torch

from recinterp import llm as L


def test_tiny_llm_is_frozen_and_in_eval_mode():
    m = L.tiny_llm()
    assert not m.model.training
    assert all(not p.requires_grad for p in m.model.parameters())
    L.check_frozen(m.model)  # does not raise


def test_check_frozen_raises_on_a_gradient_or_training_mode():
    m = L.tiny_llm()
    p = next(m.model.parameters())
    p.grad = torch.zeros_like(p)
    with pytest.raises(RuntimeError, match="frozen"):
        L.check_frozen(m.model)
    p.grad = None
    p.requires_grad_(True)
    with pytest.raises(RuntimeError, match="frozen"):
        L.check_frozen(m.model)
    p.requires_grad_(False)
    m.model.train()
    with pytest.raises(RuntimeError, match="eval mode"):
        L.check_frozen(m.model)


def test_slot_token_is_one_token_outside_the_embedding_table():
    m = L.tiny_llm()
    ids = m.tokenizer(L.SLOT_TOKEN * 3 + "Heat", add_special_tokens=False)["input_ids"]
    assert ids[:3] == [m.slot_token_id] * 3
    assert m.slot_token_id not in ids[3:]
    # the LLM's table is not resized: an unspliced slot id would fail loudly
    assert m.slot_token_id >= m.model.get_input_embeddings().weight.shape[0]  # a row added for it
    with pytest.raises(IndexError):
        m.model.get_input_embeddings()(torch.tensor([m.slot_token_id]))


def test_wrap_is_idempotent_for_the_slot_token():
    m = L.tiny_llm()
    again = L.wrap_llm(m.model, m.tokenizer)
    assert again.slot_token_id == m.slot_token_id


def test_pick_dtype():
    cpu = torch.device("cpu")
    w, c, ac = L.pick_dtype(cpu, "auto")
    assert w == torch.float32
    assert (c, ac) == ((torch.bfloat16, True) if L.cpu_supports_bf16() else (torch.float32, False))
    assert L.pick_dtype(cpu, "bf16") == (torch.bfloat16, torch.bfloat16, False)
    with pytest.raises(ValueError, match="unknown dtype"):
        L.pick_dtype(cpu, "float8")


def test_autocast_context_only_when_chosen():
    m = L.tiny_llm()
    with m.autocast():
        assert not torch.is_autocast_enabled("cpu")
    m.use_autocast, m.compute_dtype = True, torch.bfloat16
    with m.autocast():
        assert torch.is_autocast_enabled("cpu")


def test_unknown_gguf_path_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="GGUF"):
        L.load_llm(str(tmp_path / "missing.gguf"))


def test_embedded_gguf_is_found_without_importing_it():
    import sys
    try:
        folder, name = L.embedded_gguf()
    except FileNotFoundError:
        pytest.skip("embedded LLM package not installed")
    assert (folder / name).stat().st_size > 1_000_000
    assert L.EMBEDDED_PACKAGE not in sys.modules


def test_load_llm_from_a_local_folder(tmp_path):
    m = L.tiny_llm()
    m.model.save_pretrained(tmp_path)
    m.tokenizer.save_pretrained(tmp_path)
    back = L.load_llm(str(tmp_path), device="cpu", dtype="float32")
    assert back.hidden_size == m.hidden_size and back.slot_token_id == m.slot_token_id and back.chat
    assert all(not p.requires_grad for p in back.model.parameters()) and not back.model.training
    ids = torch.tensor([[1, 5, 7]])
    assert torch.equal(back.model(ids).logits, m.model(ids).logits)


def test_a_dequantized_copy_reloads_the_same_weights_and_tokenizer_and_is_checked(tmp_path):
    """The embedded GGUF is read once and kept as safetensors (``llm.save_copy``); the copy must give the same
    weights and tokens, and a damaged copy is refused by its SHA256SUMS (``_load_embedded`` then rebuilds it)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from recinterp.config import IntegrityError

    tok = L.tiny_tokenizer()
    cfg = LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=2, vocab_size=len(tok), tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    folder = L.save_copy(model, tok, tmp_path / "copy")
    assert not list(tmp_path.glob("copy.tmp*")) and (folder / "SHA256SUMS").exists()
    tok2, model2 = L.read_copy(folder, torch.float32)
    a, b = model.state_dict(), model2.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    text = "<|im_start|>user\nToy Story (1995); Amélie<|im_end|>"
    assert tok2(text)["input_ids"] == tok(text)["input_ids"] and tok2.chat_template == tok.chat_template
    with open(folder / "model.safetensors", "r+b") as f:  # one byte changed: refused, naming the file
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    with pytest.raises(IntegrityError, match="model.safetensors"):
        L.read_copy(folder, torch.float32)


def test_a_second_writer_keeps_a_sound_copy_and_replaces_a_damaged_one(tmp_path):
    """Two processes loading the embedded LLM at once (a notebook beside a script) both write the copy: the
    one that finishes second keeps the first's sound copy, and replaces one whose files no longer match."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = L.tiny_tokenizer()
    cfg = LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=2, vocab_size=len(tok), tie_word_embeddings=True)
    first, second = LlamaForCausalLM(cfg), LlamaForCausalLM(cfg)
    folder = L.save_copy(first, tok, tmp_path / "copy")
    L.save_copy(second, tok, tmp_path / "copy")  # the folder is there and sound: kept
    kept = L.read_copy(folder, torch.float32)[1].state_dict()
    assert all(torch.equal(kept[k], first.state_dict()[k]) for k in kept)
    (folder / "model.safetensors").write_bytes(b"damaged")
    L.save_copy(second, tok, tmp_path / "copy")  # damaged: replaced by the second writer's copy
    now = L.read_copy(folder, torch.float32)[1].state_dict()
    assert all(torch.equal(now[k], second.state_dict()[k]) for k in now)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]  # no temporary or moved-aside folder left


def test_the_copy_is_named_by_the_ggufs_hash_and_can_be_switched_off(tmp_path, monkeypatch):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"not really a gguf")
    monkeypatch.setenv(L.CACHE_ENV, str(tmp_path / "cache"))
    d = L.embedded_cache_dir(gguf)
    assert d.parent == tmp_path / "cache" and d.name.startswith("m-") and len(d.name) == len("m-") + 16
    gguf.write_bytes(b"another gguf")
    assert L.embedded_cache_dir(gguf) != d
    monkeypatch.setenv(L.CACHE_ENV, "off")
    assert L.embedded_cache_dir(gguf) is None
