"""What the SHA256SUMS rule costs: hashing time against the save + load it guards (a benchmark, not a test).

    python bench/bench_integrity.py results/bench/integrity.json [--repeats 5]

For each artefact at the size the smoke and cpu presets write it, times ``save`` then ``load``
(``repeats`` times, median), and the time spent inside ``recinterp.config.sha256_file`` during
them (sealing at save, verifying at load): the share the integrity rule adds.

- ``adapter_linear``: recovery's linear adapter (d_in 64 -> 10 soft tokens of width 576, SmolLM2);
- ``adapter_structured``: the aligned route's structured adapter at MovieLens size (1682 items,
  hidden 2048, 8 tokens per position: the largest file the notebooks write);
- ``train_checkpoint``: a training checkpoint of the linear adapter (adapter + AdamW state);
- ``cases``: 64 recovery cases (the smoke preset's max_train_cases) of SASRec states;
- ``data_cache``: a processed cache of MovieLens' size (67,635 train windows + the catalogue).
The machine is shared: the JSON records the load average.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import recinterp.config as config
from recinterp.adapter import build_adapter, load_adapter
from recinterp.cases import Cases
from recinterp.data import _read_cache, _read_meta, _write_cache
from recinterp.data.types import Catalogue, RecDataset, Split
from recinterp.train_adapter import _save_checkpoint, load_train_state

HASHED = [0.0]
_sha = config.sha256_file


def _timed_sha(path):
    t = time.perf_counter()
    try:
        return _sha(path)
    finally:
        HASHED[0] += time.perf_counter() - t


config.sha256_file = _timed_sha  # seal / verify look it up at call time


def measure(save, load, repeats: int) -> dict:
    rows = []
    for _ in range(repeats):
        HASHED[0] = 0.0
        t0 = time.perf_counter()
        save()
        t1 = time.perf_counter()
        load()
        t2 = time.perf_counter()
        rows.append((t1 - t0, t2 - t1, HASHED[0]))
    save_s, load_s, hash_s = (statistics.median(r[i] for r in rows) for i in range(3))
    total = save_s + load_s
    return {"save_s": save_s, "load_s": load_s, "hash_s": hash_s, "hash_share": hash_s / total,
            "without_hash_s": total - hash_s, "overhead_vs_without": hash_s / max(total - hash_s, 1e-12),
            "repeats": repeats}


def artefacts(tmp: Path):
    torch.manual_seed(0)
    lin = build_adapter(kind="linear", d_in=64, d_llm=576, n_positions=10, n_tokens=10, input="all")
    yield "adapter_linear", lambda: lin.save(tmp / "lin"), lambda: load_adapter(tmp / "lin")
    st = build_adapter(kind="structured", d_in=64, d_llm=576, n_positions=10, n_tokens=80, hidden=2048,
                       standardize=True, n_items=1682, d_item=64, temperature=0.05, input="all")
    yield "adapter_structured", lambda: st.save(tmp / "st"), lambda: load_adapter(tmp / "st")
    opt = torch.optim.AdamW(lin.parameters())
    lin(torch.randn(4, 10, 64)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    state = {"step": 1, "micro": 1, "history": [{"step": 1, "loss": 1.0}], "config": {}, "seconds": 1.0}
    yield ("train_checkpoint", lambda: _save_checkpoint(tmp / "ckpt", lin, opt, sched, state),
           lambda: (load_train_state(tmp / "ckpt"), load_adapter(tmp / "ckpt")))
    cases = Cases("recovery", "all", torch.randn(64, 1, 10, 64), torch.randint(0, 1682, (64, 10)),
                  torch.randint(0, 1682, (64, 10)), {"last": torch.randn(64, 64)}, {"dataset": "movielens"})
    yield "cases", lambda: cases.save(tmp / "cases"), lambda: Cases.load(tmp / "cases")
    n, L, N = 1682, 10, 67635
    lens = torch.randint(1, L + 1, (N,))
    seqs = torch.where(torch.arange(L)[None] < lens[:, None], torch.randint(0, n, (N, L)), torch.tensor(n))
    split = Split(seqs, lens, torch.randint(0, n, (N,)))
    titles = [f"Movie number {i} (1995)" for i in range(n)]
    ds = RecDataset("movielens", n, split, split.subset(range(943)), split.subset(range(943)),
                    Catalogue(titles, titles, [["Drama"]] * n, [[] for _ in range(n)]))
    cache = tmp / "processed"

    def load_cache():
        assert _read_cache(cache, _read_meta(cache)) is not None

    yield "data_cache", lambda: _write_cache(cache, ds, {}), load_cache


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="JSON file to write")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    res = {"loadavg": os.getloadavg(), "torch_threads": torch.get_num_threads(), "artefacts": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, save, load in artefacts(Path(tmp)):
            save(), load()  # warm-up: first-call imports, page cache
            r = measure(save, load, a.repeats)
            res["artefacts"][name] = r
            print(f"{name:20s} save {r['save_s'] * 1e3:8.1f} ms  load {r['load_s'] * 1e3:8.1f} ms  "
                  f"hash {r['hash_s'] * 1e3:7.1f} ms  = {100 * r['hash_share']:.1f}% of save+load", file=sys.stderr)
    config.write_json_atomic(a.out, res)
    return res


if __name__ == "__main__":
    main()
