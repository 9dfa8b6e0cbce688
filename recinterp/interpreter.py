"""The splice model: a frozen LLM reading soft tokens made by a trainable adapter.

    interp = Interpreter(llm, adapter)
    batch = interp.collator([Example(prompt, features, target), ...])  # recinterp.collator tokenises
    loss = interp(batch)                                               # next-token loss on the target only
    scores = interp.score_candidates(examples, candidates)             # (N, C) log-likelihoods
    texts = interp.generate(examples)                                  # batched greedy decoding

Splicing (LLaVA style): the prompt text already holds ``n_tokens`` slot tokens per
placeholder (recinterp.prompts).  ``splice`` embeds the ids with the slots swapped for
the pad id, then writes the adapter's output over exactly those positions with
``masked_scatter``: slot positions are filled in reading order, sample by sample, so
a sample's features (S, P, d_in) feed its S placeholders in the order they appear.
The count of slot positions in every row must equal the number of soft tokens.

Only the adapter is an ``nn.Module`` child: ``interp.parameters()`` and
``interp.state_dict()`` hold the adapter alone; the LLM is a frozen attribute.
The LM head runs on target positions only (not on every position of the batch),
which skips most of the (tokens x vocabulary) logits.
"""
from __future__ import annotations

import inspect
import warnings
import torch
import torch.nn as nn
import torch.nn.functional as F

from recinterp.adapter import Adapter, AdapterConfig
from recinterp.collator import IGNORE, Batch, Collator, Example, pad
from recinterp.config import MAX_NEW_TOKENS
from recinterp.llm import FrozenLLM

class Interpreter(nn.Module):
    def __init__(self, llm: FrozenLLM, adapter: Adapter, max_target_tokens: int | None = 32,
                 collator: Collator | None = None):
        super().__init__()
        if adapter.cfg.d_llm != llm.hidden_size:
            raise ValueError(f"adapter outputs width {adapter.cfg.d_llm} but {llm.name} has hidden size {llm.hidden_size}")
        object.__setattr__(self, "llm", llm)  # a plain attribute: not a submodule, never in parameters()
        # on the LLM's device: an adapter loaded or fitted on the CPU (the aligned route's) meets the states
        # there (nn.Module.to moves it in place: the caller's adapter is the same object, on the same device)
        self.adapter = adapter.to(llm.device)
        # scoring and generation tokenise through it; training brings its own (recinterp.train_adapter)
        self.collator = collator or Collator(llm, max_target_tokens)
        dec = llm.model.get_decoder()
        self._cache_kw = "cache" if "cache" in inspect.signature(dec.forward).parameters else "past_key_values"

    @property
    def device(self) -> torch.device:
        return self.llm.device

    @property
    def adapter_cfg(self) -> AdapterConfig:
        """The adapter's config, also while training wraps it (DDP under ``accelerate launch``)."""
        return getattr(self.adapter, "module", self.adapter).cfg

    @property
    def n_tokens(self) -> int:
        return self.adapter_cfg.n_tokens

    @property
    def layout(self) -> str:
        """How the prompt lays out the adapter's soft tokens (recinterp.prompts.slot_text)."""
        return self.adapter_cfg.layout

    # -- splicing --------------------------------------------------------------------------
    def soft_tokens(self, features: torch.Tensor, control: str | None = None) -> torch.Tensor:
        """features (B, S, P, d_in) -> (B, S * n_tokens, d_llm), slot by slot."""
        if control not in (None, "zero"):  # "shuffled" is made from the features given (recinterp.controls)
            raise ValueError(f"unknown control {control!r}: the interpreter applies None or 'zero'")
        B, S, P, d_in = features.shape
        soft = self.adapter(features.reshape(B * S, P, d_in).to(self.device))  # (B*S, k, d_llm)
        soft = soft.reshape(B, S * self.n_tokens, -1)
        return torch.zeros_like(soft) if control == "zero" else soft

    def splice(self, input_ids: torch.Tensor, slot_mask: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the reserved positions replaced by ``soft`` (B, n_slots, d_llm)."""
        per_row = slot_mask.sum(1)
        if soft.dim() != 3 or soft.shape[0] != input_ids.shape[0] or bool((per_row != soft.shape[1]).any()):
            raise ValueError(f"placeholder/feature count mismatch: rows hold {per_row.tolist()} slot positions "
                             f"but the adapter gave {tuple(soft.shape[:2])} (batch, soft tokens)")
        emb_layer = self.llm.model.get_input_embeddings()
        emb = emb_layer(input_ids.masked_fill(slot_mask, self.llm.pad_token_id))  # (B, T, d_llm)
        return emb.masked_scatter(slot_mask.unsqueeze(-1), soft.to(emb.dtype))

    def embed_batch(self, batch: Batch, control: str | None = None) -> torch.Tensor:
        return self.splice(batch.input_ids, batch.slot_mask, self.soft_tokens(batch.features, control))

    def _decoder(self, embeds, attention_mask, position_ids, cache=None, use_cache=False):
        kw = {self._cache_kw: cache} if cache is not None else {}
        out = self.llm.model.get_decoder()(inputs_embeds=embeds, attention_mask=attention_mask,
                                           position_ids=position_ids, use_cache=use_cache, **kw)
        return out.last_hidden_state, (getattr(out, self._cache_kw, None) if use_cache else None)

    def _target_logits(self, batch: Batch, control: str | None):
        """(logits at target positions (n, V), their labels (n,), their row index (n,))."""
        batch = batch.to(self.device)
        embeds = self.embed_batch(batch, control)
        with self.llm.autocast():
            h, _ = self._decoder(embeds, batch.attention_mask, batch.position_ids)  # (B, T, d_llm)
            nxt = batch.labels[:, 1:]  # token t+1 is predicted from the state at t
            sel = nxt != IGNORE
            logits = self.llm.model.get_output_embeddings()(h[:, :-1][sel])  # (n, V)
        rows = torch.arange(len(batch), device=self.device)[:, None].expand_as(nxt)[sel]
        return logits.float(), nxt[sel], rows

    # -- training loss -----------------------------------------------------------------------
    def forward(self, batch: Batch, control: str | None = None) -> torch.Tensor:
        """Mean next-token cross-entropy over the target tokens of the batch."""
        logits, labels, _ = self._target_logits(batch, control)
        if labels.numel() == 0:
            raise ValueError("batch has no target tokens")
        return F.cross_entropy(logits, labels)

    # -- likelihood ranking ----------------------------------------------------------------
    @torch.no_grad()
    def score_candidates(self, examples: list[Example], candidates: list[list[str]], reduce: str = "sum",
                         eos: bool = True, control: str | None = None, max_pairs: int = 128) -> torch.Tensor:
        """(N, C) log-likelihood of each candidate answer after each prompt.

        One forward over each prompt (with its soft tokens) fills a KV cache that is
        shared by its C candidates (repeat_interleave), then one forward over all the
        candidates: the prompt is not recomputed C times.  ``eos``: the answer ends
        after the candidate (item / residual), so "Heat" and "Heat 2" differ.
        """
        if len(examples) != len(candidates):
            raise ValueError(f"{len(examples)} examples but {len(candidates)} candidate lists")
        if not examples:
            return torch.zeros(0, 0)
        C = len(candidates[0])
        if C == 0 or any(len(c) != C for c in candidates):
            raise ValueError("every example needs the same, non-zero number of candidates")
        uniq = sorted({c for cs in candidates for c in cs})
        tok = dict(zip(uniq, self.collator.tokenize_targets(uniq, eos=eos)))
        if any(len(v) == 0 for v in tok.values()):
            raise ValueError("a candidate tokenised to nothing (empty title?)")
        out = torch.empty(len(examples), C)
        step = max(1, max_pairs // C)
        head = self.llm.model.get_output_embeddings()
        emb_layer = self.llm.model.get_input_embeddings()
        for s in range(0, len(examples), step):
            ex, cands = examples[s: s + step], candidates[s: s + step]
            b = len(ex)
            batch = self.collator(ex, side="left", targets=False).to(self.device)
            embeds = self.embed_batch(batch, control)
            cid = pad([tok[c] for cs in cands for c in cs], self.llm.pad_token_id, "right").to(self.device)  # (b*C, Tc)
            cmask = pad([[1] * len(tok[c]) for cs in cands for c in cs], 0, "right").to(self.device)
            with self.llm.autocast():
                h_p, cache = self._decoder(embeds, batch.attention_mask, batch.position_ids, use_cache=True)
                cache.batch_repeat_interleave(C)
                attn = torch.cat([batch.attention_mask.repeat_interleave(C, 0), cmask], 1)
                pos = batch.attention_mask.sum(1).repeat_interleave(C)[:, None] + torch.arange(cid.shape[1], device=self.device)
                h_c, _ = self._decoder(emb_layer(cid), attn, pos, cache=cache, use_cache=True)
                # the first candidate token is predicted from the prompt's last state (left padding: column -1)
                h = torch.cat([h_p[:, -1:].repeat_interleave(C, 0), h_c[:, :-1]], 1)  # (b*C, Tc, d)
                sel = cmask.bool()
                lp = head(h[sel]).float().log_softmax(-1).gather(1, cid[sel][:, None]).squeeze(1)
            rows = torch.arange(b * C, device=self.device)[:, None].expand_as(cid)[sel]
            out[s: s + b] = _reduce_rows(lp, rows, b * C, reduce).view(b, C).cpu()
        return out

    # -- generation ----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, examples: list[Example], max_new_tokens: int = MAX_NEW_TOKENS, batch_size: int = 16,
                 repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0, min_new_tokens: int = 0,
                 control: str | None = None) -> list[str]:
        """Greedy answers, batched with left padding (equal to one-at-a-time greedy decoding).

        ``repetition_penalty`` (>1) and ``no_repeat_ngram_size`` are the repetition controls
        (a small LLM trained briefly loops on one title otherwise).  Identical inputs (same
        prompt, same soft tokens) are decoded once: under the ``zero`` control the features do
        not matter, so every case with the same prompt shares one answer.
        """
        from transformers import GenerationConfig

        gc = GenerationConfig(max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens, do_sample=False,
                              num_beams=1, repetition_penalty=repetition_penalty,
                              no_repeat_ngram_size=no_repeat_ngram_size, pad_token_id=self.llm.pad_token_id,
                              eos_token_id=self.llm.eos_token_id, bos_token_id=self.llm.tokenizer.bos_token_id)
        keys = [(ex.prompt, b"" if control == "zero" else ex.features.detach().cpu().numpy().tobytes())
                for ex in examples]
        answer_of, unique = {}, []  # key -> index of its answer; the first example of each key
        for k, ex in zip(keys, examples):
            if k not in answer_of:
                answer_of[k] = len(unique)
                unique.append(ex)
        texts: list[str] = []
        for s in range(0, len(unique), batch_size):
            batch = self.collator(unique[s: s + batch_size], side="left", targets=False).to(self.device)
            embeds = self.embed_batch(batch, control)
            with self.llm.autocast(), warnings.catch_warnings():
                # penalising only the generated tokens (not the prompt) is what we want here
                warnings.filterwarnings("ignore", message=".*(repetition_penalty|no_repeat_ngram_size).*inputs_embeds")
                out = self.llm.model.generate(inputs_embeds=embeds, attention_mask=batch.attention_mask,
                                              generation_config=gc)
            # with inputs_embeds only, generate returns just the new tokens
            texts += self.llm.tokenizer.batch_decode(out, skip_special_tokens=True)
        return [texts[answer_of[k]].strip() for k in keys]


def _reduce_rows(values: torch.Tensor, rows: torch.Tensor, n: int, reduce: str) -> torch.Tensor:
    total = torch.zeros(n, device=values.device, dtype=values.dtype).index_add_(0, rows, values)
    if reduce == "sum":
        return total
    if reduce == "mean":
        count = torch.zeros(n, device=values.device, dtype=values.dtype).index_add_(0, rows, torch.ones_like(values))
        return total / count.clamp(min=1)
    raise ValueError(f"unknown reduce {reduce!r}: choose 'sum' or 'mean'")
