"""Speed and memory of the adapter through a frozen LLM of any shape, random weights (a benchmark, not a test).

    python bench/bench_llm.py --arch llama2-7b --device cuda --batch 16 128 --out results/bench/llama2-7b.json
    python bench/bench_llm.py --arch smollm2-135m --device cuda --batch 16 256 --out results/bench/smollm2.json
    python bench/bench_llm.py --arch tiny --device cpu --batch 4 --repeats 1 --out /tmp/tiny.json   # plumbing, seconds

The model is built from its config (``recinterp.memory.ARCHS``) with random weights: a step's time
and memory depend on the shape, not the values.  CUDA: bf16 weights, no autocast (the gpu preset's
path); CPU: fp32, or bf16 autocast with ``--dtype autocast``, or bf16 weights with ``--dtype bf16``.
Tokens: the recovery prompt with 10 soft tokens (a linear adapter over the 10 positions) and a
32-token target (10 titles, truncated as the authors do), tokenised by SmolLM2's own tokenizer
when the embedded GGUF is found (the SmolLM2 shape's real lengths; LLaMA-2's tokenizer is not
available offline, ids past a smaller vocabulary are folded, see FoldedEmbedding), else by bytes.

Per batch size it measures
- ``step``: one adapter training step (examples, tokenisation, adapter, splice, frozen LLM forward
  + backward to the soft tokens, frozen check, AdamW step) - the training loop's unit of work;
- ``floor``: the bare frozen LLM forward + backward to its input embeddings on the same tokens,
  LM head on the target positions only (what any adapter needs); target: step <= 1.05 x floor;
- peak memory (CUDA: ``max_memory_allocated``), and the activations autograd saves for the
  backward on any device (``recinterp.memory.measure_saved_bytes``) beside the estimate;
- model-FLOP utilisation.  With frozen weights the forward costs ~2 N T FLOPs and the backward to the
  activations only ~2 N T (no weight gradients): step FLOPs = 4 (N_layers T + V d T_target), where
  N_layers = decoder parameters (embeddings excluded: a lookup), T = real (non-pad) tokens of the
  batch, T_target = target tokens (the LM head runs there only), attention's T^2 terms ignored
  (< 1% at ~110 tokens).  MFU = FLOPs / time / peak, the peak from PEAK_TFLOPS by device name
  (dense bf16, vendor datasheets) or ``--peak-tflops``; null on CPU unless given.
Then, at the first batch size: batched greedy generation (32 new tokens, EOS suppressed) against a
few samples one at a time, candidate scoring (1 true + 19 distractors, the likelihood probe), and the
token-space alignment fit (``recinterp.align``) when that module exists.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from recinterp.config import write_json_atomic
from recinterp.collator import IGNORE, Example
from recinterp.interpreter import Interpreter
from recinterp.llm import check_frozen, embedded_gguf, load_llm
from recinterp.memory import ARCHS, estimate, measure_saved_bytes, random_llm
from recinterp.adapter import build_adapter
from recinterp.tasks import Cases, make_examples  # importing recinterp.tasks registers the built-in tasks

TITLES = ["The Usual Suspects", "Toy Story", "Heat", "Twelve Monkeys", "Dead Man Walking", "Il Postino",
          "The Godfather", "Star Wars", "Fargo", "Contact", "Scream", "Liar Liar", "Air Force One",
          "The English Patient", "Jerry Maguire", "Titanic", "Return of the Jedi", "Independence Day"]

# Dense bf16 tensor-core peak (no sparsity), TFLOP/s, by a substring of torch.cuda.get_device_name().
# First match wins, so the more specific names come first.
PEAK_TFLOPS = {"H100 PCIe": 756.0, "H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0,
               "A10": 125.0, "L4": 121.0}
MFU_FORMULA = ("MFU = 4 * (N_layers * T + V * d * T_target) / step_s / peak  (forward 2NT + backward to "
               "activations only 2NT, frozen weights; N_layers: decoder params without embeddings; T: real tokens; "
               "T_target: target tokens, where the LM head runs; attention T^2 terms ignored)")


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up (allocations, kernels)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def floor_loss_fn(llm, batch):
    """The bare frozen LLM's loss on ``batch``'s tokens, differentiable to its input embeddings only:
    what any adapter's step needs at least (slots read the pad embedding; LM head on targets only)."""
    ids = batch.input_ids.masked_fill(batch.slot_mask, llm.pad_token_id)
    emb_layer, dec, head = llm.model.get_input_embeddings(), llm.model.get_decoder(), llm.model.get_output_embeddings()

    def floor_loss():
        x = emb_layer(ids).detach().requires_grad_(True)
        with llm.autocast():
            h = dec(inputs_embeds=x, attention_mask=batch.attention_mask, position_ids=batch.position_ids).last_hidden_state
            nxt = batch.labels[:, 1:]
            sel = nxt != IGNORE
            logits = head(h[:, :-1][sel])
        return F.cross_entropy(logits.float(), nxt[sel])

    return floor_loss


def device_peak(device: torch.device, override: float | None) -> tuple[float | None, str]:
    if override:
        return override * 1e12, f"--peak-tflops {override:g}"
    if device.type != "cuda":
        return None, "none on CPU (give --peak-tflops)"
    name = torch.cuda.get_device_name(device)
    for key, tf in PEAK_TFLOPS.items():
        if key in name:
            return tf * 1e12, f"{name}: {tf:g} TFLOP/s dense bf16 (table)"
    return None, f"{name}: not in the table (give --peak-tflops)"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(a):
    """-> (FrozenLLM, description of the model and dtype)."""
    dev = torch.device(a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    if a.llm:  # real weights: the embedded SmolLM2 or an HF id / local path
        return load_llm(a.llm, device=dev, dtype=a.dtype if a.dtype != "autocast" else "auto")
    if a.dtype == "auto":
        a.dtype = "bf16" if dev.type == "cuda" else "fp32"
    w = {"bf16": torch.bfloat16, "fp32": torch.float32, "autocast": torch.float32}[a.dtype]
    tok = a.tokenizer
    if tok == "auto":
        try:
            embedded_gguf()
            tok = "tiny" if a.arch == "tiny" else "embedded"
        except FileNotFoundError:
            print("note: the embedded GGUF is not found: byte tokenizer, prompts longer than SmolLM2's", file=sys.stderr)
            tok = "tiny"
    return random_llm(a.arch, device=dev, dtype=w, tokenizer=tok,
                      compute_dtype=torch.bfloat16 if a.dtype == "autocast" else w, use_autocast=a.dtype == "autocast")


def flop_counts(llm, batch) -> dict:
    emb = llm.model.get_input_embeddings().weight
    n_all = sum(p.numel() for p in llm.model.parameters())
    head = llm.model.get_output_embeddings().weight
    tied = head.data_ptr() == emb.data_ptr()
    n_layers = n_all - emb.numel() - (0 if tied else head.numel())
    T = int(batch.attention_mask.sum())
    T_target = int((batch.labels[:, 1:] != IGNORE).sum())
    fwd = 2 * (n_layers * T + head.numel() * T_target)
    return {"n_params": n_all, "n_layer_params": n_layers, "tokens": T, "target_tokens": T_target,
            "forward_flops": fwd, "step_flops": 2 * fwd}


def bench_batch(a, llm, interp, cases, B: int, peak: float | None) -> dict:
    dev = llm.device
    opt = torch.optim.AdamW(interp.adapter.parameters(), lr=1e-3, weight_decay=1e-6)  # the authors' settings

    def examples():
        return make_examples(cases, range(B), TITLES, llm, a.n_tokens, phase="train", seed=0)

    def step():
        loss = interp(interp.collator(examples()))
        loss.backward()
        check_frozen(llm.model)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(dev)

    batch = interp.collator(examples()).to(dev)
    floor_loss = floor_loss_fn(llm, batch)

    def floor():
        floor_loss().backward()
        sync(dev)

    res = {"batch": B, "tokens_per_sample": float(batch.attention_mask.sum(1).float().mean()),
           "padded_length": int(batch.input_ids.shape[1]),
           "target_tokens_per_sample": float((batch.labels != IGNORE).sum(1).float().mean()), **flop_counts(llm, batch)}
    try:
        with measure_saved_bytes(llm.model) as m:  # what the backward keeps (any device)
            loss = floor_loss()
        del loss
        res["saved_activations_gb"] = m["bytes"] / 1e9
        bytes_ = 2 if llm.compute_dtype == torch.bfloat16 and not llm.use_autocast else 4
        try:  # LLaMA-style configs only (recinterp.memory)
            est = estimate(llm.model.config, B, res["padded_length"], target_tokens=round(res["target_tokens_per_sample"]),
                           dtype_bytes=bytes_)
            res["estimate"] = {k: est[k] for k in ("weights_gb", "activations_gb", "logits_gb", "total_gb")}
            res["estimate"]["saved_gb"] = est["activations_gb"] + est["logits_gb"]  # what saved_activations_gb measures
        except (AttributeError, KeyError, TypeError) as e:
            res["estimate"] = {"saved_gb": None, "error": repr(e)}
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
        t_step, t_floor = [], []
        for _ in range(a.repeats):  # interleaved, so a change in machine load hits both alike
            t_step += timed(step, 1)
            t_floor += timed(floor, 1)
    except torch.cuda.OutOfMemoryError as e:  # a batch too large for the device: say so, keep the others
        res["error"] = f"out of memory: {str(e).splitlines()[0]}"
        opt.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        return res
    res["peak_memory_gb"] = torch.cuda.max_memory_allocated(dev) / 1e9 if dev.type == "cuda" else None
    res["step_s"], res["floor_s"] = statistics.median(t_step), statistics.median(t_floor)
    res["step_over_floor"] = res["step_s"] / res["floor_s"]
    res["step_target_met"] = res["step_over_floor"] <= 1.05
    res["tokens_per_s"] = res["tokens"] / res["step_s"]
    res["samples_per_s"] = B / res["step_s"]
    res["achieved_tflops"] = res["step_flops"] / res["step_s"] / 1e12
    res["mfu_step"] = res["step_flops"] / res["step_s"] / peak if peak else None
    res["mfu_floor"] = res["step_flops"] / res["floor_s"] / peak if peak else None
    return res


def bench_inference(a, llm, interp, cases, B: int) -> dict:
    dev = llm.device
    gen_ex = [Example(e.prompt, e.features) for e in
              make_examples(cases, range(B), TITLES, llm, a.n_tokens, phase="eval", with_targets=False)]
    kw = dict(max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens)

    def gen_batched():
        interp.generate(gen_ex, batch_size=B, **kw)
        sync(dev)

    single = gen_ex[: a.single_samples]

    def gen_single():
        for e in single:
            interp.generate([e], **kw)
        sync(dev)

    t_b = statistics.median(timed(gen_batched, a.repeats))
    t_1 = statistics.median(timed(gen_single, 1)) if single else None
    out = {"generation": {"batch": B, "new_tokens": a.new_tokens, "batched_s": t_b,
                          "batched_new_tokens_per_s": B * a.new_tokens / t_b, "batched_samples_per_s": B / t_b}}
    if t_1:
        out["generation"].update(single_samples=len(single), single_samples_per_s=len(single) / t_1,
                                 batched_over_single=(B / t_b) / (len(single) / t_1))
    C = a.candidates
    cands = [[TITLES[(i + j) % len(TITLES)] + ("" if j < len(TITLES) else f" {j}") for j in range(C)] for i in range(B)]

    def score():
        interp.score_candidates(gen_ex, cands)
        sync(dev)

    t_sc = statistics.median(timed(score, a.repeats))
    out["scoring"] = {"cases": B, "candidates": C, "seconds": t_sc, "cases_per_s": B / t_sc, "pairs_per_s": B * C / t_sc}
    return out


def bench_align(a, llm) -> dict:
    """The token-space alignment fit (recinterp.align): title-token targets, then the closed-form aligner."""
    from recinterp import align

    titles = [f"{TITLES[i % len(TITLES)]} ({1950 + i % 50})" for i in range(a.align_items)]
    g = torch.Generator().manual_seed(0)
    items = torch.randn(a.align_items, 64, generator=g)
    t0 = time.perf_counter()
    targets, _ = align.title_token_targets(llm, titles, k=8)
    t1 = time.perf_counter()
    _, report = align.fit_item_aligner(items, targets, d_llm=llm.hidden_size)
    t2 = time.perf_counter()
    return {"items": a.align_items, "k": 8, "targets_s": t1 - t0, "fit_s": t2 - t1,
            "fit_report": {k: v for k, v in report.items() if isinstance(v, (int, float, str))}}


def _num(v, fmt: str, unit: str = "") -> str:
    return "n/a" if v is None else f"{v:{fmt}}{unit}"


def summary(r: dict) -> str:
    mfu = None if r["mfu_step"] is None else 100 * r["mfu_step"]
    return (f"step {r['step_s']:.3f} s, floor {r['floor_s']:.3f} s ({r['step_over_floor']:.3f}x), "
            f"{r['tokens_per_s']:.0f} tokens/s, MFU {_num(mfu, '.1f', '%')}, peak memory "
            f"{_num(r['peak_memory_gb'], '.1f', ' GB')}, saved activations {r['saved_activations_gb']:.2f} GB "
            f"(estimate {_num(r['estimate']['saved_gb'], '.2f')})")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--arch", default="smollm2-135m", choices=sorted(ARCHS), help="shape, random weights")
    ap.add_argument("--llm", default="", help="real weights instead of --arch: 'embedded', an HF id or a local path")
    ap.add_argument("--device", default="auto", help="cuda, cpu or auto")
    ap.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp32", "autocast"],
                    help="auto: bf16 on CUDA, fp32 on CPU; autocast: fp32 weights, bf16 autocast (CPU)")
    ap.add_argument("--tokenizer", default="auto", choices=["auto", "embedded", "tiny"])
    ap.add_argument("--batch", type=int, nargs="+", default=[16], help="batch sizes (the paper: 16; add one that fills the device)")
    ap.add_argument("--n-tokens", type=int, default=10, help="soft tokens (recovery, linear over 10 positions)")
    ap.add_argument("--max-target-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--single-samples", type=int, default=4, help="samples generated one at a time (0: skip)")
    ap.add_argument("--candidates", type=int, default=20, help="1 true + 19 distractors, as the gpu preset")
    ap.add_argument("--align-items", type=int, default=1682, help="items for the alignment fit (MovieLens: 1,682)")
    ap.add_argument("--no-inference", action="store_true", help="skip generation and scoring")
    ap.add_argument("--no-align", action="store_true")
    ap.add_argument("--gradient-checkpointing", action="store_true", help="recompute the LLM's layers in backward")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's peak for MFU (default: table / none)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    ap.add_argument("--out", required=True, help="JSON file to write")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    torch.manual_seed(0)
    llm = build(a)
    if a.gradient_checkpointing:
        from recinterp.llm import set_gradient_checkpointing
        set_gradient_checkpointing(llm.model)
    build_s = time.perf_counter() - t0
    dev = llm.device
    peak, peak_src = device_peak(dev, a.peak_tflops)
    d = 64
    proj = build_adapter(kind="linear", d_in=d, d_llm=llm.hidden_size, n_positions=10, n_tokens=a.n_tokens,
                           input="all", task="recovery").to(dev)  # fp32 adapter, as train_adapter keeps it
    interp = Interpreter(llm, proj, max_target_tokens=a.max_target_tokens)
    g = torch.Generator().manual_seed(0)
    n = max(a.batch)
    answers = torch.stack([torch.randperm(len(TITLES), generator=g)[:10] for _ in range(n)])
    cases = Cases("recovery", "all", torch.randn(n, 1, 10, d, generator=g), answers, answers.clone(),
                  meta={"dataset": "movielens", "n_items": len(TITLES)})
    res = {"model": llm.describe(), "arch": None if a.llm else a.arch, "config": None if a.llm else ARCHS[a.arch],
           "weights": "real" if a.llm else "random", "dtype": a.dtype, "autocast": llm.use_autocast,
           "tokenizer": type(llm.tokenizer).__name__ + f" ({len(llm.tokenizer)} ids)",
           "device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "gradient_checkpointing": a.gradient_checkpointing, "build_s": build_s,
           "peak_flops": peak, "peak_source": peak_src, "mfu_formula": MFU_FORMULA, "soft_tokens": a.n_tokens,
           "runs": []}
    for B in a.batch:
        r = bench_batch(a, llm, interp, cases, B, peak)
        if r.get("error") and dev.type == "cuda":  # an out-of-memory batch leaves its blocks cached: free them,
            gc.collect()  # or every later stage fails too (the first GPU check's 7B generation did)
            torch.cuda.empty_cache()
        res["runs"].append(r)
        print(f"batch {B}: " + (r.get("error") or summary(r)), flush=True)
    if not a.no_inference:
        res.update(bench_inference(a, llm, interp, cases, a.batch[0]))
        gsum, ssum = res["generation"], res["scoring"]
        print(f"generation (batch {gsum['batch']}, {gsum['new_tokens']} new tokens): "
              f"{gsum['batched_new_tokens_per_s']:.0f} new tokens/s"
              + (f", {gsum['batched_over_single']:.1f}x one at a time" if "batched_over_single" in gsum else "")
              + f"; scoring: {ssum['cases_per_s']:.1f} cases/s x {ssum['candidates']} candidates", flush=True)
    res["align"] = {"skipped": "--no-align"} if a.no_align else bench_align(a, llm)
    print("alignment fit:", res["align"].get("skipped") or f"{res['align']['fit_s']:.2f} s for {res['align']['items']} items")
    res["loadavg_before"], res["loadavg_after"] = load0, os.getloadavg()
    res["total_s"] = time.perf_counter() - t0
    write_json_atomic(a.out, res)
    print(f"{res['model']['name']} ({res['dtype']}, {res['device_name']}): {a.out}")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
