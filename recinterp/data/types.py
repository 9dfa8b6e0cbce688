"""The one in-memory form that every step after data preparation uses.

Every dataset (MovieLens-100K, Steam, a LLaRA-format folder, an interaction log)
ends up as a :class:`RecDataset`: right-padded id tensors of width ``max_len`` (10 in
the released files), true lengths, the next item, and a :class:`Catalogue` that maps
item id -> title.  The padding id is
``n_items`` (as in the official LLaRA files), so valid ids are ``0..n_items-1``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Split:
    """Rows of (history, next item).  ``seqs[i, :lens[i]]`` is the history, oldest first."""

    seqs: torch.Tensor  # (N, max_len) int64, right-padded with pad_id
    lens: torch.Tensor  # (N,) int64, number of valid items, 1..max_len
    next: torch.Tensor  # (N,) int64, the item that followed the history

    def __len__(self) -> int:
        return int(self.seqs.shape[0])

    def subset(self, idx) -> "Split":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Split(self.seqs[idx], self.lens[idx], self.next[idx])


@dataclass
class Catalogue:
    """Item id -> title (raw and normalised) and content tags (genres; Steam tags)."""

    titles: list[str]  # raw titles as released, e.g. "Usual Suspects, The (1995)"
    norm_titles: list[str]  # normalised with recinterp.data.titles.normalize_title
    genres: list[list[str]] = field(default_factory=list)  # per item; may be empty lists
    tags: list[list[str]] = field(default_factory=list)  # per item (Steam user tags); empty for MovieLens

    def __len__(self) -> int:
        return len(self.titles)

    def _index(self) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        """{raw title, case-folded: ids}, {normalised title, case-folded: ids}; built once."""
        if "_by_title" not in self.__dict__:
            raw, norm = {}, {}
            for i, (t, n) in enumerate(zip(self.titles, self.norm_titles)):
                raw.setdefault(t.casefold(), []).append(i)
                norm.setdefault(n.casefold(), []).append(i)
            self.__dict__["_by_title"] = (raw, norm)
        return self.__dict__["_by_title"]

    def duplicates(self) -> dict[str, list[int]]:
        """{normalised title: its ids} for every title that several items share (MovieLens: "Cape Fear"
        of 1962 and of 1991)."""
        return {t: ids for t, ids in self._index()[1].items() if len(ids) > 1}

    def id_of(self, title: str) -> int | None:
        """The id of ``title`` (raw as released, or normalised; any case); None when no item has it.  A title
        several items share is an error listing their ids: pass the id instead."""
        from .titles import normalize_title

        raw, norm = self._index()
        ids = raw.get(title.casefold()) or norm.get(normalize_title(title).casefold()) or []
        if len(ids) > 1:
            raise ValueError(f"the title {title!r} is ambiguous: items {ids} share it "
                             f"({'; '.join(repr(self.titles[i]) for i in ids[:5])}). Pass the item id instead")
        return ids[0] if ids else None


@dataclass
class RecDataset:
    name: str  # "movielens" | "steam" | a folder's name (recinterp.data.custom, recinterp.data.log)
    n_items: int
    train: Split
    val: Split
    test: Split
    catalogue: Catalogue
    max_len: int = 10
    # Extra evaluation splits, e.g. "test_all": every next-item position of the held-out test users.
    extra: dict[str, Split] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # provenance and reductions, shown by the notebooks
    noun: str = "item"  # what prompts call one item ("movie", "game", "track")
    nouns: str = "items"

    @property
    def pad_id(self) -> int:
        return self.n_items
