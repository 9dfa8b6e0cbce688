"""Prompt builders: the text of each task, with placeholders for the soft tokens.

Pure functions on strings.  A template holds placeholders (``<seq>``, ``<before>``,
``<after>``, ``<delta>``, ``<emb>``) and the nouns ``{noun}`` / ``{nouns}`` ("movie",
"game").  ``build_prompt`` expands every placeholder into ``n_tokens`` copies of the
slot token *before* tokenisation (LLaVA-style), so the collator tokenises each batch
once and finds the reserved positions by id; it wraps the text in the LLM's chat
template when it has one, with a short system message instead of a long default one
(every token of the prompt costs a forward and a backward per step).

Each task has several training paraphrases and separate held-out phrasings for
evaluation, so a measured effect is not tied to one wording.  Targets use the
normalised titles (recinterp.data.titles.normalize_title), the form the matcher uses.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

PLACEHOLDERS = ("seq", "before", "after", "delta", "emb")
SYSTEM = "Answer with titles only."
TITLE_SEP = "; "  # titles contain commas ("Hussard sur le toit, Le"), rarely semicolons
_PH = re.compile(r"<(%s)>" % "|".join(PLACEHOLDERS))


@dataclass(frozen=True)
class TaskPrompts:
    task: str
    slots: tuple[str, ...]  # placeholder names, in the order the features come
    train: tuple[str, ...]  # paraphrases sampled during training
    eval: tuple[str, ...]  # held-out phrasings, never seen in training


ITEM = TaskPrompts(
    "item", ("emb",),
    train=("Here is a {noun}: <emb>. What is its title?",
           "<emb> Name this {noun}.",
           "Which {noun} does <emb> stand for?",
           "A recommender encodes a {noun} as <emb>. Give its title."),
    eval=("Title of the {noun} encoded as <emb>?",
          "The embedding <emb> belongs to which {noun}?"),
)

RECOVERY = TaskPrompts(
    "recovery", ("seq",),
    train=("A user's history, encoded: <seq>. List the {nouns} in it.",
           "<seq> These are the {nouns} a user chose. Name them.",
           "A recommender summarised a user as <seq>. Which {nouns} did the user pick?",
           "Decode this history into {noun} titles: <seq>"),
    eval=("Write out the titles of the {nouns} in the history <seq>.",
          "The encoding <seq> describes what a user chose. Which {nouns} were they?"),
)

RESIDUAL_TWO = TaskPrompts(
    "residual", ("before", "after"),
    train=("History A: <before>. History B: <after>. Which {noun} is in B but not in A?",
           "Before: <before> After: <after> Name the {noun} that was added.",
           "List 1 <before> List 2 <after>. What {noun} does list 2 have that list 1 lacks?",
           "A user's history was <before>; now it is <after>. Which {noun} is new?"),
    eval=("First <before>, then <after>. Which {noun} did the user add?",
          "Compare <before> with <after>. Name the extra {noun}."),
)

RESIDUAL_ONE = TaskPrompts(  # the "pair" and "diff" inputs: one placeholder carries the change
    "residual", ("delta",),
    train=("A user's history changed by <delta>. Which {noun} was added?",
           "<delta> This is the change after a user's latest {noun}. Name it.",
           "The update <delta> adds one {noun} to a history. Which one?",
           "Which {noun} did the user just add? Change: <delta>"),
    eval=("Name the {noun} behind the history update <delta>.",
          "The latest addition to the history, encoded as <delta>, is which {noun}?"),
)


LAYOUTS = ("inline", "list")


def slot_text(n_tokens: int, slot_token: str, layout: str = "inline", n_positions: int = 1) -> str:
    """What one placeholder becomes: ``n_tokens`` slot tokens in a row ("inline"), or one numbered
    line per position ("list": "\n1. <t slots>\n2. <t slots>..." with t = n_tokens / n_positions),
    so an adapter that gives each position its own tokens shows the LLM where one item ends."""
    if layout == "inline":
        return slot_token * n_tokens
    if layout != "list":
        raise ValueError(f"unknown prompt layout {layout!r}: choose one of {LAYOUTS}")
    if n_positions < 1 or n_tokens % n_positions:
        raise ValueError(f"a list layout needs n_tokens ({n_tokens}) to be a multiple of the positions ({n_positions})")
    t = n_tokens // n_positions
    return "\n" + "".join(f"{i + 1}. {slot_token * t}\n" for i in range(n_positions))


def expand(template: str, slots: tuple[str, ...], n_tokens: int, slot_token: str,
           noun: str = "item", nouns: str = "items", layout: str = "inline", n_positions: int = 1) -> str:
    """Fill the nouns and replace each placeholder with ``n_tokens`` slot tokens (``slot_text``).

    Every name in ``slots`` must appear exactly once, in that order (the features of a
    sample are spliced in the order their positions appear in the text).
    """
    if n_tokens < 1:
        raise ValueError(f"n_tokens must be >= 1, got {n_tokens}")
    found = _PH.findall(template)
    if tuple(found) != tuple(slots):
        raise ValueError(f"template must contain the placeholders {['<%s>' % s for s in slots]} once each, in order; "
                         f"found {['<%s>' % s for s in found]} in {template!r}")
    text = template.replace("{noun}", noun).replace("{nouns}", nouns)
    fill = slot_text(n_tokens, slot_token, layout, n_positions)
    return _PH.sub(lambda _: fill, text)


def chat_prompt(tokenizer, user_text: str, system: str = SYSTEM) -> str:
    """The text before the answer: chat template (short system message) if there is one."""
    if getattr(tokenizer, "chat_template", None):
        msgs = [{"role": "system", "content": system}, {"role": "user", "content": user_text}] if system is not None \
            else [{"role": "user", "content": user_text}]
        try:
            return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        except Exception:  # some templates reject a system role: fold it into the user turn
            msgs = [{"role": "user", "content": f"{system}\n{user_text}" if system else user_text}]
            return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    return f"{system}\n{user_text}\nAnswer:" if system else f"{user_text}\nAnswer:"


def build_prompt(tokenizer, template: str, slots: tuple[str, ...], n_tokens: int, slot_token: str,
                 noun: str = "item", nouns: str = "items", system: str = SYSTEM, layout: str = "inline",
                 n_positions: int = 1) -> str:
    return chat_prompt(tokenizer, expand(template, slots, n_tokens, slot_token, noun, nouns, layout, n_positions),
                       system)


def pick_template(prompts: TaskPrompts, phase: str, rng: random.Random | None = None, index: int = 0) -> str:
    """A random training paraphrase (phase="train"), or held-out phrasing ``index`` (phase="eval")."""
    if phase == "train":
        return (rng or random).choice(prompts.train)
    if phase == "eval":
        return prompts.eval[index % len(prompts.eval)]
    raise ValueError(f"unknown prompt phase {phase!r}: choose 'train' or 'eval'")


# -- targets ----------------------------------------------------------------------------
def list_target(titles: list[str]) -> str:
    """Recovery target: the titles of the sequence, in the given order."""
    if not titles:
        raise ValueError("a recovery target needs at least one title")
    return TITLE_SEP.join(titles)


def title_target(title: str) -> str:
    """Item / residual target: one title."""
    if not title:
        raise ValueError("empty title")
    return title
