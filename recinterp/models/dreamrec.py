"""DreamRec: next-item recommendation as guided diffusion of the next item's embedding
(Yang et al., NeurIPS 2023).

    c      = guidance encoder(history)        1-block, 1-head SASRec, state at the last item
    x0     = E[next item]                     item table trained jointly, N(0, 1) init (authors)
    x_t    = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps
    loss   = || f(x_t, c, t) - x0 ||^2        f predicts x0, not the noise
    c is swapped for a learned "no condition" vector with probability p (classifier-free guidance).

Sampling runs T ancestral DDPM steps with the guided estimate
x0_hat = (1 + w) f(x_t, c, t) - w f(x_t, none, t); the last x0_hat is the *ideal
item*: an embedding in DreamRec's item space that need not be any catalogue item.
Items are ranked by inner product with it.

Two item tables (``DreamRecConfig.item_source``):

- ``"learned"`` (the authors'): trained jointly with the MSE.  Measured here, that loss
  shrinks the frequent targets (a trivial minimum) and retrieval collapses within a few
  epochs at CPU scale; notebook 02 reports it.
- ``"frozen"``: a trained encoder's table (SASRec's in notebook 02), divided by its std
  and kept fixed.  Nothing can collapse, and the ideal item is in that encoder's space:
  ``to_source_space(x0)`` can go straight into ``encoder.hidden_states_from_embeddings``.

For task 3 (ideal item -> encoder -> LLM), with a frozen-table DreamRec built from ``enc``::

    x0 = dreamrec.sample_ideal(ids, lens, generator=g)        # (B, d), DreamRec units
    e = dreamrec.to_source_space(x0)                          # (B, d), enc's item space
    # append e after each history (at position lens) and call enc.hidden_states_from_embeddings

For a learned table, or to reach another encoder's space, ``fit_embedding_bridge`` fits a
least-squares affine map between two item tables and ``bridge_report`` says how well it
fits (R^2 on all and on held-out items; notebook 02 prints them).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .sasrec import SASRec, SASRecConfig

SCHEDULES = ("linear", "cosine", "exp", "sqrt")
DENOISERS = ("mlp1", "mlp2")
OBJECTIVES = ("mse", "cosine", "softmax", "preferdiff")
ITEM_SOURCES = ("learned", "frozen", "pretrained")


@dataclass
class DreamRecConfig:
    n_items: int
    d: int = 64
    max_len: int = 10
    dropout: float = 0.1
    n_blocks: int = 1  # guidance encoder: the paper's 1 block, 1 head
    n_heads: int = 1
    p_uncond: float = 0.1  # probability of training with the "no condition" vector
    denoiser: str = "mlp1"  # authors' default: one Linear(3d -> d); "mlp2" adds a GELU hidden layer
    schedule: str = "exp"  # authors' code default; "linear" | "cosine" | "exp" | "sqrt"
    T: int = 500
    beta_start: float = 1e-4  # linear schedule only
    beta_end: float = 0.02
    w: float = 2.0  # guidance weight used when sample_ideal gets w=None
    item_init_std: float = 1.0  # x0 should be on the scale of the N(0, 1) noise
    # "learned": the authors' set-up, item table trained jointly with the MSE loss.
    # "frozen": a given table (e.g. a trained SASRec's), divided by item_scale so its entries
    # have unit std, and kept fixed: x0 then lives in that encoder's item space (x0 * item_scale).
    # "pretrained" (ADRec's pre-train-then-align): starts from that table, rescaled, and trains it.
    item_source: str = "learned"
    item_scale: float = 1.0  # set from the table when item_source is "frozen" or "pretrained"
    # The training objective on the denoiser's x0 estimate x0_hat (``DreamRec.loss``):
    # "mse" (the authors'), "cosine" (1 - cos(x0_hat, x0)), "softmax" ((1 - lam) cosine error + lam x
    # cross-entropy of the target among all items, logits cos(x0_hat, e_j) / tau), "preferdiff"
    # (PreferDiff, ICLR 2025: lam x cosine error - (1 - lam) log sigmoid(gamma (err_neg - err_pos)),
    # the negatives the batch's other targets).
    objective: str = "mse"
    lam: float = 0.5
    tau: float = 0.1
    gamma: float = 5.0


# ---------------------------------------------------------------------------------------
# Noise schedules
# ---------------------------------------------------------------------------------------
def make_betas(kind: str, T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """(T,) float64 betas for step 0..T-1."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    if kind == "linear":  # Ho et al.
        return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    if kind == "cosine":  # Nichol & Dhariwal, s = 0.008
        s = 0.008
        x = torch.linspace(0, T, T + 1, dtype=torch.float64)
        ab = torch.cos((x / T + s) / (1 + s) * math.pi / 2) ** 2
        ab = ab / ab[0]
        return (1 - ab[1:] / ab[:-1]).clamp(1e-4, 0.9999)
    if kind == "exp":  # authors' "exp": ~ VP-SDE with beta(s) linear 0.1 -> 10, alpha-bar ~ exp(-0.1u - 4.95u^2)
        bmin, bmax = 0.1, 10.0
        x = torch.linspace(1, 2 * T + 1, T, dtype=torch.float64)
        return 1 - torch.exp(-bmin / T - x * 0.5 * (bmax - bmin) / (T * T))
    if kind == "sqrt":  # Diffusion-LM: alpha_bar(t) = 1 - sqrt(t + 1e-4)
        ab = lambda t: 1 - math.sqrt(t + 1e-4)  # noqa: E731
        return torch.tensor([min(1 - ab((i + 1) / T) / ab(i / T), 0.999) for i in range(T)], dtype=torch.float64)
    raise ValueError(f"unknown noise schedule {kind!r}: choose one of {SCHEDULES}")


class DiffusionSchedule(nn.Module):
    """All per-step constants of the forward process and of q(x_{t-1} | x_t, x0).

    Computed in float64 from the betas, kept as float32 buffers that are *not*
    saved (they follow from the config), so a checkpoint holds only weights.
    """

    def __init__(self, kind: str, T: int, beta_start: float = 1e-4, beta_end: float = 0.02):
        super().__init__()
        betas = make_betas(kind, T, beta_start, beta_end)
        alphas = 1 - betas
        ab = torch.cumprod(alphas, 0)  # alpha-bar_t
        ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        consts = {
            "betas": betas,
            "alphas_cumprod": ab,
            "alphas_cumprod_prev": ab_prev,
            "sqrt_ab": ab.sqrt(),
            "sqrt_one_minus_ab": (1 - ab).sqrt(),
            # posterior q(x_{t-1} | x_t, x0) = N(coef1 * x0 + coef2 * x_t, var)
            "coef1": betas * ab_prev.sqrt() / (1 - ab),
            "coef2": (1 - ab_prev) * alphas.sqrt() / (1 - ab),
            "posterior_var": betas * (1 - ab_prev) / (1 - ab),
        }
        for k, v in consts.items():
            self.register_buffer(k, v.float(), persistent=False)
        self.T = T

    def at(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """constant ``name`` at steps t (B,) -> (B, 1), ready to broadcast over d."""
        return getattr(self, name)[t].unsqueeze(1)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.at("sqrt_ab", t) * x0 + self.at("sqrt_one_minus_ab", t) * noise


# ---------------------------------------------------------------------------------------
# Denoiser
# ---------------------------------------------------------------------------------------
class SinusoidalStep(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.d = d

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, d)
        half = self.d // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / max(half - 1, 1))
        ang = t.float()[:, None] * freqs[None, :]
        return torch.cat([ang.sin(), ang.cos()], dim=1)


class Denoiser(nn.Module):
    """f(x_t, c, t) -> x0 estimate, on the concatenation [x_t, c, step embedding]."""

    def __init__(self, d: int, kind: str = "mlp1"):
        super().__init__()
        if kind not in DENOISERS:
            raise ValueError(f"unknown denoiser {kind!r}: choose one of {DENOISERS}")
        self.step_mlp = nn.Sequential(SinusoidalStep(d), nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        if kind == "mlp1":
            self.net = nn.Linear(3 * d, d)
        else:
            self.net = nn.Sequential(nn.Linear(3 * d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x_t, c, self.step_mlp(t)], dim=1))  # (B, d)


def guidance_mix(f_cond: torch.Tensor, f_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """Classifier-free guidance on x0 estimates: (1 + w) f(x, c) - w f(x, none)."""
    return (1 + w) * f_cond - w * f_uncond


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------
class DreamRec(nn.Module):
    name = "dreamrec"

    def __init__(self, cfg: DreamRecConfig, item_table: torch.Tensor | None = None):
        """``item_table`` (n_items or n_items + 1, d): required when ``cfg.item_source == "frozen"``;
        ``cfg.item_scale`` is then set to the table's std (the config is updated in place)."""
        super().__init__()
        if cfg.item_source not in ITEM_SOURCES:
            raise ValueError(f"item_source must be one of {ITEM_SOURCES}, got {cfg.item_source!r}")
        if (item_table is not None) != (cfg.item_source != "learned"):
            raise ValueError(f"pass item_table exactly when item_source is 'frozen' or 'pretrained' "
                             f"(got item_source={cfg.item_source!r}, item_table={'given' if item_table is not None else None})")
        if cfg.objective not in OBJECTIVES:
            raise ValueError(f"unknown DreamRec objective {cfg.objective!r}: choose one of {OBJECTIVES}")
        if not 0.0 <= cfg.lam <= 1.0 or cfg.tau <= 0:
            raise ValueError(f"DreamRec needs 0 <= lam <= 1 and tau > 0, got lam={cfg.lam}, tau={cfg.tau}")
        if cfg.schedule not in SCHEDULES:
            raise ValueError(f"unknown noise schedule {cfg.schedule!r}: choose one of {SCHEDULES}")
        if not 0.0 <= cfg.p_uncond < 1.0:
            raise ValueError(f"p_uncond must be in [0, 1), got {cfg.p_uncond}")
        self.cfg = cfg
        # The guidance encoder is our SASRec (causal, 1 block, 1 head); its item table is DreamRec's.
        self.encoder = SASRec(SASRecConfig(n_items=cfg.n_items, d=cfg.d, max_len=cfg.max_len,
                                           dropout=cfg.dropout, n_blocks=cfg.n_blocks, n_heads=cfg.n_heads))
        nn.init.normal_(self.encoder.item_embeddings.weight, 0.0, cfg.item_init_std)
        with torch.no_grad():
            self.encoder.item_embeddings.weight[cfg.n_items].zero_()
        if item_table is not None:
            table = item_table.detach().float()[: cfg.n_items]
            if table.shape != (cfg.n_items, cfg.d):
                raise ValueError(f"item_table must be ({cfg.n_items}, {cfg.d}) (+ an optional padding row), "
                                 f"got {tuple(item_table.shape)}")
            cfg.item_scale = float(table.std())
            with torch.no_grad():
                self.encoder.item_embeddings.weight[: cfg.n_items].copy_(table / cfg.item_scale)
            if cfg.item_source == "frozen":
                self.encoder.item_embeddings.weight.requires_grad_(False)
        self.none_embedding = nn.Parameter(torch.randn(cfg.d) * cfg.item_init_std)  # the "no condition" c
        self.denoiser = Denoiser(cfg.d, cfg.denoiser)
        self.schedule = DiffusionSchedule(cfg.schedule, cfg.T, cfg.beta_start, cfg.beta_end)

    # sizes / interface shared with the encoders
    @property
    def n_items(self) -> int:
        return self.cfg.n_items

    @property
    def d(self) -> int:
        return self.cfg.d

    @property
    def item_embeddings(self) -> nn.Embedding:
        return self.encoder.item_embeddings

    def config_dict(self) -> dict:
        return asdict(self.cfg)

    def condition(self, ids: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """(B, d) guidance c: the encoder state at the last valid item (inputs validated there)."""
        return self.encoder.user_state(ids, lens)

    def loss(self, ids: torch.Tensor, lens: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
        if target_ids.dim() != 1 or target_ids.shape[0] != ids.shape[0]:
            raise ValueError(f"target_ids must be ({ids.shape[0]},), got {tuple(target_ids.shape)}")
        if target_ids.numel() and (int(target_ids.min()) < 0 or int(target_ids.max()) >= self.n_items):
            raise ValueError(f"target id out of range 0..{self.n_items - 1}")
        c = self.condition(ids, lens)  # (B, d)
        B = c.shape[0]
        drop = torch.rand(B, 1, device=c.device) < self.cfg.p_uncond
        c = torch.where(drop, self.none_embedding.expand(B, -1), c)
        x0 = self.item_embeddings(target_ids)  # (B, d)
        t = torch.randint(0, self.cfg.T, (B,), device=c.device)
        x_t = self.schedule.q_sample(x0, t, torch.randn_like(x0))
        return self.objective(self.denoiser(x_t, c, t), x0, target_ids)

    def objective(self, x0_hat: torch.Tensor, x0: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
        """The training loss of x0 estimates ``x0_hat`` (B, d) against the targets' embeddings ``x0`` (see
        ``DreamRecConfig.objective``).  Only "mse" can be lowered by shrinking the learned table."""
        cfg = self.cfg
        if cfg.objective == "mse":
            return F.mse_loss(x0_hat, x0)
        err = 1 - F.cosine_similarity(x0_hat, x0, dim=-1)  # (B,)
        if cfg.objective == "cosine":
            return err.mean()
        if cfg.objective == "softmax":
            table = F.normalize(self.item_embeddings.weight[: self.n_items], dim=-1)
            ce = F.cross_entropy(F.normalize(x0_hat, dim=-1) @ table.T / cfg.tau, target_ids)
            return (1 - cfg.lam) * err.mean() + cfg.lam * ce
        # preferdiff: every other target of the batch is a negative (the same item excepted)
        B = x0.shape[0]
        err_all = 1 - F.normalize(x0_hat, dim=-1) @ F.normalize(x0, dim=-1).T  # (B, B): [i, j] = error of i vs j's item
        neg = (target_ids[:, None] != target_ids[None, :]).float()
        err_neg = (err_all * neg).sum(1) / neg.sum(1).clamp(min=1)
        pref = -F.logsigmoid(cfg.gamma * (err_neg - err))
        pref = torch.where(neg.sum(1) > 0, pref, torch.zeros_like(pref)) if B > 1 else torch.zeros_like(pref)
        return cfg.lam * err.mean() + (1 - cfg.lam) * pref.mean()

    def diagnostics(self) -> dict:
        """Recorded after every training epoch (``train.fit``): the mean item-embedding norm, which falls
        when an MSE-trained learned table collapses."""
        return {"item_norm_mean": float(self.item_embeddings.weight[: self.n_items].detach().norm(dim=1).mean())}

    def guided_x0(self, x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor, w: float) -> torch.Tensor:
        B = x_t.shape[0]
        # one denoiser call on [cond; uncond] instead of two
        f = self.denoiser(torch.cat([x_t, x_t]), torch.cat([c, self.none_embedding.expand(B, -1)]),
                          torch.cat([t, t]))
        return guidance_mix(f[:B], f[B:], w)

    @torch.no_grad()
    def sample_from_condition(self, c: torch.Tensor, w: float | None = None,
                              generator: torch.Generator | None = None) -> torch.Tensor:
        """T ancestral DDPM steps from N(0, I) guided by c (B, d) -> the final x0 estimate (B, d)."""
        w = self.cfg.w if w is None else float(w)
        B, d = c.shape
        # Noise is drawn where the generator lives (CPU by default) and moved: same samples on any device.
        noise = lambda: torch.randn(B, d, generator=generator,  # noqa: E731
                                    device=generator.device if generator is not None else c.device).to(c.device)
        x = noise()
        s = self.schedule
        for step in reversed(range(self.cfg.T)):
            t = torch.full((B,), step, dtype=torch.long, device=c.device)
            x0_hat = self.guided_x0(x, c, t, w)
            if step == 0:
                # coef1[0] = 1, coef2[0] = 0: the posterior mean at t = 0 is x0_hat itself
                return x0_hat
            mean = s.at("coef1", t) * x0_hat + s.at("coef2", t) * x
            x = mean + s.at("posterior_var", t).sqrt() * noise()
        raise AssertionError("unreachable")  # pragma: no cover

    @torch.no_grad()
    def sample_ideal(self, ids: torch.Tensor, lens: torch.Tensor, w: float | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """The ideal next item for each history: (B, d) in DreamRec's item-embedding space.

        Call on a model in eval mode (``load_checkpoint`` returns one) so the guidance
        encoder's dropout is off; pass a seeded ``generator`` for reproducible samples.
        """
        return self.sample_from_condition(self.condition(ids, lens), w=w, generator=generator)

    def to_source_space(self, x0: torch.Tensor) -> torch.Tensor:
        """Frozen tables only: x0 in the units of the table it was built from (the encoder can read it)."""
        if self.cfg.item_source != "frozen":  # a pretrained table has moved away from its source while training
            raise ValueError("x0 of a DreamRec with a learned item table has no source space: "
                             "use fit_embedding_bridge to map it into an encoder's space")
        return x0 * self.cfg.item_scale

    def scores(self, x0: torch.Tensor) -> torch.Tensor:
        """(B, d) generated embeddings -> (B, n_items) inner products with the item table."""
        return x0 @ self.item_embeddings.weight[: self.n_items].T

    @torch.no_grad()
    def score_sequences(self, ids, lens, generator=None, w: float | None = None) -> torch.Tensor:
        return self.scores(self.sample_ideal(ids, lens, w=w, generator=generator))


# ---------------------------------------------------------------------------------------
# Bridging DreamRec's item space to an encoder's (task 3)
# ---------------------------------------------------------------------------------------
def fit_embedding_bridge(src_table: torch.Tensor, dst_table: torch.Tensor,
                         ridge: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares affine map with ``src_table @ W + b ~= dst_table``, fitted over items.

    src_table (N, d_src), dst_table (N, d_dst): row i of both is item i (leave the
    padding row out).  A small ridge keeps the solve stable.  Returns W (d_src, d_dst), b (d_dst,).
    Use: ``apply_bridge(dreamrec.sample_ideal(...), W, b)`` -> an embedding the encoder can read.
    """
    src, dst = src_table.detach().double(), dst_table.detach().double()
    if src.dim() != 2 or dst.dim() != 2 or src.shape[0] != dst.shape[0]:
        raise ValueError(f"tables must be (N, d_src) and (N, d_dst) with the same N, got "
                         f"{tuple(src.shape)} and {tuple(dst.shape)}")
    if src.shape[0] <= src.shape[1]:
        raise ValueError(f"need more items ({src.shape[0]}) than source dimensions ({src.shape[1]}) to fit a bridge")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, yd = src - mu_s, dst - mu_d
    gram = xs.T @ xs + ridge * torch.eye(src.shape[1], dtype=src.dtype)
    W = torch.linalg.solve(gram, xs.T @ yd)  # (d_src, d_dst)
    b = mu_d - mu_s @ W
    return W.float(), b.float()


def apply_bridge(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return x @ W + b


def bridge_r2(src_table: torch.Tensor, dst_table: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> float:
    """1 - SS_res / SS_tot, pooled over all target dimensions (each centred on its mean)."""
    dst = dst_table.detach().double()
    pred = apply_bridge(src_table.detach().double(), W.double(), b.double())
    ss_res = ((dst - pred) ** 2).sum()
    ss_tot = ((dst - dst.mean(0)) ** 2).sum()
    return float(1 - ss_res / ss_tot)


def bridge_report(src_table: torch.Tensor, dst_table: torch.Tensor, holdout: float = 0.2,
                  seed: int = 0, ridge: float = 1e-4) -> dict:
    """How well a linear bridge fits: R^2 on all items (in-sample) and on held-out items."""
    n = src_table.shape[0]
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(holdout * n)))
    te, tr = torch.as_tensor(perm[:n_test]), torch.as_tensor(perm[n_test:])
    W_tr, b_tr = fit_embedding_bridge(src_table[tr], dst_table[tr], ridge)
    W, b = fit_embedding_bridge(src_table, dst_table, ridge)
    return {"r2_all": bridge_r2(src_table, dst_table, W, b),
            "r2_heldout": bridge_r2(src_table[te], dst_table[te], W_tr, b_tr),
            "n_items": int(n), "n_heldout": int(n_test)}
