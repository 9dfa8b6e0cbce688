"""Cases: what every task, the trainer and the probes share.

A task is a set of :class:`Cases`: per case, the frozen encoder's states that the
adapter reads (computed once, cached on disk), the true answer as item ids, and the
items visible in the input (own-sequence distractors for the probes).
``make_examples`` adds the prompt (a training paraphrase or a held-out phrasing) and
the target text built from the normalised titles.

A task is an object (:class:`Task`), registered by name in ``TASKS``: it owns what
differs between tasks (its inputs, how its cases are built, its prompt and target, its
generation metric and evaluation defaults, its readout pairs, its probe answers, its
default soft-token layout), and everything else asks it instead of testing the name.
The built-in tasks (item alignment, sequence recovery, sequence residual) register when
``recinterp.tasks`` is imported; a new task is one file with a ``Task`` subclass and one
``register_task(MyTask())``.
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
from recinterp.data import NOUNS
from recinterp.llm import SLOT_TOKEN

class Task:
    """One task: what the library asks instead of testing a task's name.

    Subclasses set ``name`` and ``inputs`` and define ``prompts``, ``build`` and
    ``readout_inputs``; the rest has defaults that fit a one-title answer.
    """

    name: str = ""
    inputs: tuple[str, ...] = ()  # how its features can be made; the first is the default
    generation_metric: str = "hit"  # per case: "hit" (the true title is named) or "found" (titles named, 0..A)
    layout: str = "inline"  # the aligned route's soft-token layout ("list": one numbered line per position)
    aligned_route: str = "structured"  # the aligned route: "structured" (readout + aligner) or "aligner" (item table)
    readout_per: str = "case"  # what one readout pair is: a "case" or a "position" of it
    readout_reference: bool = True  # evaluations carry a fitted LinearReadout reference when asked to
    eval_defaults: dict = {}  # evaluate()'s defaults for this task (samplers, n_distractors, max_new_tokens)
    popular_sampler: bool = True  # add the popularity-matched sampler when popularity counts are given

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # -- prompt and target -----------------------------------------------------------
    def prompts(self, input: str) -> P.TaskPrompts:
        raise NotImplementedError

    def target(self, ids: list[int], titles: list[str], order: str = "keep", rng: random.Random | None = None) -> str:
        """The answer text for true items ``ids`` (one title: the first)."""
        return P.title_target(titles[ids[0]])

    def answer_texts(self, candidates: list[list[int]], titles: list[str]) -> tuple[list[list[str]], bool]:
        """The likelihood probe's answer text per candidate, and whether it ends with EOS."""
        return [[titles[c] for c in row] for row in candidates], True

    # -- cases ---------------------------------------------------------------------------
    def build(self, enc, ds, split: str, input: str, positions: str = "last", seed: int = 0,
              held_out_items: float = 0.1) -> "Cases":
        """The task's cases on a split of dataset ``ds`` (``recinterp.tasks.build_cases`` caches them)."""
        raise NotImplementedError

    def eval_splits(self, split: str) -> list[str]:
        """The splits an evaluation reads, given the preset's eval split."""
        return [split]

    def evaluate_kwargs(self, with_popularity: bool) -> dict:
        samplers = tuple(self.eval_defaults.get("samplers", ("random",)))
        if with_popularity and self.popular_sampler:
            samplers += ("popular",)
        return {**self.eval_defaults, "samplers": samplers}

    # -- readouts and encoder-space references -------------------------------------------
    def readout_inputs(self, cases: "Cases") -> torch.Tensor:
        """(N, d) what the reference ``LinearReadout`` reads (recinterp.probes)."""
        raise NotImplementedError

    def readout_pairs(self, cases: "Cases") -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) the aligned route's readout learns from (state -> item)."""
        raise ValueError(f"no readout for task {self.name!r}")

    def extra_readout_pairs(self, enc, split, per_item: int, input: str, seed: int = 0):
        raise ValueError(f"readout option random_appends applies to the residual task only (a task takes it by "
                         f"defining extra_readout_pairs), not to {self.name!r}")

    def encoder_scores(self, item_embeddings: torch.Tensor, cases: "Cases", candidates: torch.Tensor):
        """(N, C) the encoder's own scores of the candidates, a reference for the probe; None: no reference."""
        return None


TASKS: dict[str, Task] = {}  # name -> the task object (register_task)


def register_task(task: Task) -> Task:
    """Make ``task`` known by its name (replacing a task of that name); returns it."""
    if not task.name or not task.inputs:
        raise ValueError(f"a task needs a name and at least one input, got {task!r} with inputs {task.inputs!r}")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}: choose one of {sorted(TASKS)} (the built-in tasks register "
                         f"when recinterp.tasks is imported; a new one with register_task)")
    return TASKS[name]


def get_split(ds, name: str):
    """A split by name ("train", "val", "test" or an extra such as "test_all"); (split, name used)."""
    if name in ds.extra:
        return ds.extra[name], name
    if name in ("train", "val", "test"):
        return getattr(ds, name), name
    if name == "test_all":  # only MovieLens has every position of the test users
        return ds.test, "test"
    raise ValueError(f"unknown split {name!r} for {ds.name}: choose train, val, test or one of {sorted(ds.extra)}")


@torch.no_grad()
def hidden_states(enc, seqs: torch.Tensor, lens: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """The encoder's states (N, L, d) of windows ``seqs`` (N, L) of ``lens`` items, in batches, on the CPU."""
    enc.eval()
    dev = next(enc.parameters()).device
    return torch.cat([enc.hidden_states(seqs[s:s + batch_size].to(dev), lens[s:s + batch_size].to(dev)).float().cpu()
                      for s in range(0, len(seqs), batch_size)])


@dataclass
class Cases:
    task: str  # a registered task's name (TASKS)
    input: str  # how the features were made (one of the task's inputs)
    features: torch.Tensor  # (N, S, P, d_in) float32: what the adapter reads, S placeholders per case
    answers: torch.Tensor  # (N, A) int64 true item ids, -1 padded (recovery: the window, oldest first)
    context: torch.Tensor  # (N, L) int64 items visible in the input, -1 padded (own-sequence distractors)
    states: dict[str, torch.Tensor] = field(default_factory=dict)  # (N, d) vectors for encoder-space probes
    meta: dict = field(default_factory=dict)  # encoder, dataset, split, notes

    def __post_init__(self):
        inputs = get_task(self.task).inputs
        if self.input not in inputs:
            raise ValueError(f"unknown input {self.input!r} for {self.task}: choose one of {inputs}")
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


def cached(folder: str | os.PathLike | None, build, made_from: dict | None = None) -> Cases:
    """Load cases from ``folder`` if it holds them, else ``build()`` and save them there.
    Cases that fail their SHA256SUMS check are rebuilt, with a warning naming the file.  ``made_from``
    (e.g. ``{"encoder_sha256": ...}``, the weights the states come from) is recorded in ``cases.json``;
    cases recorded as made from anything else (a retrained encoder) are rebuilt, saying so."""
    if folder is not None and (Path(folder) / "cases.json").exists():
        try:
            cases = Cases.load(folder)
            if made_from is None or cases.meta.get("made_from") == made_from:
                return cases
            print(f"[cases] {folder} was made from {cases.meta.get('made_from') or 'unrecorded weights'}, not "
                  f"{made_from}: rebuilding the cases")
        except IntegrityError as e:
            warnings.warn(f"{e} (by hand). The cached cases are not used: rebuilding them now.", stacklevel=2)
    cases = build()
    if made_from is not None:
        cases.meta["made_from"] = dict(made_from)
    if folder is not None:
        cases.save(folder)
    return cases


# -- prompts and targets ----------------------------------------------------------------
def prompts_for(cases: Cases) -> P.TaskPrompts:
    return get_task(cases.task).prompts(cases.input)


def nouns_meta(nouns: tuple[str, str] | None) -> dict:
    """What a case builder adds to ``Cases.meta`` for its dataset's item nouns (``(ds.noun, ds.nouns)``)."""
    return {} if nouns is None else {"nouns": [str(nouns[0]), str(nouns[1])]}


def nouns_for(cases: Cases) -> tuple[str, str]:
    """The item nouns the prompts of ``cases`` use: those recorded with the cases (from their dataset), else a
    built-in dataset's by name, else "item"/"items".  No global: the wording depends on the cases alone."""
    if cases.meta.get("nouns"):
        noun, nouns = cases.meta["nouns"]
        return str(noun), str(nouns)
    return NOUNS.get(cases.meta.get("dataset", ""), ("item", "items"))


_rendered: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # tokenizer -> {key: prompt text}


def render(tokenizer, template: str, slots, n_tokens: int, slot_token: str,
           nouns: tuple[str, str] = ("item", "items"), layout: str = "inline", n_positions: int = 1) -> str:
    """build_prompt, memoised per tokenizer (a handful of templates, thousands of samples)."""
    memo = _rendered.setdefault(tokenizer, {})
    key = (template, tuple(slots), n_tokens, slot_token, tuple(nouns), layout, n_positions)
    if key not in memo:
        noun, nouns = nouns
        memo[key] = P.build_prompt(tokenizer, template, tuple(slots), n_tokens, slot_token, noun, nouns,
                                   layout=layout, n_positions=n_positions)
    return memo[key]


def target_text(cases: Cases, i: int, titles: list[str], order: str = "keep", rng: random.Random | None = None) -> str:
    return get_task(cases.task).target([int(a) for a in cases.answers[i] if a >= 0], titles, order, rng)


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
    nouns = nouns_for(cases)
    idx = [int(i) for i in idx]
    src = idx if features_from is None else [int(j) for j in features_from]
    if len(src) != len(idx):
        raise ValueError("features_from must give one source case per case")
    out = []
    for i, j in zip(idx, src):
        rng = random.Random(f"{seed}/{epoch}/{i}")
        template = P.pick_template(tp, phase, rng, prompt_index)
        prompt = render(llm.tokenizer, template, tp.slots, n_tokens, SLOT_TOKEN, nouns, layout,
                        int(cases.features.shape[2]))
        target = target_text(cases, i, titles, target_order, rng) if with_targets else ""
        out.append(Example(prompt, cases.features[j], target))
    return out


def check_titles(cases: Cases, titles: list[str]) -> None:
    hi = int(cases.answers.max()) if len(cases) else -1
    if hi >= len(titles):
        raise ValueError(f"item id {hi} has no title (catalogue of {len(titles)})")
