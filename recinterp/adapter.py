"""The adapter: recommender states -> soft tokens in the LLM's embedding space.

Input ``x``: (B, P, d_in), the P states one placeholder reads (P = 10 for all
positions of a window, 1 for the last state or an item embedding; d_in = 2d when
the residual task feeds [h_before, h_after]).  Output: (B, n_tokens, d_llm).

Kinds:
- ``linear``      per position, Linear(d_in, t * d_llm) with t = n_tokens / P tokens per
                  position (P=10, n_tokens=10: one soft token per state; P=1, n_tokens=4: 4 tokens).
                  ``standardize`` puts a fixed per-feature standardisation first (``fit_input_stats``).
- ``conv_pool``   the authors' adapter: Conv2d(1, 1, (P, 1)) pools the P states into one,
                  then Linear(d_in, n_tokens * d_llm) (n_tokens=1 in their code).
- ``mlp2x_gelu``  per position like ``linear`` but Linear -> GELU -> Linear (LLaVA-1.5);
                  ``hidden`` sets the middle width (default d_llm), ``standardize`` puts a fixed
                  per-feature standardisation first (its mean/std are buffers, saved with the weights).
                  The token-space item aligner (recinterp.align) is this kind.
- ``structured``  the decoding adapter of recinterp.align, per position: a readout to item logits,
                  softmax at ``temperature``, the expected item embedding over the encoder's item
                  table, then the item aligner (an ``mlp2x_gelu`` with n_tokens / P tokens).  A position
                  whose state is all zero (padding) gives zero soft tokens.

Each kind is registered by name in ``ADAPTERS`` (a function: config -> layers); a new kind is one function
and ``@register_adapter("mine")``, then ``build_adapter(kind="mine")`` builds it like the built-in ones.

Two options bring the paper's end-to-end adapters (``linear``, ``conv_pool``) into the LLM's
scale, without which they learn slowly or not at all (notebook 04's evidence, ``tests/test_must_light.py``):
``standardize`` (the recommender's item embeddings have per-feature std ~0.07, its states ~1
around uncentred means) and ``out_norm`` (every soft token rescaled to this norm: a fresh
linear adapter writes tokens of norm ~15, the LLM's own token embeddings have norm ~3.2;
``llm_token_norm`` measures it, and a preset's ``"out_norm": "llm"`` asks for that value).

An adapter saves and loads on its own (``adapter.safetensors`` + ``adapter_config.json``
naming the encoder (and the SHA-256 of its weights), dataset, LLM and task it was trained for), like a
PEFT adapter, and a ``SHA256SUMS`` of both (``recinterp.config.seal``): a changed byte in either is
refused on load (``IntegrityError`` naming the file); the config also holds a second hash of the weights,
so overwritten weights are caught in a folder whose SHA256SUMS is gone; loading against an LLM of another
width raises.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from recinterp.config import IntegrityError, read_json, seal, sha256_file, unseal, verify, write_json_atomic

WEIGHTS_NAME = "adapter.safetensors"
CONFIG_NAME = "adapter_config.json"
WEIGHTS_HASH = "weights_sha256"  # the key of the weights' second hash in adapter_config.json


@dataclass
class AdapterConfig:
    kind: str = "linear"
    d_in: int = 64  # width of one input state
    d_llm: int = 576  # the LLM's hidden size
    n_positions: int = 1  # P: states per placeholder (10 = all positions, 1 = last state / item)
    n_tokens: int = 1  # soft tokens per placeholder
    hidden: int = 0  # mlp2x_gelu / structured: middle width of the MLP (0: d_llm)
    standardize: bool = False  # standardise the input (fixed mean/std buffers; linear / conv_pool: fit_input_stats)
    n_items: int = 0  # structured: catalogue size of the readout / item table
    d_item: int = 0  # structured: width of the item table (the encoder's d)
    temperature: float = 1.0  # structured: softmax temperature of the readout (small = sharp)
    out_norm: float = 0.0  # every soft token rescaled to this L2 norm (0: off; see llm_token_norm)
    layout: str = "inline"  # how the prompt lays the soft tokens out: "inline", or "list" (one numbered line per position)
    # Provenance, saved with the weights: what the adapter was trained against.
    input: str = "last"  # item | all | last | pair | diff | two_slots (see recinterp.tasks)
    task: str = ""
    encoder: str = ""
    dataset: str = ""
    llm: str = ""
    encoder_sha256: str = ""  # config.state_sha256 of the encoder's weights ("": not recorded)


class PerPosition(nn.Module):
    """(B, P, d_in) -> (B, P * t, d_llm): the same map applied to every position."""

    def __init__(self, net: nn.Module, t: int, d_llm: int):
        super().__init__()
        self.net, self.t, self.d_llm = net, t, d_llm

    def forward(self, x):
        B, P, _ = x.shape
        return self.net(x).view(B, P * self.t, self.d_llm)


class ConvPool(nn.Module):
    """(B, P, d_in) -> (B, k, d_llm): learned weighted sum over positions, then one linear."""

    def __init__(self, P: int, d_in: int, k: int, d_llm: int, standardize: bool = False):
        super().__init__()
        self.std = Standardize(d_in) if standardize else nn.Identity()
        self.pool = nn.Conv2d(1, 1, (P, 1))  # one weight per position (+ bias), shared over features
        self.proj = nn.Linear(d_in, k * d_llm)
        self.k, self.d_llm = k, d_llm

    def forward(self, x):
        B = x.shape[0]
        pooled = self.pool(self.std(x).unsqueeze(1)).view(B, -1)  # (B, 1, P, d_in) -> (B, 1, 1, d_in) -> (B, d_in)
        return self.proj(pooled).view(B, self.k, self.d_llm)


class Standardize(nn.Module):
    """x -> (x - mean) / std with fixed statistics (buffers: saved and loaded with the weights)."""

    def __init__(self, d: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("std", torch.ones(d))

    def forward(self, x):
        return (x - self.mean) / self.std


def _mlp(d_in: int, hidden: int, d_out: int, standardize: bool) -> nn.Sequential:
    layers = [Standardize(d_in)] if standardize else []
    return nn.Sequential(*layers, nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, d_out))


class Structured(nn.Module):
    """(B, P, d_in) -> (B, P * t, d_llm): state -> item logits -> expected item embedding -> t soft tokens.

    The readout and the aligner are fitted by recinterp.align (no LLM pass); the item table is
    the encoder's, a buffer.  Expected embedding = softmax(logits / temperature) @ table: at a low
    temperature it is (nearly) the embedding of the readout's top item, which the aligner was
    fitted to turn into that item's title tokens.
    """

    def __init__(self, d_in: int, n_items: int, d_item: int, aligner: nn.Module, t: int, d_llm: int, temperature: float):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"structured adapter needs a positive temperature, got {temperature}")
        self.readout = nn.Linear(d_in, n_items)
        self.register_buffer("table", torch.zeros(n_items, d_item))
        self.aligner = aligner  # (.., d_item) -> (.., t * d_llm)
        self.t, self.d_llm, self.temperature = t, d_llm, temperature

    def item_probs(self, x: torch.Tensor) -> torch.Tensor:
        return (self.readout(x) / self.temperature).softmax(-1)  # (B, P, n_items)

    def forward(self, x):
        B, P, _ = x.shape
        e = self.item_probs(x) @ self.table  # (B, P, d_item)
        soft = self.aligner(e).view(B, P, self.t, self.d_llm)
        real = x.abs().sum(-1) > 0  # (B, P): padding positions carry all-zero states
        return (soft * real[..., None, None].to(soft.dtype)).view(B, P * self.t, self.d_llm)


# kind -> a function (config -> the adapter's layers: (B, P, d_in) -> (B, n_tokens, d_llm)); register_adapter
ADAPTERS: dict[str, Callable[[AdapterConfig], nn.Module]] = {}


def register_adapter(kind: str, build: Callable[[AdapterConfig], nn.Module] | None = None):
    """Make an adapter kind known by name: ``build(cfg)`` returns its layers, a module mapping states
    (B, P, d_in) to soft tokens (B, n_tokens, d_llm).  As a decorator (``@register_adapter("mine")``) or a
    call; then ``build_adapter(kind="mine")``, saving, loading and training take it like the built-in kinds."""
    def add(fn):
        if not callable(fn):
            raise ValueError(f"register_adapter({kind!r}) needs a function of the config, got {fn!r}")
        ADAPTERS[kind] = fn
        return fn

    return add if build is None else add(build)


def tokens_per_position(cfg: AdapterConfig) -> int:
    """t = n_tokens / P for a kind that maps each of the P positions to its own soft tokens."""
    P, k = cfg.n_positions, cfg.n_tokens
    if k % P:
        raise ValueError(f"{cfg.kind} maps each of the {P} positions to n_tokens/P soft tokens; "
                         f"n_tokens={k} is not a multiple of {P} (use conv_pool to pool positions)")
    return k // P


@register_adapter("linear")
def _linear(cfg: AdapterConfig) -> nn.Module:
    t, d_in, d = tokens_per_position(cfg), cfg.d_in, cfg.d_llm
    lin = nn.Linear(d_in, t * d)
    return PerPosition(nn.Sequential(Standardize(d_in), lin) if cfg.standardize else lin, t, d)


@register_adapter("conv_pool")
def _conv_pool(cfg: AdapterConfig) -> nn.Module:
    return ConvPool(cfg.n_positions, cfg.d_in, cfg.n_tokens, cfg.d_llm, cfg.standardize)


@register_adapter("mlp2x_gelu")
def _mlp2x_gelu(cfg: AdapterConfig) -> nn.Module:
    t, d = tokens_per_position(cfg), cfg.d_llm
    return PerPosition(_mlp(cfg.d_in, cfg.hidden or d, t * d, cfg.standardize), t, d)


@register_adapter("structured")
def _structured(cfg: AdapterConfig) -> nn.Module:
    t, d = tokens_per_position(cfg), cfg.d_llm
    if min(cfg.n_items, cfg.d_item) < 1:
        raise ValueError(f"a structured adapter needs n_items and d_item (the item table's shape): {cfg}")
    return Structured(cfg.d_in, cfg.n_items, cfg.d_item, _mlp(cfg.d_item, cfg.hidden or d, t * d, cfg.standardize),
                      t, d, cfg.temperature)


KINDS = tuple(ADAPTERS)  # the built-in kinds (ADAPTERS also holds those registered later)


def _layers(cfg: AdapterConfig) -> nn.Module:
    P, k, d_in, d = cfg.n_positions, cfg.n_tokens, cfg.d_in, cfg.d_llm
    if min(P, k, d_in, d) < 1:
        raise ValueError(f"adapter sizes must be positive: {cfg}")
    if cfg.out_norm < 0:
        raise ValueError(f"out_norm must be >= 0 (0: off), got {cfg.out_norm}")
    if cfg.kind not in ADAPTERS:
        raise ValueError(f"unknown adapter kind {cfg.kind!r}: choose one of {sorted(ADAPTERS)} (a new one: register_adapter)")
    return ADAPTERS[cfg.kind](cfg)


class Adapter(nn.Module):
    def __init__(self, cfg: AdapterConfig):
        super().__init__()
        self.cfg = cfg
        self.layers = _layers(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, P, d_in) -> soft tokens (B, n_tokens, d_llm)."""
        P, d_in = self.cfg.n_positions, self.cfg.d_in
        if x.dim() != 3 or x.shape[1:] != (P, d_in):
            raise ValueError(f"adapter expects (B, {P}, {d_in}) states, got {tuple(x.shape)}")
        soft = self.layers(x.to(self.dtype))
        if self.cfg.out_norm > 0:  # each soft token onto the sphere of the LLM's own token norms (zeros stay zero)
            soft = soft * (self.cfg.out_norm / soft.norm(dim=-1, keepdim=True).clamp_min(1e-6))
        return soft

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # -- persistence ----------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        """Write adapter.safetensors + adapter_config.json into ``folder`` (atomically, file by file),
        then their SHA256SUMS (last: a save cut short is never taken for a whole one)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        unseal(folder)
        tmp = folder / (WEIGHTS_NAME + ".tmp")
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(tmp))
        os.replace(tmp, folder / WEIGHTS_NAME)
        # a second hash of the weights, in the config: overwritten weights are caught without the SHA256SUMS
        write_json_atomic(folder / CONFIG_NAME, {**asdict(self.cfg), WEIGHTS_HASH: sha256_file(folder / WEIGHTS_NAME)})
        seal(folder, (WEIGHTS_NAME, CONFIG_NAME))
        return folder


def llm_token_norm(llm) -> float:
    """The mean L2 norm of the LLM's input token embeddings (the scale its layers expect; SmolLM2-135M: ~3.2)."""
    w = llm.model.get_input_embeddings().weight.detach().float()
    return float(w.norm(dim=-1).mean())


@torch.no_grad()
def fit_input_stats(adapter: "Adapter", features: torch.Tensor) -> "Adapter":
    """Set a ``standardize`` adapter's per-feature mean/std from training inputs ``features`` (..., d_in).

    All-zero rows (padding positions) are left out.  A no-op for an adapter without ``standardize``;
    the aligners of recinterp.align fit their own."""
    stds = [m for m in adapter.modules() if isinstance(m, Standardize)]
    if not stds:
        return adapter
    x = features.detach().float().reshape(-1, adapter.cfg.d_in)
    x = x[x.abs().sum(-1) > 0]
    if len(x) < 2:
        raise ValueError(f"fit_input_stats needs at least 2 non-zero input rows, got {len(x)}")
    for m in stds:
        m.mean.copy_(x.mean(0))
        m.std.copy_(x.std(0).clamp(min=1e-6))
    return adapter


@torch.no_grad()
def match_output_norm(adapter: "Adapter", features: torch.Tensor, norm: float) -> "Adapter":
    """Rescale a fresh ``linear`` / ``conv_pool`` adapter's last layer so that its soft tokens on ``features``
    have mean L2 norm ``norm`` (the LLM's token scale): a norm-matched start.  PyTorch's default init
    writes tokens of norm ~14 from unit-variance inputs, 4-5x the embedded LLM's own tokens."""
    if adapter.cfg.kind not in ("linear", "conv_pool"):
        raise ValueError(f"match_output_norm rescales a linear or conv_pool adapter, not {adapter.cfg.kind!r}")
    last = [m for m in adapter.modules() if isinstance(m, nn.Linear)][-1]
    x = features.detach().reshape(-1, *features.shape[-2:]).to(last.weight)
    now = float(adapter.layers(x).float().norm(dim=-1).mean())  # the raw tokens, before any out_norm
    last.weight.mul_(norm / max(now, 1e-12))
    last.bias.mul_(norm / max(now, 1e-12))
    return adapter


@torch.no_grad()
def least_squares_init(adapter: "Adapter", features: torch.Tensor, targets: torch.Tensor, ridge: float = 1e-3) -> "Adapter":
    """Start a one-position ``linear`` adapter at the least-squares map (no LLM pass) from its inputs ``features``
    (N, 1, d_in) to ``targets`` (N, n_tokens, d_llm), e.g. the first title tokens of the item each input should
    name: the bridge from the token-space route to the paper's.  A ``standardize`` adapter fits in standardised
    coordinates (call ``fit_input_stats`` first)."""
    cfg = adapter.cfg
    if cfg.kind != "linear" or cfg.n_positions != 1:
        raise ValueError(f"least_squares_init starts a one-position linear adapter, not {cfg.kind} with {cfg.n_positions} positions")
    if targets.shape[1:] != (cfg.n_tokens, cfg.d_llm) or features.shape[0] != targets.shape[0]:
        raise ValueError(f"least_squares_init needs targets (N, {cfg.n_tokens}, {cfg.d_llm}) for N = {features.shape[0]} "
                         f"inputs, got {tuple(targets.shape)}")
    lin = [m for m in adapter.modules() if isinstance(m, nn.Linear)][-1]
    std = [m for m in adapter.modules() if isinstance(m, Standardize)]
    x = features.detach().reshape(len(features), -1).double().to(lin.weight.device)
    if std:
        x = (x - std[0].mean.double()) / std[0].std.double()
    W, b = ridge_affine(x, targets.detach().reshape(len(targets), -1).double().to(x.device), ridge)
    lin.weight.copy_(W.T.to(lin.weight.dtype))
    lin.bias.copy_(b.to(lin.bias.dtype))
    return adapter


def ridge_affine(x: torch.Tensor, y: torch.Tensor, ridge: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """W (d_in, d_out), b (d_out,) minimising |x W + b - y|^2 + ridge |[W; b]|^2, in float64: the least-squares
    map that ``least_squares_init`` starts an adapter at and ``recinterp.evidence.linear_ceiling`` measures."""
    x = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.double, device=x.device)], 1)
    Wb = torch.linalg.solve(x.T @ x + ridge * torch.eye(x.shape[1], dtype=x.dtype, device=x.device), x.T @ y.double())
    return Wb[:-1], Wb[-1]


def build_adapter(cfg: AdapterConfig | None = None, **kw) -> Adapter:
    """Adapter from a config and/or keyword overrides; unknown kinds and fields raise."""
    base = asdict(cfg) if cfg is not None else {}
    names = {f.name for f in fields(AdapterConfig)}
    unknown = set(kw) - names
    if unknown:
        raise ValueError(f"unknown adapter option(s) {sorted(unknown)}; known: {sorted(names)}")
    return Adapter(AdapterConfig(**{**base, **kw}))


def read_adapter_config(folder: str | os.PathLike) -> AdapterConfig:
    """The config of the adapter saved in ``folder``, verified against its SHA256SUMS."""
    folder = Path(folder)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).exists():
            raise FileNotFoundError(f"no {name} in {folder}")
    fix = f"re-save or retrain the adapter, or delete {folder} (a trained adapter is never read unverified)"
    verify(folder, (CONFIG_NAME, WEIGHTS_NAME), fix, unsealed="warn")
    saved = read_json(folder / CONFIG_NAME, fix)
    if isinstance(saved, dict) and WEIGHTS_HASH in saved:
        if saved.pop(WEIGHTS_HASH) != sha256_file(folder / WEIGHTS_NAME):
            raise IntegrityError(f"{folder / WEIGHTS_NAME} does not match the SHA-256 recorded in its {CONFIG_NAME} "
                                 f"(overwritten or damaged since it was saved). To fix: {fix}")
    names = {f.name for f in fields(AdapterConfig)}
    if not isinstance(saved, dict) or set(saved) - names:
        raise IntegrityError(f"{folder / CONFIG_NAME} is not an adapter config (unknown keys "
                             f"{sorted(set(saved) - names) if isinstance(saved, dict) else type(saved).__name__}). "
                             f"To fix: {fix}")
    return AdapterConfig(**saved)


def load_adapter(folder: str | os.PathLike, d_llm: int | None = None, map_location="cpu") -> Adapter:
    """Load a saved adapter; ``d_llm`` (the LLM it will feed) must equal the width it was trained for.
    Both files are checked against the SHA256SUMS written with them (``IntegrityError`` if not)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg = read_adapter_config(folder)
    if d_llm is not None and int(d_llm) != cfg.d_llm:
        raise ValueError(f"adapter in {folder} was trained for an LLM of width {cfg.d_llm} ({cfg.llm or 'unknown LLM'}), "
                         f"cannot feed an LLM of width {d_llm}")
    proj = Adapter(cfg)
    try:
        proj.load_state_dict(load_file(str(folder / WEIGHTS_NAME), device=str(map_location)))
    except Exception as e:  # noqa: BLE001 - only a folder saved before the SHA256SUMS rule can get here
        raise IntegrityError(f"{folder / WEIGHTS_NAME} cannot be read as the adapter its {CONFIG_NAME} describes "
                             f"({type(e).__name__}: {str(e)[:300]}): re-save or retrain the adapter") from None
    return proj


@torch.no_grad()
def init_from(target: Adapter, source: Adapter) -> Adapter:
    """Start ``target`` from a trained ``source`` (e.g. the item-alignment adapter).

    Same shapes: plain copy (diff / two_slots residual inputs read item-like vectors).
    ``target`` reads [h_before, h_after] (d_in = 2 * source.d_in, the "pair" input): its first
    layer becomes [-W, W], so at step 0 it is the source applied to h_after - h_before and
    training can move away from the difference from there (exact for linear / mlp2x_gelu;
    for conv_pool up to the pooling bias, which cancels in the difference).
    """
    t_sd, s_sd = target.state_dict(), source.state_dict()
    if t_sd.keys() != s_sd.keys():
        raise ValueError(f"cannot initialise a {target.cfg.kind} adapter from a {source.cfg.kind} one")
    for k, v in s_sd.items():
        if k.endswith((".mean", ".std")) and v.dim() == 1 and t_sd[k].shape != v.shape:
            continue  # input statistics of another input width: the target fits its own (fit_input_stats)
        if t_sd[k].shape == v.shape:
            t_sd[k].copy_(v)
        elif v.dim() == 2 and t_sd[k].shape == (v.shape[0], 2 * v.shape[1]):  # a Linear reading [h_before, h_after]
            t_sd[k].copy_(torch.cat([-v, v], dim=1))
        else:
            raise ValueError(f"cannot initialise {k}: shape {tuple(t_sd[k].shape)} from {tuple(v.shape)}")
    target.load_state_dict(t_sd)
    return target
