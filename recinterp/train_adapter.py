"""Training the adapter alone: encoder and LLM frozen, encoder states cached.

    history = train_adapter(interp, train_cases, titles, TrainConfig(max_steps=300), out_dir="results/x/adapter")

- Only the adapter's parameters reach the optimiser; after every backward
  ``check_frozen`` raises if any LLM parameter holds a gradient.  The encoder is not
  even run: ``Cases`` carry its states, computed once (``recinterp.tasks.cached``).
- ``accelerate``: the same code runs on CPU, one GPU, or several GPUs under
  ``accelerate launch`` (the adapter is wrapped for DDP, each process takes every
  n-th case of the epoch's permutation, each process holds its own frozen LLM copy).
- AdamW (the authors: lr 1e-3, weight decay 1e-6, batch 16), gradient accumulation,
  lr warm-up linear from ``warmup_start`` x lr (the authors: 0.2), then constant or cosine.
- Resumable: ``out_dir/checkpoint`` holds the adapter, optimiser, scheduler and position,
  with a SHA256SUMS of all three files (a changed byte is refused before anything is read);
  a resume checks both the training settings and the adapter's own config.  The epoch order and the prompt paraphrase of every case are functions of
  (seed, epoch, case), so a resumed run continues exactly where it stopped.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from recinterp.adapter import CONFIG_NAME, WEIGHTS_NAME, load_adapter, read_adapter_config
from recinterp.cases import Cases, check_titles, make_examples
from recinterp.collator import Collator
from recinterp.config import IntegrityError, from_options, seal, verify
from recinterp.llm import check_frozen, set_gradient_checkpointing

CKPT = "checkpoint"
FINAL = "adapter"
STATE = "train_state.pt"


@dataclass
class TrainConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-6
    batch_size: int = 16  # cases per micro-batch (per process)
    grad_accum: int = 1  # micro-batches per optimiser step
    epochs: float = 1.0
    max_steps: int | None = None  # optimiser steps; overrides epochs when set (0: none, the initial adapter is saved)
    warmup_steps: int = 50
    warmup_start: float = 0.2  # lr starts at this fraction of lr and rises linearly
    decay: str = "none"  # after warm-up: "none" (constant) or "cosine" (to min_lr_ratio x lr)
    min_lr_ratio: float = 0.1
    max_grad_norm: float | None = None  # the authors do not clip
    max_target_tokens: int | None = 32  # answer tokens supervised (the authors: 32, i.e. 3-5 titles)
    target_order: str = "keep"  # recovery: "keep" (oldest first) or "shuffle" (per epoch)
    seed: int = 0
    ckpt_every: int = 100  # optimiser steps between checkpoints (0: only at the end)
    time_budget_s: float | None = None  # stop (and checkpoint) after this long; makes the run length machine-dependent
    gradient_checkpointing: bool = False  # recompute the frozen LLM's layers in backward (large batches, 7B; see recinterp.memory)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return from_options(cls, d, "training")


def lr_factor(step: int, cfg: TrainConfig, total: int) -> float:
    """Multiplier of cfg.lr at optimiser step ``step`` (0-based)."""
    if step < cfg.warmup_steps:
        return cfg.warmup_start + (1.0 - cfg.warmup_start) * step / max(1, cfg.warmup_steps)
    if cfg.decay == "none":
        return 1.0
    if cfg.decay == "cosine":
        t = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    raise ValueError(f"unknown lr decay {cfg.decay!r}: choose 'none' or 'cosine'")


def epoch_order(n: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> torch.Tensor:
    """The cases this process sees in ``epoch``, in order (a function of seed and epoch only).

    With several processes the permutation is topped up with its first few cases so that
    every process gets the same number of cases (and of micro-batches).
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g)
    if n % world:
        perm = torch.cat([perm, perm[: world - n % world]])
    return perm[rank::world]


# Options a resumed run may change: how long it runs and how often it saves, not what it learns.
RESUMABLE_CHANGES = ("epochs", "max_steps", "ckpt_every", "time_budget_s", "gradient_checkpointing")


def check_resume_config(saved: dict | None, cfg: TrainConfig, where: Path) -> None:
    """Refuse to continue a checkpoint trained with other settings (e.g. another lr): the result
    would be neither run.  Only ``RESUMABLE_CHANGES`` may differ."""
    now, saved = asdict(cfg), saved or {}
    changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and k in saved and saved[k] != now[k])
    if changed:
        diff = ", ".join(f"{k}: {saved[k]!r} -> {now[k]!r}" for k in changed)
        raise ValueError(f"the checkpoint in {where} was trained with other settings ({diff}); refusing to resume it. "
                         f"Delete {where} to train anew, use another out_dir, or pass allow_config_change=True "
                         f"to continue with the new settings anyway.")


# Adapter fields a resume may not change: its shape and what it reads (``llm`` is a name only;
# its width is d_llm, and the same model may be named by a hub id or a local path).
ADAPTER_FIXED = ("kind", "d_in", "d_llm", "n_positions", "n_tokens", "hidden", "standardize", "n_items", "d_item",
                 "temperature", "out_norm", "layout", "input", "task", "encoder", "dataset")


def check_resume_adapter(adapter, where: Path) -> None:
    """Refuse to continue a checkpoint whose adapter is not the one being trained (another kind,
    n_tokens, width, input...): its weights would not fit, or would mean something else."""
    saved, now = asdict(read_adapter_config(where)), asdict(adapter.cfg)
    changed = [k for k in ADAPTER_FIXED if saved.get(k) != now.get(k)]
    if saved.get("encoder_sha256") and now.get("encoder_sha256") and saved["encoder_sha256"] != now["encoder_sha256"]:
        changed.append("encoder_sha256")  # the encoder was retrained: the states it reads are others
    if changed:
        diff = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise ValueError(f"the checkpoint in {where} holds another adapter ({diff}); refusing to resume it. "
                         f"Delete {where} to train this adapter anew, or use another out_dir.")


def load_train_state(folder: Path) -> dict:
    """The training state saved in ``folder``, verified (with the adapter) against its SHA256SUMS first."""
    verify(folder, (WEIGHTS_NAME, CONFIG_NAME, STATE),
           f"delete {folder} to train anew (the checkpoint is damaged; nothing in it is used)", unsealed="warn")
    try:
        return torch.load(folder / STATE, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated or garbled: torch says OSError, RuntimeError, EOFError...
        raise IntegrityError(f"{folder / STATE} cannot be read ({type(e).__name__}: {e}): truncated or damaged. "
                             f"To fix: delete {folder} to train anew") from None


def _save_checkpoint(folder: Path, adapter, opt, sched, state: dict) -> None:
    """Write to a temporary folder, then swap it in: a crash never leaves half a checkpoint."""
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    adapter.save(tmp)
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), **state}, tmp / STATE)
    seal(tmp, (STATE,))  # beside the adapter's own two entries
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def train_adapter(interp, cases: Cases, titles: list[str], cfg: TrainConfig | None = None,
                  out_dir: str | os.PathLike | None = None, resume: bool = True, progress: bool = True,
                  accelerator=None, allow_config_change: bool = False) -> dict:
    """Train ``interp.adapter`` on ``cases``; returns the run's history (losses, speed, steps).

    Resuming from ``out_dir/checkpoint`` with changed settings is refused (``check_resume_config``)
    unless ``allow_config_change``; a checkpoint of another adapter (``check_resume_adapter``) or one
    that fails its SHA256SUMS (``load_train_state``) is always refused."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    cfg = cfg or TrainConfig()
    if cfg.batch_size < 1 or cfg.grad_accum < 1:
        raise ValueError("batch_size and grad_accum must be >= 1")
    if len(cases) == 0:
        raise ValueError("no training cases")
    check_titles(cases, titles)
    acc = accelerator or Accelerator(cpu=interp.device.type == "cpu")
    torch.manual_seed(cfg.seed)
    interp.llm.to(acc.device)
    check_frozen(interp.llm.model)
    if cfg.gradient_checkpointing:  # stays on for this LLM; only grad-enabled calls are affected
        set_gradient_checkpointing(interp.llm.model)
    collate = Collator(interp.llm, cfg.max_target_tokens)  # the training targets' truncation is a training setting
    base = interp.adapter.float()
    opt = torch.optim.AdamW(base.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    n_local = math.ceil(len(cases) / acc.num_processes)
    micro_per_epoch = math.ceil(n_local / cfg.batch_size)
    if cfg.max_steps is not None and cfg.max_steps < 0:
        raise ValueError(f"max_steps must be >= 0 (or None: epochs), got {cfg.max_steps}")
    # max_steps=0 is a run of no steps (a learning curve's first point), not "unset"
    total = cfg.max_steps if cfg.max_steps is not None else max(1, math.ceil(cfg.epochs * micro_per_epoch / cfg.grad_accum))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg, total))

    out = Path(out_dir) if out_dir is not None else None
    step, micro, history, seconds_before = 0, 0, [], 0.0
    if out is not None and resume and (out / CKPT / STATE).exists():
        st = load_train_state(out / CKPT)
        check_resume_adapter(base, out / CKPT)
        if not allow_config_change:
            check_resume_config(st.get("config"), cfg, out / CKPT)
        base.load_state_dict(load_adapter(out / CKPT, d_llm=interp.llm.hidden_size).state_dict())
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        step, micro, history, seconds_before = st["step"], st["micro"], st["history"], st.get("seconds", 0.0)

    proj, opt = acc.prepare(base, opt)
    interp.adapter = proj  # DDP-wrapped under several processes; the same module otherwise
    interp.train()
    t0, seen, ema = time.time(), 0, None
    bar = tqdm(total=total, initial=step, disable=not (progress and acc.is_local_main_process), desc="adapter")
    stopped = "steps"

    def save():
        if out is not None and acc.is_main_process:
            _save_checkpoint(out / CKPT, acc.unwrap_model(proj), opt, sched,
                             {"step": step, "micro": micro, "history": history, "config": asdict(cfg),
                              "seconds": seconds_before + time.time() - t0})
        acc.wait_for_everyone()

    try:
        while step < total:
            loss_sum = 0.0
            for a in range(cfg.grad_accum):
                epoch, pos = divmod(micro, micro_per_epoch)
                order = epoch_order(len(cases), cfg.seed, epoch, acc.process_index, acc.num_processes)
                idx = order[pos * cfg.batch_size:(pos + 1) * cfg.batch_size]
                examples = make_examples(cases, idx, titles, interp.llm, interp.n_tokens, phase="train",
                                         seed=cfg.seed, epoch=epoch, target_order=cfg.target_order,
                                         layout=interp.layout)
                batch = collate(examples)  # tokenised here, once, outside forward
                sync = a == cfg.grad_accum - 1
                ctx = acc.no_sync(proj) if not sync and acc.num_processes > 1 else contextlib.nullcontext()
                with ctx:
                    loss = interp(batch) / cfg.grad_accum
                    acc.backward(loss)
                check_frozen(interp.llm.model)  # no LLM parameter may hold a gradient
                loss_sum += loss.item()
                micro += 1
                seen += len(idx) * acc.num_processes
            if cfg.max_grad_norm:
                acc.clip_grad_norm_(proj.parameters(), cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            ema = loss_sum if ema is None else 0.9 * ema + 0.1 * loss_sum
            rate = seen / max(time.time() - t0, 1e-9)
            history.append({"step": step, "loss": loss_sum, "lr": sched.get_last_lr()[0], "epoch": micro / micro_per_epoch})
            bar.set_postfix(loss=f"{ema:.3f}", samples_s=f"{rate:.1f}")
            bar.update(1)
            if cfg.ckpt_every and step % cfg.ckpt_every == 0 and step < total:
                save()
            if cfg.time_budget_s is not None:
                over = torch.tensor([float(time.time() - t0 >= cfg.time_budget_s)], device=acc.device)
                if acc.num_processes > 1:  # every process must stop at the same step (DDP)
                    over = acc.gather(over).max()
                if bool(over):
                    stopped = "time_budget"
                    break
    finally:
        bar.close()
    save()
    interp.adapter = acc.unwrap_model(proj)
    interp.eval()
    if out is not None and acc.is_main_process:
        interp.adapter.save(out / FINAL)
    elapsed = time.time() - t0
    return {"steps": step, "total_steps": total, "stopped_by": stopped, "history": history,
            "seconds_this_run": elapsed, "seconds_total": seconds_before + elapsed,
            "samples_per_s": seen / max(elapsed, 1e-9), "epochs": micro / micro_per_epoch,
            "config": asdict(cfg), "n_cases": len(cases), "processes": acc.num_processes}
