"""Small datasets of one's own, made in the tests: a LLaRA-format folder and an interaction log.

Titles are chosen to trip naive code: regex metacharacters, non-ASCII, commas, quotes.
Histories follow a simple rule (users walk through the catalogue in steps), so the
encoders have something to learn in a few epochs.
"""
from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pandas as pd

TRICKY = ["C++ (Part 1) [v2.0]*?", "Café Noir, Le", 'The "Quoted" One', "Ünïcødé ☃ Song", "a+b=c? (1999)",
          "Dollar $ign ^Caret^", "Back\\slash", "Ω, Ψ & Σ", "It's \"fine\", ok", "日本語のタイトル"]


def titles(n: int) -> list[str]:
    return [TRICKY[i] if i < len(TRICKY) else f"Track {i}: Part {i % 7}" for i in range(n)]


def user_sequences(n_users: int, n_items: int, seed: int = 0, min_len: int = 2, max_len: int = 14) -> list[list[int]]:
    rng = random.Random(seed)
    seqs = []
    for _ in range(n_users):
        start, step = rng.randrange(n_items), rng.choice([1, 2, 3])
        seqs.append([(start + step * k) % n_items for k in range(rng.randint(min_len, max_len))])
    return seqs


def _rows(seq: list[int], pad: int, window: int, start: int):
    for t in range(start, len(seq)):
        h = seq[max(0, t - window):t]
        yield {"seq": h + [pad] * (window - len(h)), "len_seq": max(1, len(h)), "next": seq[t]}


def make_llara_folder(folder: Path, n_items: int = 40, n_users: int = 60, window: int = 10, seed: int = 0,
                      title_file: str = "id2name.txt") -> Path:
    """Train/Val/Test pickles (padding id = n_items, some all-padding rows as released) + titles."""
    folder.mkdir(parents=True, exist_ok=True)
    seqs = user_sequences(n_users, n_items, seed)
    n_test = n_val = max(1, n_users // 10)
    test, val, train = seqs[:n_test], seqs[n_test:n_test + n_val], seqs[n_test + n_val:]
    frames = {
        "train_data.df": [r for s in train for r in _rows(s, n_items, window, 0)],  # includes empty histories
        "Val_data.df": [r for s in val for r in _rows(s, n_items, window, len(s) - 1)],
        "Test_data.df": [r for s in test for r in _rows(s, n_items, window, len(s) - 1)]
        + [{"seq": [n_items] * window, "len_seq": 1, "next": 0}],  # an all-padding row, as in the released files
    }
    for name, rows in frames.items():
        pd.DataFrame(rows, columns=["seq", "len_seq", "next"]).to_pickle(folder / name)
    names = titles(n_items)
    if title_file == "id2name.txt":
        (folder / title_file).write_text("".join(f"{i}::{t}\r\n" for i, t in enumerate(names)), encoding="utf-8")
    else:  # u.item style: ids from 1, '|'-separated
        (folder / title_file).write_text("".join(f"{i + 1}|{t}|01-Jan-1995||x|" + "|".join("0" * 19) + "\n"
                                                 for i, t in enumerate(names)), encoding="latin-1", errors="replace")
    return folder


def write_sha256sums(folder: Path, out: Path | None = None) -> Path:
    out = out or folder.parent / f"{folder.name}.SHA256SUMS"
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in sorted(folder.glob("*.df"))]
    out.write_text("".join(lines))
    return out


def make_log_folder(folder: Path, n_items: int = 40, n_users: int = 60, seed: int = 0, sep: str = ",") -> Path:
    """interactions.csv (user,item,timestamp,rating) + items.csv (item,title,genres), with the quirks a real
    log has: a duplicate row, rows out of time order, a user with one interaction, an item without a title,
    and a low rating."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for u, seq in enumerate(user_sequences(n_users, n_items, seed, min_len=3)):
        t0 = 1_600_000_000 + 1000 * u
        rows += [{"user": f"u{u}", "item": f"i{it}", "timestamp": t0 + 10 * k, "rating": rng.choice([3, 4, 5])}
                 for k, it in enumerate(seq)]
    rows.append(dict(rows[0]))  # a duplicate row
    rows[1], rows[2] = rows[2], rows[1]  # user u0's rows out of time order
    rows.append({"user": "lonely", "item": "i1", "timestamp": 1_700_000_000, "rating": 5})  # one interaction
    rows.append({"user": "u1", "item": "i_untitled", "timestamp": 1_600_001_005, "rating": 5})  # no title
    rows.append({"user": "u2", "item": "i3", "timestamp": 1_600_002_005, "rating": 1})  # below the threshold
    pd.DataFrame(rows).to_csv(folder / "interactions.csv", index=False, sep=sep)
    items = pd.DataFrame({"item": [f"i{i}" for i in range(n_items)], "title": titles(n_items),
                          "genres": ["Rock|Pop" if i % 2 else "Jazz" for i in range(n_items)]})
    items.to_csv(folder / "items.csv", index=False)
    return folder


TINY_ITEMS = 20
TINY_TITLES = [f"{chr(65 + i)}{chr(122 - i)} film" for i in range(TINY_ITEMS)]  # distinct first bytes: the byte tokenizer's k tokens differ


def tiny_world():
    """A tiny SASRec (d=8), a 12-window dataset whose train, val and test are one split (windows of 1..10
    items), and the tiny random LLM: the aligned route's and the learning curve's tests."""
    import torch

    from recinterp.data.types import Catalogue, RecDataset, Split
    from recinterp.llm import tiny_llm
    from recinterp.models import build_encoder

    torch.manual_seed(0)
    enc = build_encoder("sasrec", TINY_ITEMS, d=8).eval()
    g = torch.Generator().manual_seed(1)
    lens = torch.tensor([10, 3, 1, 2, 10, 10, 5, 4, 10, 6, 7, 8])
    seqs = torch.full((len(lens), 10), TINY_ITEMS)
    for i in range(len(lens)):
        seqs[i, : lens[i]] = torch.randperm(TINY_ITEMS, generator=g)[: lens[i]]
    split = Split(seqs, lens, torch.zeros(len(lens), dtype=torch.long))
    ds = RecDataset("movielens", TINY_ITEMS, split, split, split, Catalogue(TINY_TITLES, TINY_TITLES), noun="movie",
                    nouns="movies")  # as load_dataset("movielens") gives it
    return enc, ds, tiny_llm()


def pair_cases(n: int, n_items: int, seed: int = 0):
    """(encoder, cases): an untrained d=8 SASRec over ``n_items`` and task 2's ``pair`` cases of ``n`` random
    windows (2-10 distinct items each), all drawn after ``torch.manual_seed(seed)``."""
    import torch

    from recinterp.data.types import Split
    from recinterp.models import build_encoder
    from recinterp.tasks import residual_cases

    torch.manual_seed(seed)
    enc = build_encoder("sasrec", n_items, d=8)
    lens = torch.randint(2, 11, (n,))
    seqs = torch.full((n, 10), n_items)
    for i in range(n):
        seqs[i, : lens[i]] = torch.randperm(n_items)[: lens[i]]
    cases = residual_cases(enc, Split(seqs, lens, torch.zeros(n, dtype=torch.long)), input="pair", dataset="movielens")
    return enc, cases
