"""Speed of the splice model against the bare frozen LLM (a benchmark, not a test).

    python bench/bench_interpreter.py results/bench/interpreter.json            # embedded SmolLM2
    python bench/bench_interpreter.py out.json --llm tiny --repeats 2           # plumbing check, seconds

Measures, on the same token batch (a recovery prompt + a 32-token target, batch 16):
- ``step``: one full adapter training step (prompt building, tokenisation, adapter,
  splice, frozen LLM forward + backward, frozen check, AdamW step);
- ``floor``: the bare frozen LLM's forward + backward on the same tokens, gradient to the
  input embeddings only (what any adapter needs), LM head on the target positions only;
- ``floor_hf``: the same through the stock HF path (``model(inputs_embeds, labels=...)``,
  logits at every position), for reference;
- generation: batched greedy decoding (one batch, left padding) against one sample at a
  time, the same number of new tokens each (EOS suppressed so both decode the same length);
- candidate scoring throughput (the likelihood probe) for reference.
Targets: step <= 1.05 x floor; batched generation >= 5 x per-sample throughput.
The machine is shared: the JSON records the load average and threads used.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

from recinterp.adapter import build_adapter
from recinterp.tasks import Cases, make_examples  # importing recinterp.tasks registers the built-in tasks
from recinterp.collator import IGNORE, Example
from bench_llm import TITLES, floor_loss_fn, timed  # same folder: run as a script
from recinterp.config import write_json_atomic
from recinterp.interpreter import Interpreter
from recinterp.llm import check_frozen, load_llm, tiny_llm


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="where to write the JSON result")
    ap.add_argument("--llm", default="embedded", help="'embedded', 'tiny', an HF id or a local path")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--n-tokens", type=int, default=10, help="soft tokens (recovery, linear over 10 positions)")
    ap.add_argument("--max-target-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--gen-batch", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--candidates", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    load0 = os.getloadavg()
    torch.manual_seed(0)
    llm = tiny_llm() if a.llm == "tiny" else load_llm(a.llm, device=a.device, dtype=a.dtype)
    d = 64
    proj = build_adapter(kind="linear", d_in=d, d_llm=llm.hidden_size, n_positions=10, n_tokens=a.n_tokens,
                         input="all", task="recovery").to(llm.device)
    interp = Interpreter(llm, proj, max_target_tokens=a.max_target_tokens)
    g = torch.Generator().manual_seed(0)
    B = a.batch
    answers = torch.stack([torch.randperm(len(TITLES), generator=g)[:10] for _ in range(max(B, a.gen_batch))])
    cases = Cases("recovery", "all", torch.randn(len(answers), 1, 10, d, generator=g), answers, answers.clone(),
                  meta={"dataset": "movielens", "n_items": len(TITLES)})
    opt = torch.optim.AdamW(proj.parameters(), lr=1e-3, weight_decay=1e-6)

    def step():
        ex = make_examples(cases, range(B), TITLES, llm, a.n_tokens, phase="train", seed=0)
        batch = interp.collator(ex)
        loss = interp(batch)
        loss.backward()
        check_frozen(llm.model)
        opt.step()
        opt.zero_grad(set_to_none=True)

    batch = interp.collator(make_examples(cases, range(B), TITLES, llm, a.n_tokens, phase="train", seed=0)).to(llm.device)
    floor_loss = floor_loss_fn(llm, batch)
    emb_layer = llm.model.get_input_embeddings()
    ids = batch.input_ids.masked_fill(batch.slot_mask, llm.pad_token_id)

    def floor():
        floor_loss().backward()

    def floor_hf():
        x = emb_layer(ids).detach().requires_grad_(True)
        with llm.autocast():
            out = llm.model(inputs_embeds=x, attention_mask=batch.attention_mask, labels=batch.labels)
        out.loss.float().backward()

    res = {"llm": llm.describe(), "torch_threads": torch.get_num_threads(), "batch": B,
           "tokens_per_sample": float(batch.attention_mask.sum(1).float().mean()),
           "target_tokens_per_sample": float((batch.labels != IGNORE).sum(1).float().mean()),
           "soft_tokens": a.n_tokens, "repeats": a.repeats}
    t_step, t_floor, t_hf = [], [], []
    for _ in range(a.repeats):  # interleaved, so a change in machine load hits all three alike
        t_step += timed(step, 1)
        t_floor += timed(floor, 1)
        t_hf += timed(floor_hf, 1)
    res["step_s"], res["floor_s"], res["floor_hf_s"] = (statistics.median(t) for t in (t_step, t_floor, t_hf))
    res["step_over_floor"] = res["step_s"] / res["floor_s"]
    res["step_over_floor_hf"] = res["step_s"] / res["floor_hf_s"]
    res["step_target_met"] = res["step_over_floor"] <= 1.05

    gen_ex = [Example(e.prompt, e.features) for e in
              make_examples(cases, range(a.gen_batch), TITLES, llm, a.n_tokens, phase="eval", with_targets=False)]
    kw = dict(max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens)
    t_b = statistics.median(timed(lambda: interp.generate(gen_ex, batch_size=a.gen_batch, **kw), max(1, a.repeats - 1)))
    t_1 = statistics.median(timed(lambda: [interp.generate([e], **kw) for e in gen_ex], 1))
    res.update(gen_new_tokens=a.new_tokens, gen_batch=a.gen_batch, gen_batched_samples_s=a.gen_batch / t_b,
               gen_single_samples_s=a.gen_batch / t_1)
    res["gen_speedup"] = res["gen_batched_samples_s"] / res["gen_single_samples_s"]
    res["gen_target_met"] = res["gen_speedup"] >= 5.0

    C = a.candidates
    cands = [[TITLES[(i + j) % len(TITLES)] for j in range(C)] for i in range(a.gen_batch)]
    t_sc = statistics.median(timed(lambda: interp.score_candidates(gen_ex, cands), 1))
    res.update(score_candidates=C, score_cases_s=a.gen_batch / t_sc)
    res["loadavg_before"], res["loadavg_after"] = load0, os.getloadavg()
    write_json_atomic(a.out, res)

    rows = [("LLM", f"{llm.name} ({res['llm']['compute_dtype']}, autocast={llm.use_autocast}, {res['llm']['device']})"),
            ("batch x tokens", f"{B} x {res['tokens_per_sample']:.0f} ({res['target_tokens_per_sample']:.0f} target, {a.n_tokens} soft)"),
            ("adapter step", f"{res['step_s']:.3f} s"),
            ("floor (LLM fwd+bwd)", f"{res['floor_s']:.3f} s"),
            ("floor, HF labels path", f"{res['floor_hf_s']:.3f} s"),
            ("step / floor", f"{res['step_over_floor']:.3f}  (target <= 1.05: {'met' if res['step_target_met'] else 'NOT met'})"),
            ("generation batched", f"{res['gen_batched_samples_s']:.2f} samples/s ({a.new_tokens} new tokens)"),
            ("generation 1-by-1", f"{res['gen_single_samples_s']:.2f} samples/s"),
            ("batched / single", f"{res['gen_speedup']:.1f}x  (target >= 5x: {'met' if res['gen_target_met'] else 'NOT met'})"),
            (f"likelihood probe, {C} cands", f"{res['score_cases_s']:.2f} cases/s"),
            ("load average", f"{load0[0]:.1f} -> {res['loadavg_after'][0]:.1f} ({res['torch_threads']} threads)")]
    w = max(len(r[0]) for r in rows)
    print("\n".join(f"{k.ljust(w)}  {v}" for k, v in rows))
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
