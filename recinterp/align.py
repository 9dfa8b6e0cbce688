"""Token-space alignment: fit the adapter to the LLM's own title-token embeddings, with no LLM pass.

The paper trains the adapter end to end: soft tokens -> frozen LLM -> next-token loss on
the title.  On a CPU that costs seconds per step.  This module fits the same kind of
adapter to a *target in the LLM's input space* instead: for item i, the LLM's own input
embeddings of the first ``k`` tokens of its title (zero rows past the title's end).  An
adapter that reproduces those rows hands the LLM something it can read like text, so
the LLM can then name the item; no gradient ever flows through the LLM.

    targets = title_token_targets(llm, ds.catalogue.norm_titles, k=8)     # (n_items, 8, d_llm)
    aligner = fit_item_aligner(enc.item_embeddings.weight[:n], targets)   # an Adapter (mlp2x_gelu)
    acc = token_top1(aligner, table[ids], targets, ids)                   # nearest title in token space

The structured adapter composes it with a readout, so it reads recommender *states*:

    state -> item logits (a readout over the encoder's item table: fitted, or the encoder's
    own scores) -> softmax(logits / T) -> expected item embedding -> item aligner -> k tokens

``structured_adapter`` builds it as one ``Adapter`` (kind ``structured``) that saves and
loads like any other adapter.  Honest reading: this adapter *decodes* the state into an
item (the readout) and spells that item in token space (the aligner); the LLM's part is
to read the spelled title back and name it.  Report the adapter-side accuracies
(``readout_top1``, ``token_top1``) beside the LLM's.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from recinterp.adapter import Adapter, build_adapter
from recinterp.config import STRUCTURED_TEMPERATURE


AUTO_HIDDEN_MAX = 4096  # the auto aligner width stops here: features x items would grow with the square of the items
# The readout's default (``aligned.readout.negatives`` absent or null): the full softmax up to this many items,
# above it a sampled softmax over AUTO_NEGATIVES random items per batch (an epoch's cost then grows linearly).
AUTO_SAMPLED_ABOVE = 4096
AUTO_NEGATIVES = 2048
ROWS = 4096  # row block of the aligner's ridge sums and error sums above this many items (memory linear in the items)
TOP1_MAX_ITEMS = 4096  # catalogue_aligner's token_top1 on the fitted items: a seeded sample of this many above it
MAX_LOGITS = 2 ** 28  # readout_top1 scores states in row blocks when states x items exceed this (1 GiB of logits)


@dataclass
class AlignConfig:
    k: int = 8  # soft tokens per item: the first k tokens of its title
    hidden: int = 0  # middle width of the aligner MLP; 0: auto, at least 2048 and at least the number of items
    #                  (rounded up to 512): with as many random features as items the ridge solve can fit each one;
    #                  the auto width stops at AUTO_HIDDEN_MAX (above it the fit is linear in the items; set hidden
    #                  explicitly to fit a larger catalogue item by item, at a cost that grows with its square)
    method: str = "ridge"  # "ridge": random GELU features + closed-form output layer; "adam": gradient descent
    ridge: float = 1e-5  # ridge strength, relative to the mean squared feature norm (small: fit the catalogue closely)
    steps: int = 0  # Adam steps (method="adam": the whole fit; "ridge": fine-tuning after the solve)
    lr: float = 3e-3  # Adam; from a ridge start use a much smaller one (1e-4): a large step undoes the solve
    seed: int = 0


# -- targets ------------------------------------------------------------------------------
@torch.no_grad()
def title_token_targets(llm, titles: list[str], k: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, k, d_llm) input embeddings of each title's first ``k`` tokens (zeros past its end), and
    the (n,) token counts kept.  Titles are tokenised as the answer text is (no special tokens)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not titles:
        raise ValueError("no titles to align to")
    ids = llm.tokenizer(list(titles), add_special_tokens=False)["input_ids"]
    empty = [i for i, r in enumerate(ids) if not r]
    if empty:
        raise ValueError(f"{len(empty)} title(s) tokenise to nothing, e.g. item {empty[0]} ({titles[empty[0]]!r})")
    emb = llm.model.get_input_embeddings().weight.detach().float().cpu()  # (V, d_llm)
    out = torch.zeros(len(ids), k, emb.shape[1])
    lens = torch.tensor([min(len(r), k) for r in ids])
    for i, r in enumerate(ids):
        out[i, : lens[i]] = emb[torch.tensor(r[:k])]
    return out, lens


# -- the item aligner -----------------------------------------------------------------------
def _mlp(aligner: Adapter):
    """The aligner's Sequential(Standardize, Linear, GELU, Linear)."""
    return aligner.layers.net


@torch.no_grad()
def _ridge_output_layer(h: torch.Tensor, y: torch.Tensor, ridge: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form least squares y ~ h @ W.T + b with a ridge on W; solved in the smaller of
    the two Gram matrices (n x n when there are fewer items than features)."""
    h_mean, y_mean = h.mean(0), y.mean(0)
    n, m = h.shape
    if n <= m:  # dual: W.T = hc.T (hc hc.T + lam I)^-1 yc  (an n x n solve: only while items <= features)
        hc, yc = (h - h_mean).double(), (y - y_mean).double()
        lam = ridge * float((hc * hc).sum()) / n
        W_t = hc.T @ torch.linalg.solve(hc @ hc.T + lam * torch.eye(n, dtype=hc.dtype), yc)
    else:  # primal: W.T = (hc.T hc + lam I)^-1 hc.T yc, its sums taken over blocks of rows (linear in n)
        G = torch.zeros(m, m, dtype=torch.float64)
        R = torch.zeros(m, y.shape[1], dtype=torch.float64)
        sq = 0.0
        for s in range(0, n, ROWS):
            hc, yc = (h[s: s + ROWS] - h_mean).double(), (y[s: s + ROWS] - y_mean).double()
            sq += float((hc * hc).sum())
            G += hc.T @ hc
            R += hc.T @ yc
        lam = ridge * sq / n
        W_t = torch.linalg.solve(G + lam * torch.eye(m, dtype=G.dtype), R)
    W = W_t.T.float()
    return W, (y_mean - h_mean @ W.T)


@torch.no_grad()
def _mse(predict, y: torch.Tensor, seed: int = 0) -> float:
    """Mean squared error of ``predict(rows)`` against ``y[rows]``: over every row up to ``ROWS`` rows, else over
    a seeded sample of ``ROWS`` rows (a diagnostic: a catalogue-wide pass would cost as much as the fit)."""
    n = len(y)
    if n <= ROWS:
        return float(((predict(slice(None)) - y) ** 2).mean())
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:ROWS].sort().values
    return float(((predict(idx) - y[idx]) ** 2).double().mean())


def auto_hidden(n_items: int) -> int:
    """The aligner's width when ``AlignConfig.hidden`` is 0: at least 2048 and the items rounded up to 512 (the
    ridge solve then fits every item), at most ``AUTO_HIDDEN_MAX`` (the fit's cost then grows linearly)."""
    return min(max(2048, -(-n_items // 512) * 512), max(2048, AUTO_HIDDEN_MAX))


def fit_item_aligner(items: torch.Tensor, targets: torch.Tensor, cfg: AlignConfig | None = None,
                     d_llm: int | None = None, **provenance) -> tuple[Adapter, dict]:
    """Fit an ``mlp2x_gelu`` adapter (standardised input, width ``cfg.hidden``) mapping each row of
    ``items`` (n, d) to its ``targets`` (n, k, d_llm) by mean squared error.  Returns the adapter
    (n_positions=1, n_tokens=k: it reads one item embedding) and a fit report (losses, seconds).

    ``ridge``: the first layer keeps its random initialisation (random GELU features of the
    standardised embedding) and the output layer is solved in closed form: seconds on a CPU,
    and with more features than items it fits the training items almost exactly.  ``steps`` > 0
    then fine-tunes both layers with full-batch Adam (``method="adam"`` starts from the random
    initialisation instead: the recipe first measured, minutes on a CPU).
    """
    cfg = cfg or AlignConfig()
    if items.dim() != 2 or targets.dim() != 3 or len(items) != len(targets):
        raise ValueError(f"items (n, d) and targets (n, k, d_llm) with one n; got {tuple(items.shape)}, "
                         f"{tuple(targets.shape)}")
    if len(items) < 2:
        raise ValueError("fitting an aligner needs at least two items")
    if cfg.method not in ("ridge", "adam"):
        raise ValueError(f"unknown alignment method {cfg.method!r}: choose 'ridge' or 'adam'")
    n, d = items.shape
    k, dl = targets.shape[1], targets.shape[2]
    if d_llm is not None and d_llm != dl:
        raise ValueError(f"targets have width {dl} but the LLM has hidden size {d_llm}")
    x, y = items.detach().float().cpu(), targets.reshape(n, k * dl).float().cpu()
    hidden = cfg.hidden or auto_hidden(n)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        aligner = build_adapter(kind="mlp2x_gelu", d_in=d, d_llm=dl, n_positions=1, n_tokens=k,
                                hidden=hidden, standardize=True, input="item", **provenance)
    net = _mlp(aligner)
    std, first, last = net[0], net[1], net[3]
    std.mean.copy_(x.mean(0))
    std.std.copy_(x.std(0).clamp(min=1e-6))
    t0 = time.time()
    y_mean = y.mean(0)
    report = {"config": asdict(cfg), "hidden": hidden, "n_items": n,
              "mean_predictor_mse": _mse(lambda r: y_mean.expand_as(y[r]), y, cfg.seed)}
    if cfg.method == "ridge":
        with torch.no_grad():
            h = net[2](first(std(x)))  # (n, hidden) random GELU features
            W, b = _ridge_output_layer(h, y, cfg.ridge)
            last.weight.copy_(W)
            last.bias.copy_(b)
            report["ridge_mse"] = _mse(lambda r: h[r] @ W.T + b, y, cfg.seed)
            del h
    steps = cfg.steps if cfg.method == "ridge" else max(cfg.steps, 1)
    if cfg.steps or cfg.method == "adam":
        opt = torch.optim.Adam([p for p in aligner.parameters()], lr=cfg.lr)
        with torch.enable_grad():
            for _ in range(steps):
                loss = F.mse_loss(net(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        report["adam_steps"] = steps
    with torch.no_grad():
        report["mse"] = float(F.mse_loss(net(x), y)) if n <= ROWS else _mse(lambda r: net(x[r]), y, cfg.seed)
        if n > ROWS:
            report["mse_items"] = ROWS  # the three mse's above are over a seeded sample of the items
    report["seconds"] = time.time() - t0
    aligner.eval()
    return aligner, report


@torch.no_grad()
def nearest_items(soft: torch.Tensor, targets: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """(B,) the item whose title tokens are nearest (squared distance) to each soft-token block
    ``soft`` (B, k, d_llm), among ``targets`` (n, k, d_llm)."""
    t = targets.reshape(len(targets), -1).float()
    t_sq = (t * t).sum(1)
    out = []
    for s in range(0, len(soft), batch):
        q = soft[s: s + batch].reshape(-1, t.shape[1]).float()
        out.append((t_sq[None, :] - 2 * q @ t.T).argmin(1))  # |q|^2 is the same for every item
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


@torch.no_grad()
def token_top1(aligner: Adapter, items: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor) -> float:
    """Share of ``items`` (B, d), with true ids ``ids``, whose aligned tokens are nearest to their own
    title's tokens among all ``targets``: the aligner's accuracy, before any LLM reads it."""
    dev = next(aligner.parameters()).device  # the aligner may sit on the LLM's device, the items on the CPU
    soft = aligner(items.float()[:, None, :].to(dev))  # (B, k, d_llm)
    return float((nearest_items(soft, targets.to(dev)).cpu() == ids.cpu()).float().mean()) if len(ids) else math.nan


# -- readouts: recommender state -> item logits ---------------------------------------------
READOUTS = ("fitted", "encoder")


def encoder_readout_weight(table: torch.Tensor, task: str, d_in: int) -> torch.Tensor:
    """The encoder's own scores as a linear readout (n_items, d_in): E h for a state h, and
    E (h_after - h_before) = [-E, E] [h_before; h_after] for the residual pair input."""
    d = table.shape[1]
    if d_in == d:
        return table.clone()
    if task == "residual" and d_in == 2 * d:
        return torch.cat([-table, table], 1)
    raise ValueError(f"no encoder readout for {task} inputs of width {d_in} (item table width {d})")


def position_pairs(features: torch.Tensor, answers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Recovery cases (N, 1, L, d) with their windows (N, L) -> (M, d) states of the real positions
    and (M,) the item at each: what a per-position readout is fitted on."""
    N, S, L, d = features.shape
    if S != 1 or answers.shape[1] != L:
        raise ValueError(f"per-position pairs need features (N, 1, L, d) and answers (N, L); "
                         f"got {tuple(features.shape)}, {tuple(answers.shape)}")
    real = answers >= 0
    return features[:, 0][real], answers[real]


def train_linear(lin: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor, loss_fn=F.cross_entropy, epochs: int = 20,
                 batch_size: int = 512, lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0) -> torch.nn.Linear:
    """Train ``lin`` in place: AdamW on ``loss_fn(lin(x[b]), y[b])`` over seeded random batches, ``epochs``
    times.  The one loop behind every linear readout (here and ``recinterp.probes.LinearReadout``)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(lin.parameters(), lr=lr, weight_decay=weight_decay)
    x = x.float()
    with torch.enable_grad():
        for _ in range(epochs):
            for b in torch.randperm(len(x), generator=g).split(batch_size):
                loss = loss_fn(lin(x[b]), y[b])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return lin.eval()


def train_linear_sampled(lin: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor, negatives: int, epochs: int = 20,
                         batch_size: int = 512, lr: float = 3e-3, weight_decay: float = 1e-4,
                         seed: int = 0) -> torch.nn.Linear:
    """``train_linear`` with a sampled softmax: each batch scores only its own target items and ``negatives``
    items drawn uniformly from the catalogue (seeded), so a step costs batch x (batch + negatives) instead of
    batch x items.  An approximation of the full softmax for catalogues too large to score whole."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(lin.parameters(), lr=lr, weight_decay=weight_decay)
    x, n_items = x.float(), lin.out_features
    with torch.enable_grad():
        for _ in range(epochs):
            for b in torch.randperm(len(x), generator=g).split(batch_size):
                cand = torch.unique(torch.cat([y[b], torch.randint(n_items, (negatives,), generator=g)]))  # sorted
                logits = x[b] @ lin.weight[cand].T + lin.bias[cand]
                loss = F.cross_entropy(logits, torch.searchsorted(cand, y[b]))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return lin.eval()


def auto_negatives(n_items: int) -> int:
    """The readout's default sampled items: 0 (the full softmax) up to ``AUTO_SAMPLED_ABOVE`` items, else
    ``AUTO_NEGATIVES``."""
    return 0 if n_items <= AUTO_SAMPLED_ABOVE else AUTO_NEGATIVES


def fit_linear_readout(x: torch.Tensor, y: torch.Tensor, n_items: int, init: torch.Tensor | None = None,
                       epochs: int = 20, batch_size: int = 512, lr: float = 3e-3, weight_decay: float = 1e-4,
                       seed: int = 0, negatives: int | None = None) -> torch.nn.Linear:
    """Softmax regression x (M, d_in) -> y (M,) item ids over ``n_items``, from ``init`` (the encoder's
    scores: the fit is then a correction of them) or from a seeded random start.

    ``negatives`` (the preset's ``aligned.readout.negatives``): a sampled softmax over each batch's targets
    and this many random items (``train_linear_sampled``), used only when it is smaller than the catalogue;
    0: the full softmax at any size; None (the default): ``auto_negatives(n_items)``, the full softmax up to
    ``AUTO_SAMPLED_ABOVE`` items and ``AUTO_NEGATIVES`` sampled items above."""
    if len(x) == 0:
        raise ValueError("no training pairs for the readout")
    if int(y.min()) < 0 or int(y.max()) >= n_items:
        raise ValueError(f"readout target id out of range 0..{n_items - 1}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        lin = torch.nn.Linear(x.shape[1], n_items)
    if init is not None:
        with torch.no_grad():
            lin.weight.copy_(init)
            lin.bias.zero_()
    if negatives is None:
        negatives = auto_negatives(n_items)
    if int(negatives) < 0:
        raise ValueError(f"readout negatives must be a number of sampled items (0: the full softmax; null: auto), "
                         f"got {negatives}")
    kw = dict(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed)
    if 0 < int(negatives) < n_items:
        return train_linear_sampled(lin, x, y.long(), int(negatives), **kw)
    return train_linear(lin, x, y.long(), **kw)


@torch.no_grad()
def readout_top1(readout: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of states whose readout's top item is the true one (among all items)."""
    dev = readout.weight.device  # the readout may sit on the LLM's device, the states on the CPU
    if not len(y):
        return math.nan
    if len(y) * readout.weight.shape[0] <= MAX_LOGITS:
        return float((readout(x.float().to(dev)).argmax(-1).cpu() == y.cpu()).float().mean())
    rows = max(1, MAX_LOGITS // readout.weight.shape[0])  # logits in blocks of rows: memory bounded at any size
    hits = sum(int((readout(x[s: s + rows].float().to(dev)).argmax(-1).cpu() == y[s: s + rows].cpu()).sum())
               for s in range(0, len(y), rows))
    return float(torch.tensor(float(hits)) / len(y))  # as the one-piece float32 mean computes it


# -- the structured adapter -------------------------------------------------------------------
@torch.no_grad()
def structured_adapter(readout: torch.nn.Linear, table: torch.Tensor, aligner: Adapter, n_positions: int = 1,
                       temperature: float = STRUCTURED_TEMPERATURE, layout: str = "inline", **provenance) -> Adapter:
    """One adapter: state (B, P, d_in) -> readout -> softmax(/temperature) -> expected item
    embedding over ``table`` -> ``aligner`` -> P x k soft tokens.  Saved and loaded as one."""
    a = aligner.cfg
    if table.shape[1] != a.d_in:
        raise ValueError(f"item table width {table.shape[1]} != the aligner's input width {a.d_in}")
    if readout.out_features != table.shape[0]:
        raise ValueError(f"readout scores {readout.out_features} items but the table has {table.shape[0]}")
    proj = build_adapter(kind="structured", d_in=readout.in_features, d_llm=a.d_llm, n_positions=n_positions,
                           n_tokens=n_positions * a.n_tokens, hidden=a.hidden, standardize=a.standardize,
                           n_items=table.shape[0], d_item=table.shape[1], temperature=temperature,
                           layout=layout, **provenance)
    s = proj.layers
    s.readout.load_state_dict(readout.state_dict())
    s.table.copy_(table.detach().float())
    s.aligner.load_state_dict(_mlp(aligner).state_dict())
    return proj.eval()
