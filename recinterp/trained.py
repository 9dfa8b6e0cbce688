"""A trained interpreter in one call: ask a saved adapter about a history.

    from recinterp import load_interpreter
    ri = load_interpreter("results/cpu/04_sequence_residual/runs/movielens/sasrec/aligned/adapter")
    ri.residual(["Toy Story (1995)", "Heat (1995)"], ["Toy Story (1995)", "Heat (1995)", "Fargo (1996)"])
    # Reading(answer='Fargo', truth=['fargo'], found=['fargo'])

A saved adapter folder (``adapter_config.json`` + ``adapter.safetensors``, written by
``Adapter.save``; every notebook saves one per run) names what it was trained against:
the task, the encoder, the dataset and the LLM.  ``load_interpreter`` rebuilds all four
from that record: the LLM by its recorded name (``embedded``: the SmolLM2 that ships with
the project), the encoder from the ``checkpoints`` folder of the same results folder
(found by walking up from the adapter, or given), the dataset's titles, and the adapter
itself (SHA-256 checked).  Then one plain call per task:

- ``recover(history)``            task 1: which titles does the LLM read back from the window?
- ``residual(before, after)``     task 2: which item is in ``after`` but not in ``before``?
- ``name_item(embedding)``        task 3: what is this item embedding (e.g. DreamRec's ideal item)?

A history is a list of titles (as in the catalogue, raw or normalised, any case) or item
ids.  Every answer comes back as a ``Reading``: the LLM's text, the true titles, and which
of them the text names (literal, case-insensitive matches, as the notebooks count them).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from recinterp.adapter import CONFIG_NAME, Adapter, load_adapter
from recinterp.cases import Cases, make_examples, nouns_meta
from recinterp.config import REPETITION_PENALTY, TITLE_TOKENS, read_json, state_sha256
from recinterp.data.titles import normalize_title
from recinterp.data.types import Catalogue, Split
from recinterp.interpreter import Interpreter
from recinterp.novelty import CatalogueMatcher
from recinterp.tasks import get_task
from recinterp.tasks.recovery import recovery_cases
from recinterp.tasks.residual import residual_cases
from recinterp.textmatch import found_titles

# Which call reads which task's adapter (the adapter's recorded ``task``).
CALLS = {"recovery": "recover", "residual": "residual", "item": "name_item"}


@dataclass
class Reading:
    """One answer of the interpreter: the LLM's text, the true titles, and those the text names."""

    answer: str
    truth: list[str]
    found: list[str]

    def __str__(self) -> str:
        return f"{self.answer!r}  (names {len(self.found)} of {len(self.truth)} true titles: {self.found})"


class TrainedInterpreter:
    """A frozen LLM, a trained adapter, the encoder it reads and the catalogue's titles, ready to ask."""

    def __init__(self, llm, adapter: Adapter, encoder, titles: list[str], dataset: str = "",
                 max_new_tokens: int | None = None, repetition_penalty: float = REPETITION_PENALTY, catalogue: Catalogue | None = None,
                 nouns: tuple[str, str] | None = None):
        cfg = adapter.cfg
        if cfg.task not in CALLS:
            raise ValueError(f"the adapter records task {cfg.task!r}; load_interpreter reads adapters of the tasks "
                             f"{sorted(CALLS)} (retrain or re-save it with its task recorded)")
        n_items = getattr(encoder, "n_items", len(titles))
        if len(titles) != n_items:
            raise ValueError(f"{len(titles)} titles for an encoder of {n_items} items: the dataset "
                             f"({dataset or 'unnamed'}) is not the one the encoder was trained on")
        self.llm, self.adapter, self.encoder = llm, adapter, encoder.eval()
        self.titles, self.dataset = list(titles), dataset or cfg.dataset
        self.nouns = nouns  # the dataset's item nouns, which its prompts use (None: a built-in dataset's by name)
        self.interp = Interpreter(llm, adapter, max_target_tokens=None)  # raises on an LLM of another width
        self.task = get_task(cfg.task)
        # the notebooks' evaluation settings: the task's answer length, the default repetition control
        self.max_new_tokens = max_new_tokens or self.task.eval_defaults.get("max_new_tokens", TITLE_TOKENS)
        self.repetition_penalty = repetition_penalty
        self._matcher: CatalogueMatcher | None = None
        # the lookup of titles (raw as released, or normalised): the dataset's catalogue when given
        self.catalogue = catalogue or Catalogue(self.titles, [normalize_title(t) for t in self.titles])

    def __repr__(self) -> str:
        c = self.adapter.cfg
        return (f"TrainedInterpreter(task={c.task!r}, encoder={c.encoder!r}, dataset={self.dataset!r}, "
                f"llm={self.llm.name!r}, adapter={c.kind!r} x{c.n_tokens} soft tokens; ask with .{CALLS[c.task]}())")

    # -- items -------------------------------------------------------------------------------
    def item_ids(self, history) -> list[int]:
        """Titles (any case) or ids -> ids; an unknown title raises with the nearest catalogue titles."""
        if isinstance(history, (str, int)):
            raise TypeError("a history is a list of titles or item ids, oldest first, not a single "
                            f"{type(history).__name__}: wrap it in a list")
        ids = []
        for h in history:
            if isinstance(h, bool) or not isinstance(h, (int, str)) and not torch.is_tensor(h):
                raise TypeError(f"history entries are titles or item ids, got {type(h).__name__}: {h!r}")
            if isinstance(h, str):
                i = self.catalogue.id_of(h)  # a title several items share: an error listing their ids
                if i is None:
                    near = [self.titles[j] for j, _ in self.matcher.nearest(h, k=3)]
                    raise ValueError(f"unknown title {h!r} in {self.dataset}: not in its catalogue of "
                                     f"{len(self.titles)} titles. Nearest: {near}")
                ids.append(i)
            else:
                i = int(h)
                if not 0 <= i < len(self.titles):
                    raise ValueError(f"item id {i} is outside the catalogue (0..{len(self.titles) - 1}) of {self.dataset}")
                ids.append(i)
        if not ids:
            raise ValueError("an empty history: give at least one title or item id")
        if len(ids) > self.encoder.max_len:
            raise ValueError(f"a history of {len(ids)} items; the encoder reads windows of at most "
                             f"{self.encoder.max_len}: keep the latest {self.encoder.max_len}")
        return ids

    @property
    def matcher(self) -> CatalogueMatcher:
        if self._matcher is None:
            self._matcher = CatalogueMatcher(self.titles)
        return self._matcher

    def _window(self, ids: list[int]) -> Split:
        """One right-padded window as a split (what the tasks' case builders read; no next item)."""
        L = self.encoder.max_len
        seqs = torch.full((1, L), self.encoder.pad_id, dtype=torch.long)
        seqs[0, : len(ids)] = torch.tensor(ids)
        return Split(seqs, torch.tensor([len(ids)]), torch.tensor([self.encoder.pad_id]))

    def _ask(self, cases: Cases, truth_ids: list[int], control: str | None = None) -> Reading:
        ex = make_examples(cases, [0], self.titles, self.llm, self.adapter.cfg.n_tokens, phase="eval",
                           with_targets=False, layout=self.adapter.cfg.layout)
        answer = self.interp.generate(ex, max_new_tokens=self.max_new_tokens, control=control,
                                      repetition_penalty=self.repetition_penalty)[0]
        truth = [self.titles[i] for i in truth_ids]
        return Reading(answer, truth, [t for t, hit in zip(truth, found_titles(answer, truth)) if hit])

    def _need(self, task: str) -> None:
        if self.task.name != task:
            raise ValueError(f"this adapter was trained for task {self.task.name!r}: ask it with "
                             f".{CALLS[self.task.name]}(), or load a {task} adapter for .{CALLS[task]}()")

    # -- the three tasks --------------------------------------------------------------------
    @torch.no_grad()
    def recover(self, history, control: str | None = None) -> Reading:
        """Task 1: the LLM lists what the window's representation holds; ``found`` = titles it names.

        ``control="zero"`` gives the same prompt with zeroed soft tokens: the reading to compare with."""
        self._need("recovery")
        ids = self.item_ids(history)
        cases = recovery_cases(self.encoder, self._window(ids), self.adapter.cfg.input, dataset=self.dataset,
                               nouns=self.nouns)
        return self._ask(cases, ids, control)

    @torch.no_grad()
    def residual(self, before, after, control: str | None = None) -> Reading:
        """Task 2: ``after`` is ``before`` plus one latest item; the LLM names that item."""
        self._need("residual")
        b, a = self.item_ids(before), self.item_ids(after)
        if len(a) != len(b) + 1 or a[:-1] != b:
            raise ValueError(f"the residual task compares a window with the same window plus one latest item: "
                             f"'after' must be 'before' + [item] (got {len(b)} and {len(a)} items"
                             f"{'' if a[:len(b)] == b else ', and after does not start with before'})")
        if len(b) < 1:
            raise ValueError("the residual task needs at least one item before the added one")
        positions = "all" if self.adapter.cfg.n_positions > 1 else "last"  # what the adapter was trained to read
        cases = residual_cases(self.encoder, self._window(a), self.adapter.cfg.input, positions, dataset=self.dataset,
                               nouns=self.nouns)
        return self._ask(cases, [a[-1]], control)

    @torch.no_grad()
    def name_item(self, embedding: torch.Tensor, true_id: int | str | None = None, control: str | None = None) -> Reading:
        """Task 3, the direct route: the LLM names one embedding of the encoder's item space (d,)
        (DreamRec's ideal item x0, or a real item's row of the table; ``true_id`` names the truth if any)."""
        self._need("item")
        emb = torch.as_tensor(embedding).detach().float().cpu()
        d = self.adapter.cfg.d_in
        if emb.shape != (d,):
            raise ValueError(f"name_item takes one embedding of shape ({d},), the encoder's item width; "
                             f"got {tuple(emb.shape)}")
        if true_id is not None:
            (true_id,) = self.item_ids([true_id])
        # a case needs an answer id; no target text is built from it (the answer is only generated)
        ids = torch.tensor([[0 if true_id is None else true_id]])
        cases = Cases("item", "item", emb[None, None, None, :].contiguous(), ids, torch.full((1, 1), -1),
                      meta={"dataset": self.dataset, **nouns_meta(self.nouns)})
        return self._ask(cases, [] if true_id is None else [true_id], control)

    def item_embedding(self, item) -> torch.Tensor:
        """The encoder's embedding (d,) of one item (a title or an id): what ``name_item`` reads."""
        (i,) = self.item_ids([item])
        return self.encoder.item_embeddings.weight[i].detach().float().cpu()


def _find_checkpoints(folder: Path, dataset: str, encoder: str) -> Path | None:
    """The nearest ``checkpoints`` folder above ``folder`` that holds ``<dataset>/<encoder>``."""
    for up in [folder, *folder.parents]:
        cand = up / "checkpoints"
        if (cand / dataset / encoder).is_dir():
            return cand
    return None


def check_encoder(adapter: Adapter, enc, where) -> None:
    """Refuse an encoder whose weights are not the ones the adapter was trained on (a retrained encoder of
    the same name and config gives other states: the answers would change without a word)."""
    want = adapter.cfg.encoder_sha256
    if want and state_sha256(enc) != want:
        raise ValueError(f"the encoder in {where} is not the one the adapter was trained on: the SHA-256 of its "
                         f"weights is {state_sha256(enc)[:16]}..., the adapter records {want[:16]}... (retrained "
                         f"since?). To fix: pass checkpoints= the folder of the run that trained the adapter, or "
                         f"retrain the adapter on this encoder")


def load_interpreter(folder: str | os.PathLike, checkpoints: str | os.PathLike | None = None, llm=None,
                     dataset=None, device: str = "cpu", max_new_tokens: int | None = None) -> TrainedInterpreter:
    """Rebuild LLM, encoder, titles and adapter from a saved adapter folder; see the module docstring.

    ``checkpoints``: the recommenders' folder (default: found above ``folder``, e.g. ``results/cpu/checkpoints``).
    ``llm``: a loaded ``FrozenLLM`` or a name (default: the name recorded with the adapter).
    ``dataset``: a loaded dataset or a name/path (default: the name recorded with the adapter).
    """
    from recinterp.data import load_dataset
    from recinterp.llm import load_llm
    from recinterp.models import load_checkpoint

    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        hint = ""
        if folder.is_dir():
            inner = sorted(p.parent for p in folder.rglob(CONFIG_NAME))[:5]
            hint = f"; adapters below it: {[str(p) for p in inner]}" if inner else "; no adapter below it either"
        raise FileNotFoundError(f"{folder} is not a saved adapter (no {CONFIG_NAME}){hint}")
    rec = read_json(folder / CONFIG_NAME, "re-save the adapter (it is written by Adapter.save)")
    if not rec.get("encoder") or not rec.get("dataset"):
        raise ValueError(f"{folder / CONFIG_NAME} records no encoder or dataset ({rec.get('encoder')!r}, "
                         f"{rec.get('dataset')!r}): build the TrainedInterpreter from its parts instead")
    if llm is None or isinstance(llm, str):
        llm = load_llm(llm or rec.get("llm") or "embedded", device=device)
    adapter = load_adapter(folder, d_llm=llm.hidden_size)  # SHA-256 checked; width checked; Interpreter moves it
    ckpt = Path(checkpoints) if checkpoints is not None else _find_checkpoints(folder.resolve(), rec["dataset"],
                                                                                rec["encoder"])
    if ckpt is None:
        raise FileNotFoundError(f"no checkpoints/{rec['dataset']}/{rec['encoder']} above {folder}: pass "
                                f"checkpoints= (the folder notebook 02 wrote, e.g. results/cpu/checkpoints)")
    enc = load_checkpoint(ckpt, rec["dataset"], rec["encoder"])
    check_encoder(adapter, enc, ckpt / rec["dataset"] / rec["encoder"])
    ds = load_dataset(dataset or rec["dataset"]) if dataset is None or isinstance(dataset, (str, os.PathLike)) else dataset
    return TrainedInterpreter(llm, adapter, enc, ds.catalogue.norm_titles, ds.name, max_new_tokens=max_new_tokens,
                              catalogue=ds.catalogue, nouns=(ds.noun, ds.nouns))
