"""Cases: what every task, the trainer and the probes share.

A task is a set of :class:`Cases`: per case, the frozen encoder's states that the
adapter reads (computed once, cached on disk), the true answer as item ids, and the
items visible in the input (own-sequence distractors for the probes).
``make_examples`` adds the prompt (a training paraphrase or a held-out phrasing) and
the target text built from the normalised titles.

``INPUTS`` is the one table of every task's inputs (how its features are made):
``recinterp.tasks`` builds the features, ``recinterp.prompts`` holds the phrasings.
"""
from __future__ import annotations

import os
import random
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import torch

from recinterp import prompts as P
from recinterp.collator import Example
from recinterp.config import IntegrityError, read_json, seal, unseal, verify, write_json_atomic
from recinterp.llm import SLOT_TOKEN

TASKS = ("item", "recovery", "residual")
# task -> the inputs it can read; the first is the default (see recinterp.tasks.recovery / .residual)
INPUTS = {"item": ("item",), "recovery": ("all", "last"), "residual": ("pair", "diff", "two_slots")}


@dataclass
class Cases:
    task: str  # item | recovery | residual
    input: str  # how the features were made (INPUTS[task])
    features: torch.Tensor  # (N, S, P, d_in) float32: what the adapter reads, S placeholders per case
    answers: torch.Tensor  # (N, A) int64 true item ids, -1 padded (recovery: the window, oldest first)
    context: torch.Tensor  # (N, L) int64 items visible in the input, -1 padded (own-sequence distractors)
    states: dict[str, torch.Tensor] = field(default_factory=dict)  # (N, d) vectors for encoder-space probes
    meta: dict = field(default_factory=dict)  # encoder, dataset, split, notes

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}: choose one of {TASKS}")
        if self.input not in INPUTS[self.task]:
            raise ValueError(f"unknown input {self.input!r} for {self.task}: choose one of {INPUTS[self.task]}")
        n = self.features.shape[0]
        if self.features.dim() != 4 or self.answers.shape[0] != n or self.context.shape[0] != n:
            raise ValueError(f"cases need features (N, S, P, d_in), answers (N, A), context (N, L) with one N; got "
                             f"{tuple(self.features.shape)}, {tuple(self.answers.shape)}, {tuple(self.context.shape)}")
        if n and bool((self.answers[:, 0] < 0).any()):
            raise ValueError("every case needs at least one true answer")

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def subset(self, idx) -> "Cases":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Cases(self.task, self.input, self.features[idx], self.answers[idx], self.context[idx],
                     {k: v[idx] for k, v in self.states.items()}, dict(self.meta))

    # -- cache on disk (safetensors + JSON, no pickles) -------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        unseal(folder)
        tensors = {"features": self.features, "answers": self.answers, "context": self.context,
                   **{f"states.{k}": v for k, v in self.states.items()}}
        tmp = folder / "cases.safetensors.tmp"
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(tmp))
        os.replace(tmp, folder / "cases.safetensors")
        write_json_atomic(folder / "cases.json", {"task": self.task, "input": self.input, "meta": self.meta})
        seal(folder, CASE_FILES)  # last: a folder without it is incomplete
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Cases":
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / "cases.json").exists() or not (folder / "cases.safetensors").exists():
            raise FileNotFoundError(f"no cached cases in {folder}")
        fix = f"delete {folder} (the cases are rebuilt from the encoder)"
        verify(folder, CASE_FILES, fix)
        info = read_json(folder / "cases.json", fix)
        t = load_file(str(folder / "cases.safetensors"))
        states = {k.split(".", 1)[1]: v for k, v in t.items() if k.startswith("states.")}
        return cls(info["task"], info["input"], t["features"], t["answers"], t["context"], states, info["meta"])


CASE_FILES = ("cases.safetensors", "cases.json")


def cached(folder: str | os.PathLike | None, build) -> Cases:
    """Load cases from ``folder`` if it holds them, else ``build()`` and save them there.
    Cases that fail their SHA256SUMS check are rebuilt, with a warning naming the file."""
    if folder is not None and (Path(folder) / "cases.json").exists():
        try:
            return Cases.load(folder)
        except IntegrityError as e:
            warnings.warn(f"{e} (by hand). The cached cases are not used: rebuilding them now.", stacklevel=2)
    cases = build()
    if folder is not None:
        cases.save(folder)
    return cases


# -- prompts and targets ----------------------------------------------------------------
def prompts_for(cases: Cases) -> P.TaskPrompts:
    if cases.task == "item":
        return P.ITEM
    if cases.task == "recovery":
        return P.RECOVERY
    return P.RESIDUAL_TWO if cases.input == "two_slots" else P.RESIDUAL_ONE


def nouns_for(dataset: str) -> tuple[str, str]:
    return P.NOUNS.get(dataset, ("item", "items"))


_rendered: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # tokenizer -> {key: prompt text}


def render(tokenizer, template: str, slots, n_tokens: int, slot_token: str, dataset: str = "",
           layout: str = "inline", n_positions: int = 1) -> str:
    """build_prompt, memoised per tokenizer (a handful of templates, thousands of samples)."""
    memo = _rendered.setdefault(tokenizer, {})
    key = (template, tuple(slots), n_tokens, slot_token, dataset, layout, n_positions)
    if key not in memo:
        noun, nouns = nouns_for(dataset)
        memo[key] = P.build_prompt(tokenizer, template, tuple(slots), n_tokens, slot_token, noun, nouns,
                                   layout=layout, n_positions=n_positions)
    return memo[key]


def target_text(cases: Cases, i: int, titles: list[str], order: str = "keep", rng: random.Random | None = None) -> str:
    ids = [int(a) for a in cases.answers[i] if a >= 0]
    if cases.task != "recovery":
        return P.title_target(titles[ids[0]])
    if order == "shuffle":
        (rng or random).shuffle(ids)
    elif order != "keep":
        raise ValueError(f"unknown target order {order!r}: choose 'keep' (oldest first) or 'shuffle'")
    return P.list_target([titles[j] for j in ids])


def make_examples(cases: Cases, idx, titles: list[str], llm, n_tokens: int, phase: str = "eval", seed: int = 0,
                  epoch: int = 0, target_order: str = "keep", prompt_index: int = 0, features_from=None,
                  with_targets: bool = True, layout: str = "inline") -> list[Example]:
    """LLM examples for cases ``idx``.

    phase="train": a paraphrase per case drawn from an RNG seeded by (seed, epoch, case),
    so a resumed run sees the same prompts.  phase="eval": held-out phrasing ``prompt_index``.
    ``features_from``: optional case indices whose features replace each case's own (the
    shuffled-soft-token control: same prompt and target, another sample's states).
    ``layout``: how each placeholder's soft tokens are laid out (the adapter's ``cfg.layout``;
    "list" gives each of the P positions its own numbered line).
    """
    tp = prompts_for(cases)
    dataset = cases.meta.get("dataset", "")
    idx = [int(i) for i in idx]
    src = idx if features_from is None else [int(j) for j in features_from]
    if len(src) != len(idx):
        raise ValueError("features_from must give one source case per case")
    out = []
    for i, j in zip(idx, src):
        rng = random.Random(f"{seed}/{epoch}/{i}")
        template = P.pick_template(tp, phase, rng, prompt_index)
        prompt = render(llm.tokenizer, template, tp.slots, n_tokens, SLOT_TOKEN, dataset, layout,
                        int(cases.features.shape[2]))
        target = target_text(cases, i, titles, target_order, rng) if with_targets else ""
        out.append(Example(prompt, cases.features[j], target))
    return out


def check_titles(cases: Cases, titles: list[str]) -> None:
    hi = int(cases.answers.max()) if len(cases) else -1
    if hi >= len(titles):
        raise ValueError(f"item id {hi} has no title (catalogue of {len(titles)})")
