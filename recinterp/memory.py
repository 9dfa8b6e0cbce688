"""How much GPU memory the adapter's training step needs, from the LLM's config alone.

    python -m recinterp.memory                                  # LLaMA-2-7B: what fits on 80 GB and 141 GB
    python -m recinterp.memory --arch smollm2-135m --seq 120 --gpu-gb 24
    est = estimate(ARCHS["llama2-7b"], batch=16, seq=110)       # dict of GB figures

The step runs the frozen LLM forward and back to its input embeddings (the soft tokens):
no weight gradient and no optimiser state for the LLM, so memory is
    weights (N x bytes) + activations saved for the backward + the LM head's logits
    + a transient (one layer's intermediates while it is being differentiated).
On a GPU the saved tensors matched this formula, but the peak was about twice them (``PEAK_OVER_SAVED``,
measured on an H200), so ``total_gb`` is weights + 2.3 x (saved activations + logits) and
``formula_gb`` the formula alone.
Saved activations of one LLaMA decoder layer, per token, for a backward to the input only
(PyTorch saves an op's operand only when a gradient that needs it is required, so a frozen
linear layer keeps its weight, not its input):
    2 RMSNorms   x in fp32 (4h bytes each: the norm upcasts; 4 bytes whatever the dtype)
    attention    q, k, v after RoPE and the attention output (h + 2 kv + h) x dtype bytes
                 (SDPA's flash / memory-efficient kernels keep no (T x T) matrix)
    SwiGLU MLP   gate, silu(gate), up (3 I) x dtype bytes
i.e. 8h + b (2h + 2 kv + 3I) bytes, b = 2 in bf16 (kv = n_kv_heads x head_dim).  With
gradient checkpointing (recinterp.llm.set_gradient_checkpointing) a layer keeps only its
input, b h bytes per token, and one layer's intermediates are recomputed at a time.
``measure_saved_bytes`` counts what autograd really saves (a saved-tensor hook, any
device), which is how the formula is checked (tests/test_memory.py, bench/bench_llm.py).
"""
from __future__ import annotations

import argparse
import contextlib

import torch

GB = 1e9

# name -> transformers LlamaConfig fields (random weights: speed and memory depend on the shape only)
ARCHS = {
    "tiny": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4, vocab_size=259, tie_word_embeddings=True),
    # the embedded SmolLM2-135M-Instruct
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True),
    # the paper's LLM, LLaMA-2-7B
    "llama2-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32000, tie_word_embeddings=False),
}
GPUS_GB = {"80 GB (A100/H100)": 80.0, "141 GB (H200)": 141.0}
# Peak CUDA memory over the weights, as a multiple of the saved activations + logits (what the formula counts).
# Measured on the lent H200 (bench/bench_llm.py, bf16, 2026-11-30): 2.07 at LLaMA-2-7B batch 16 (peak 24.9 GB),
# 2.27 at SmolLM2-135M batch 1,024 (116.9 GB), 2.40 at batch 16 (2.2 GB; fixed buffers weigh more there).  The
# formula's saved tensors matched within 4%; the rest is the backward's buffers, allocator slack and
# workspaces.  The formula alone put 7B's largest batch on 141 GB at 337; 256 ran out of memory.
PEAK_OVER_SAVED = 2.3


def _get(cfg, name):
    return cfg[name] if isinstance(cfg, dict) else getattr(cfg, name)


def n_params(cfg) -> int:
    """Parameters of a LLaMA-style causal LM (no biases): embeddings, layers, final norm, LM head."""
    h, inter, L, V = (_get(cfg, k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "vocab_size"))
    kv = _get(cfg, "num_key_value_heads") * (h // _get(cfg, "num_attention_heads"))
    layer = h * h * 2 + h * kv * 2 + 3 * h * inter + 2 * h  # q, o; k, v; gate, up, down; two norms
    head = 0 if _get(cfg, "tie_word_embeddings") else V * h
    return V * h + L * layer + h + head


def saved_bytes_per_token_layer(cfg, dtype_bytes: int = 2, checkpointing: bool = False) -> int:
    """Bytes one decoder layer keeps for the backward, per token (see the module docstring)."""
    h, inter = _get(cfg, "hidden_size"), _get(cfg, "intermediate_size")
    if checkpointing:
        return dtype_bytes * h
    kv = _get(cfg, "num_key_value_heads") * (h // _get(cfg, "num_attention_heads"))
    return 2 * 4 * h + dtype_bytes * (2 * h + 2 * kv + 3 * inter)


def estimate(cfg, batch: int, seq: int, target_tokens: int = 32, dtype_bytes: int = 2,
             checkpointing: bool = False) -> dict:
    """GB needed by one training step of the adapter through the frozen LLM (batch x seq tokens)."""
    h, inter, L, V = (_get(cfg, k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "vocab_size"))
    tokens = batch * seq
    weights = n_params(cfg) * dtype_bytes
    per_layer = saved_bytes_per_token_layer(cfg, dtype_bytes, checkpointing)
    acts = tokens * (L * per_layer + 4 * h + dtype_bytes * h)  # + the final norm and the spliced input embeddings
    logits = batch * target_tokens * V * 4 * 2  # fp32 logits and their log-softmax, target positions only
    # while one layer is differentiated: its saved tensors (recomputed under checkpointing) and their
    # gradients, plus the largest gradient buffers (B, T, I) in flight
    transient = tokens * (2 * saved_bytes_per_token_layer(cfg, dtype_bytes) + 2 * dtype_bytes * inter)
    formula = weights + acts + logits + transient
    # the peak as measured on a GPU (PEAK_OVER_SAVED); never below the formula (checkpointing: unmeasured)
    total = max(formula, weights + PEAK_OVER_SAVED * (acts + logits))
    return {"params": n_params(cfg), "tokens": tokens, "weights_gb": weights / GB, "activations_gb": acts / GB,
            "logits_gb": logits / GB, "transient_gb": transient / GB, "formula_gb": formula / GB, "total_gb": total / GB,
            "saved_bytes_per_token_layer": per_layer, "dtype_bytes": dtype_bytes, "checkpointing": checkpointing}


def max_batch(cfg, seq: int, gpu_gb: float, reserve_gb: float = 2.0, **kw) -> int:
    """Largest batch whose estimate fits in ``gpu_gb`` minus ``reserve_gb`` (CUDA context, allocator slack)."""
    lo, hi = 0, 1
    while estimate(cfg, hi, seq, **kw)["total_gb"] <= gpu_gb - reserve_gb:
        lo, hi = hi, hi * 2
        if hi > 1 << 20:
            return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if estimate(cfg, mid, seq, **kw)["total_gb"] <= gpu_gb - reserve_gb else (lo, mid)
    return lo


def plan(cfg, seq: int, batch: int = 16, gpus: dict | None = None, **kw) -> list[dict]:
    """One row per (GPU size, checkpointing): the estimate at ``batch`` and the largest batch that fits."""
    rows = []
    for gpu, gb in (gpus or GPUS_GB).items():
        for ck in (False, True):
            e = estimate(cfg, batch, seq, checkpointing=ck, **kw)
            rows.append({"gpu": gpu, "checkpointing": ck, f"batch{batch}_gb": round(e["total_gb"], 1),
                         "fits": e["total_gb"] <= gb - 2.0, "max_batch": max_batch(cfg, seq, gb, checkpointing=ck, **kw)})
    return rows


@contextlib.contextmanager
def measure_saved_bytes(model: torch.nn.Module | None = None):
    """Count the bytes autograd saves for the backward inside the block (unique storages).

        with measure_saved_bytes(llm.model) as m:
            loss = interp(batch)
        m["bytes"]     # activations kept for the backward; the model's parameters are not counted
    """
    skip = {p.untyped_storage().data_ptr() for p in model.parameters()} if model is not None else set()
    seen: dict[int, int] = {}
    out = {"bytes": 0}

    def pack(t):
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr not in skip and ptr not in seen:
            seen[ptr] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield out
    out["bytes"] = sum(seen.values())


def random_llm(arch: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
               tokenizer: str = "tiny", compute_dtype: torch.dtype | None = None, use_autocast: bool = False):
    """A FrozenLLM of the named architecture (``ARCHS``) with random weights, built on ``device``.

    ``tokenizer``: "tiny" (bytes, built in code) or "embedded" (SmolLM2's own, from the GGUF:
    real prompt lengths for the SmolLM2 shape; LLaMA-2's own tokenizer is not available offline).
    A tokenizer with more ids than the architecture's vocabulary (SmolLM2's 49,152 for LLaMA-2's 32,000)
    widens the vocabulary to its size: every id it writes must be a row of the embedding and a class of the
    loss (a CUDA loss asserts on a label past the last class).  At 7B that adds 2 x 17,152 x 4,096 = 141 M
    parameters (2%) and about 1% to a step's FLOPs; ``describe()["n_params"]`` counts them.
    """
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from recinterp.llm import embedded_gguf, tiny_tokenizer, wrap_llm

    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}: choose one of {sorted(ARCHS)}")
    if tokenizer == "tiny":
        tok = tiny_tokenizer()
    elif tokenizer == "embedded":
        folder, file = embedded_gguf()
        tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=file)
    else:
        raise ValueError(f"unknown tokenizer {tokenizer!r}: choose 'tiny' or 'embedded'")
    eos = tok.eos_token_id
    shape = {**ARCHS[arch], "vocab_size": max(ARCHS[arch]["vocab_size"], len(tok))}
    cfg = LlamaConfig(**shape, max_position_embeddings=4096, bos_token_id=tok.bos_token_id, eos_token_id=eos,
                      pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos)
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # weights are created in their dtype, on the device: no fp32 copy of 7B
    try:
        with torch.device(device), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(before)
    model.generation_config.pad_token_id = cfg.pad_token_id
    return wrap_llm(model, tok, name=f"random-{arch}", device=device, compute_dtype=compute_dtype or dtype,
                    use_autocast=use_autocast)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="llama2-7b", choices=sorted(ARCHS))
    ap.add_argument("--seq", type=int, default=80,
                    help="tokens per sample: the recovery prompt + 10 soft + 32 target tokens is ~75 with SmolLM2's tokenizer")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--gpu-gb", type=float, action="append", default=None, help="GPU sizes (default 80 and 141)")
    a = ap.parse_args(argv)
    cfg = ARCHS[a.arch]
    gpus = {f"{g:g} GB": g for g in a.gpu_gb} if a.gpu_gb else None
    e = estimate(cfg, a.batch, a.seq)
    print(f"{a.arch}: {e['params'] / 1e9:.2f} B params, weights {e['weights_gb']:.1f} GB (bf16); "
          f"batch {a.batch} x {a.seq} tokens: activations {e['activations_gb']:.1f} GB "
          f"({e['saved_bytes_per_token_layer'] / 1024:.0f} KiB per token per layer), total {e['total_gb']:.1f} GB")
    rows = plan(cfg, a.seq, a.batch, gpus)
    for r in rows:
        print(f"  {r['gpu']:<18} checkpointing={str(r['checkpointing']):<5}  batch {a.batch}: "
              f"{r[f'batch{a.batch}_gb']:>6.1f} GB ({'fits' if r['fits'] else 'does NOT fit'}); largest batch {r['max_batch']}")
    return rows


if __name__ == "__main__":
    main()
