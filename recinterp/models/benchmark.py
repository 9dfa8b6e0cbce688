"""Notebook 02's benchmark: every recommender scored on the same rows, each paired with popularity.

    d = prepare(ds, max_train_rows=None, seed=0)      # train rows, expanded validation, evaluation splits
    bench = Benchmark({"movielens": d}, seed=0)
    bench.record("movielens", "popularity", Popularity.from_split(d.train, ds.n_items))
    bench.fit("movielens", "sasrec", model, fit_cfg)  # train.fit, then record: test metrics + CIs
    bench.vs("movielens", "sasrec", "test")            # {diff, lo, hi, above}: paired HR@10 difference
    bench.dataset_metrics("movielens", w_default=2.0)  # the block notebook 02 writes to metrics.json

Each model's per-row HR@K / NDCG@K are kept (``per_row``), so two models are always compared on the
same rows with a paired bootstrap (``metrics.paired_bootstrap_diff``): on 95 MovieLens test rows two
hit rates a few points apart are noise unless their paired interval excludes 0.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from recinterp.data.types import RecDataset, Split
from recinterp.metrics import format_ci, paired_bootstrap_diff, summarize

from .dreamrec import DreamRec, DreamRecConfig, bridge_report
from .train import FitConfig, Popularity, TrainResult, evaluate_rows, expand_prefixes, fit, seed_everything

CI_METRICS = ("HR@10", "NDCG@10")  # the metrics recorded with a bootstrap CI
BASELINE = "popularity"
REFERENCE = "sasrec"  # the encoder every DreamRec is compared with on the same rows


@dataclass
class BenchData:
    """One dataset as notebook 02 trains and evaluates on it."""

    ds: RecDataset
    train: Split  # the training rows (subsampled when the preset caps them)
    val: Split  # the validation split expanded to every (prefix, next item) pair, for early stopping
    evals: dict[str, Split]  # "test", and "test_all" where the dataset has it

    def row(self) -> dict:
        """One line of the data table: items and rows per split."""
        return {"dataset": self.ds.name, "items": self.ds.n_items, "train rows": len(self.train),
                "val rows": len(self.ds.val), "val (expanded)": len(self.val),
                **{f"{k} rows": len(v) for k, v in self.evals.items()}}

    def popularity(self) -> Popularity:
        return Popularity.from_split(self.train, self.ds.n_items)


def prepare(ds: RecDataset, max_train_rows: int | None = None, seed: int = 0) -> BenchData:
    """The training rows (a seeded random subset of ``max_train_rows`` when set, 0 or None: all), the validation split
    expanded to its prefixes (``expand_prefixes``: ~10x more targets from the same held-out users, a
    steadier early-stopping score), and every evaluation split the dataset has."""
    train = ds.train
    if max_train_rows is not None and max_train_rows < 0:
        raise ValueError(f"max_train_rows must be a number of rows (0 or None: all of them), got {max_train_rows}")
    if max_train_rows and len(train) > max_train_rows:
        keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:max_train_rows]
        train = train.subset(keep.sort().values)
    evals = {"test": ds.test, **({"test_all": ds.extra["test_all"]} if "test_all" in ds.extra else {})}
    return BenchData(ds, train, expand_prefixes(ds.val, ds.pad_id), evals)


def bridge_reports(trained: dict, dname: str, n_items: int, table_from: str, seed: int = 0) -> dict[str, dict]:
    """How far apart the item spaces are: ``bridge_report`` (linear map, R² on all and held-out items) from
    the learned-table DreamRec to ``table_from``'s table, and from ``table_from`` to every other encoder.
    ``trained``: {(dataset, model name): trained model}; keys of the result are "dataset: src -> dst"."""
    models = {m: model for (dn, m), model in trained.items() if dn == dname}
    if table_from not in models:
        raise ValueError(f"bridge_reports: no model {table_from!r} trained on {dname!r} (has {sorted(models)})")
    tables = {m: model.item_embeddings.weight[:n_items].detach().cpu() for m, model in models.items()}
    encoders = [m for m in models if not m.startswith("dreamrec")]
    pairs = [(m, table_from) for m in models if m.startswith("dreamrec_") and models[m].cfg.item_source != "frozen"]
    pairs += [(table_from, e) for e in encoders if e != table_from]
    return {f"{dname}: {src} -> {dst}": bridge_report(tables[src], tables[dst], seed=seed)
            for src, dst in pairs if src in tables and dst in tables}


# The DreamRec variants notebook 02 and ``python -m recinterp.models.dreamrec_grid`` train: name -> (model settings over
# the preset's ``dreamrec.model``, training settings over its ``dreamrec.train``).  Every one is early-stopped on
# validation NDCG@10 ranked at its own guidance weight ``w``.  Checkpoint names: ``dreamrec_<variant>``; the best
# frozen-table variant on validation is also saved as ``dreamrec``, the one notebook 05 instantiates.
DREAMREC_VARIANTS = {
    # the authors' set-up (their code: Adam lr 5e-3, no weight decay, an N(0, 1) table learned with the MSE, w = 2)
    "learned": ({"item_source": "learned", "objective": "mse", "w": 2.0}, {"lr": 5e-3, "weight_decay": 0.0}),
    # a trained encoder's table, frozen and rescaled: nothing can collapse
    "frozen": ({"item_source": "frozen", "objective": "mse", "w": 0.0}, {}),
    # the frozen table, trained to rank: cosine error + softmax over the catalogue (PreferDiff's idea, all items negative)
    "frozen_softmax": ({"item_source": "frozen", "objective": "softmax", "lam": 0.5, "tau": 0.1, "w": 0.0}, {}),
    # PreferDiff (ICLR 2025) on the authors' learned table: cosine error + a preference term over in-batch negatives
    "preferdiff": ({"item_source": "learned", "objective": "preferdiff", "lam": 0.4, "w": 0.0}, {}),
    # ADRec's pre-train-then-align: start from the encoder's table, keep training it, rank with the softmax objective
    "pretrained_softmax": ({"item_source": "pretrained", "objective": "softmax", "lam": 0.5, "tau": 0.1, "w": 0.0}, {}),
    # the frozen table with a larger model (what the flat loss of frozen_softmax asks for): SASRec's 2 blocks as
    # the guidance encoder, a 2-layer denoiser
    "frozen_softmax_big": ({"item_source": "frozen", "objective": "softmax", "lam": 0.5, "tau": 0.1, "w": 0.0,
                           "n_blocks": 2, "denoiser": "mlp2"}, {}),
    # a learned table four times wider (PreferDiff's best settings use far wider item embeddings)
    "softmax_d256": ({"item_source": "learned", "objective": "softmax", "lam": 0.5, "tau": 0.1, "w": 0.0, "d": 256}, {}),
}
NEEDS_TABLE = ("frozen", "pretrained")


def dreamrec_variant(variant: str, n_items: int, model_cfg: dict, table_encoder=None) -> tuple[str, DreamRec]:
    """(name, untrained DreamRec) of a variant of ``DREAMREC_VARIANTS`` over ``model_cfg`` (the preset's model
    settings); frozen and pretrained tables come from ``table_encoder`` (a trained encoder)."""
    if variant not in DREAMREC_VARIANTS:
        raise ValueError(f"unknown DreamRec variant {variant!r}: choose one of {sorted(DREAMREC_VARIANTS)}")
    over = DREAMREC_VARIANTS[variant][0]
    needs = over["item_source"] in NEEDS_TABLE
    if needs and table_encoder is None:
        raise ValueError(f"the DreamRec variant {variant!r} reads a trained encoder's item table: pass table_encoder")
    table = table_encoder.item_embeddings.weight.detach().cpu() if needs else None
    cfg = DreamRecConfig(n_items=n_items, **{**model_cfg, **over})
    return f"dreamrec_{variant}", DreamRec(cfg, item_table=table)


def dreamrec_fit_config(variant: str, train_cfg: dict, seed: int = 0) -> FitConfig:
    """The FitConfig of a variant: the preset's ``dreamrec.train`` under the variant's own training settings."""
    return FitConfig(**{**train_cfg, **DREAMREC_VARIANTS[variant][1], "seed": seed})


@dataclass
class Benchmark:
    """Results of every (dataset, model) on every evaluation split, with what it takes to pair them."""

    data: dict[str, BenchData]
    seed: int = 0
    results: dict = field(default_factory=dict)  # (dataset, model) -> the entry written to metrics.json
    per_row: dict = field(default_factory=dict)  # (dataset, model, split) -> {metric: (n,) array}
    histories: list = field(default_factory=list)  # one dict per (dataset, model, epoch): the learning curves
    w_rows: dict = field(default_factory=dict)  # (dataset, model, w, split) -> {metric: (n,) array}
    _vs: dict = field(default_factory=dict, repr=False)  # the paired differences computed so far

    def _evals(self, dname: str) -> dict[str, Split]:
        if dname not in self.data:
            raise ValueError(f"unknown dataset {dname!r}: the benchmark holds {sorted(self.data)}")
        return self.data[dname].evals

    def record(self, dname: str, mname: str, model, fit_result: TrainResult | None = None,
               fit_config: FitConfig | None = None, extra: dict | None = None) -> dict:
        """Full-ranking HR/NDCG@10/20 of ``model`` on each evaluation split (means, n, bootstrap CIs of the
        @10 metrics); with ``fit_result``, its training summary and learning curve.  Returns the entry."""
        entry = {}
        for split_name, split in self._evals(dname).items():
            r = evaluate_rows(model, split, seed=self.seed)
            self.per_row[(dname, mname, split_name)] = r
            entry[split_name] = {**{k: float(v.mean()) for k, v in r.items()}, "n": len(split)}
            entry[f"{split_name}_ci"] = {k: summarize(r[k], seed=self.seed) for k in CI_METRICS}
        self._vs = {k: v for k, v in self._vs.items() if k[0] != dname or mname not in (k[1], k[4])}  # now stale
        if fit_result is not None:
            entry.update({**fit_result.summary(), "train_rows": len(self.data[dname].train),
                          **({"train_config": asdict(fit_config)} if fit_config is not None else {})})
            self.histories += [{"dataset": dname, "model": mname, **h} for h in fit_result.history]
        self.results[(dname, mname)] = {**entry, **(extra or {})}
        return self.results[(dname, mname)]

    def fit(self, dname: str, mname: str, model, fit_config: FitConfig, log=print) -> dict:
        """Train ``model`` on the dataset's rows (``train.fit``: early stopping on the expanded validation
        split, the best epoch's weights kept), then ``record`` it; returns its entry."""
        self._evals(dname)  # an unknown dataset is refused here
        d = self.data[dname]
        if log:
            log(f"--- {dname} / {mname}: {sum(p.numel() for p in model.parameters()):,} parameters")
        res = fit(model, d.train, d.val, fit_config, log=log)
        entry = self.record(dname, mname, model, fit_result=res, fit_config=fit_config)
        if log:
            log("test: " + ", ".join(f"{k} {v:.4f}" for k, v in entry["test"].items() if k != "n"))
        return entry

    def vs(self, dname: str, mname: str, split: str, metric: str = "HR@10", baseline: str = BASELINE) -> dict:
        """Paired bootstrap of ``metric`` (model − baseline) on the same rows: {diff, lo, hi, above}."""
        key = (dname, mname, split, metric, baseline)
        if key not in self._vs:  # a bootstrap over 7,856 rows takes a moment: once per pair
            for m in (mname, baseline):
                if (dname, m, split) not in self.per_row:
                    raise ValueError(f"no per-row results for {dname}/{m}/{split}: record the model first")
            diff, lo, hi = paired_bootstrap_diff(self.per_row[(dname, mname, split)][metric],
                                                 self.per_row[(dname, baseline, split)][metric], seed=self.seed)
            self._vs[key] = {"diff": diff, "lo": lo, "hi": hi, "above": bool(lo > 0)}
        return dict(self._vs[key])

    def table_rows(self) -> list[dict]:
        """The results table: one row per (dataset, split, model), means, HR@10's CI and its paired
        difference with popularity on the same rows."""
        rows = []
        for (dname, mname), entry in self.results.items():
            for split_name in self._evals(dname):
                m = entry[split_name]
                row = {"dataset": dname, "split": split_name, "model": mname, "n": m["n"],
                       **{k: m[k] for k in ("HR@10", "HR@20", "NDCG@10", "NDCG@20")},
                       "HR@10 95% CI": format_ci(entry[f"{split_name}_ci"]["HR@10"])}
                if mname != BASELINE:
                    b = self.vs(dname, mname, split_name)
                    row["HR@10 − pop"] = format_ci({"mean": b["diff"], "lo": b["lo"], "hi": b["hi"]}, signed=True)
                rows.append(row)
        return rows

    def quality_bar(self, dname: str, models) -> dict:
        """{"model/split": {"HR@10_diff", "NDCG@10_diff"}}: is each model above popularity on ``dname``, judged by
        the paired 95% interval of each difference (the bar every encoder should clear on MovieLens)."""
        out = {}
        if dname not in self.data:
            return out
        for mname in models:
            for split_name in self._evals(dname):
                if (dname, mname) in self.results:
                    out[f"{mname}/{split_name}"] = {"HR@10_diff": self.vs(dname, mname, split_name),
                                                    "NDCG@10_diff": self.vs(dname, mname, split_name, "NDCG@10")}
        return out

    def guidance_grid(self, dname: str, mname: str, model, ws) -> dict:
        """DreamRec under each guidance weight ``w`` (same seed, same noise for every w) on every split:
        {(dataset, model, w, split): means and n}; per-row results are kept for ``best_w``."""
        out = {}
        for w in ws:
            for split_name, split in self._evals(dname).items():
                r = evaluate_rows(model, split, seed=self.seed, score_kwargs={"w": w})
                self.w_rows[(dname, mname, w, split_name)] = r
                out[(dname, mname, w, split_name)] = {**{k: float(v.mean()) for k, v in r.items()}, "n": len(split)}
        return out

    def w_grid(self, dname: str, mname: str) -> dict:
        """{str(w): {split: means and n}}: the grid as metrics.json stores it."""
        out = {}
        for (d, m, w, s), r in self.w_rows.items():
            if (d, m) == (dname, mname):
                out.setdefault(str(w), {})[s] = {**{k: float(v.mean()) for k, v in r.items()}, "n": len(r["HR@10"])}
        return out

    def best_w(self, dname: str, mname: str, split: str, default: float, metric: str = "NDCG@10") -> dict:
        """The guidance weight with the highest mean ``metric`` on ``split``, beside ``default``: both means and
        the paired bootstrap of (best − default) on the same rows ({mean, lo, hi})."""
        grid = {w: r[metric] for (d, m, w, s), r in self.w_rows.items() if (d, m, s) == (dname, mname, split)}
        if not grid:
            raise ValueError(f"no guidance grid for {dname}/{mname}/{split}: run guidance_grid first")
        if default not in grid:
            raise ValueError(f"the default w={default} is not in the grid {sorted(grid)}: add it to w_grid")
        best = max(grid, key=lambda w: (float(grid[w].mean()), w == default))  # a tie keeps the default
        diff, lo, hi = paired_bootstrap_diff(grid[best], grid[default], seed=self.seed)
        return {"metric": metric, "best": best, "default": default, "best_mean": float(grid[best].mean()),
                "default_mean": float(grid[default].mean()), "diff": {"mean": diff, "lo": lo, "hi": hi},
                "n": int(len(grid[best]))}

    def w_table(self) -> list[dict]:
        """The guidance grid as rows (dataset, model, w, split, HR/NDCG means, n), for a table or a plot."""
        return [{"dataset": d, "model": m, "w": w, "split": s, **{k: float(v.mean()) for k, v in r.items()},
                 "n": len(r["HR@10"])} for (d, m, w, s), r in self.w_rows.items()]

    def baseline(self, metric: str = "NDCG@10") -> dict:
        """{dataset: {split: popularity's mean ``metric``}} (the grey lines of the guidance plot)."""
        return {d: {s: e[s][metric] for s in self._evals(d)} for (d, m), e in self.results.items() if m == BASELINE}

    def metrics(self, w_default: float | None = None) -> dict:
        """{dataset: dataset_metrics(dataset)} for every dataset: what the notebook's readings take."""
        return {d: self.dataset_metrics(d, w_default) for d in self.data}

    def dataset_metrics(self, dname: str, w_default: float | None = None) -> dict:
        """The block notebook 02 writes for one dataset: sizes, notes, and every model's entry with its paired
        difference with popularity and, for DreamRec, the guidance grid and (when the grid holds the default
        weight ``w_default``) the best w beside the default on each split."""
        d = self.data[dname]
        models_out = {}
        for (dn, mname), entry in self.results.items():
            if dn != dname:
                continue
            e = dict(entry)
            if mname != BASELINE:
                e["vs_popularity_HR@10"] = {s: self.vs(dname, mname, s) for s in d.evals}
            if mname.startswith("dreamrec"):
                if (dname, REFERENCE) in self.results:  # the encoder DreamRec has to beat (the paper's comparison)
                    e[f"vs_{REFERENCE}_HR@10"] = {s: self.vs(dname, mname, s, baseline=REFERENCE) for s in d.evals}
                e["w_grid"] = self.w_grid(dname, mname)
                w_own = e.get("w", w_default)  # the weight this DreamRec ranks with (its config's)
                if any(w == w_own for (dn, m, w, _) in self.w_rows if (dn, m) == (dname, mname)):
                    e["w_best"] = {s: self.best_w(dname, mname, s, w_own) for s in d.evals}
            models_out[mname] = e
        return {"n_items": d.ds.n_items, "n_train": len(d.train), "n_val": len(d.ds.val), "n_val_expanded": len(d.val),
                **{f"n_{k}": len(v) for k, v in d.evals.items()}, "notes": d.ds.notes, "models": models_out}


def fit_dreamrec(bench: Benchmark, dname: str, variants, model_cfg: dict, train_cfg: dict, table_encoder=None,
                 w_grid=(), device="cpu", seed: int = 0, log=print) -> dict[str, DreamRec]:
    """Train each DreamRec variant on ``dname``'s rows (``Benchmark.fit``: early stopping on validation at the
    variant's own w), record its item-norm diagnostics and guidance grid; {name: trained model}."""
    counts = bench.data[dname].popularity().counts
    out = {}
    for v in variants:
        seed_everything(seed)
        name, model = dreamrec_variant(v, bench.data[dname].ds.n_items, model_cfg, table_encoder)
        if log:
            c = model.cfg
            log(f"{name}: table {c.item_source}, objective {c.objective}, d={c.d}, T={c.T}, schedule={c.schedule}, w={c.w}")
        entry = bench.fit(dname, name, model.to(device), dreamrec_fit_config(v, train_cfg, seed), log=log)
        entry.update(variant=v, w=model.cfg.w, objective=model.cfg.objective, item_source=model.cfg.item_source,
                     diagnostics=item_norm_diagnostics(model, counts))
        if w_grid:
            bench.guidance_grid(dname, name, model, w_grid)
        out[name] = model
    return out


def choose_dreamrec(bench: Benchmark, dname: str, models: dict, as_name: str = "dreamrec") -> str | None:
    """The frozen-table variant with the best validation NDCG@10 (task 3 needs a frozen table: its ideal item is
    then in the encoder's own space), recorded again under ``as_name`` with ``chosen_from`` (every frozen
    candidate's validation score).  Chosen on validation only; returns the variant's model name (None: none frozen)."""
    cands = {m: bench.results[(dname, m)]["best_val_NDCG@10"] for m, model in models.items()
             if model.cfg.item_source == "frozen" and (dname, m) in bench.results}
    if not cands:
        return None
    best = max(cands, key=cands.get)
    bench.results[(dname, as_name)] = {**bench.results[(dname, best)], "chosen_from": cands, "chosen": best}
    for (d, m, sp), r in list(bench.per_row.items()):
        if (d, m) == (dname, best):
            bench.per_row[(d, as_name, sp)] = r
    for (d, m, w, sp), r in list(bench.w_rows.items()):
        if (d, m) == (dname, best):
            bench.w_rows[(d, as_name, w, sp)] = r
    return best


def item_norm_diagnostics(model, counts: torch.Tensor) -> dict:
    """The sign of a collapsing learned item table: the mean item-embedding norm and its correlation with
    log popularity (``counts``: (n_items,) training counts).  Targets shrink fastest for frequent items."""
    E = model.item_embeddings.weight[: counts.shape[0]].detach().cpu()
    norms = E.norm(dim=1)
    return {"item_norm_mean": float(norms.mean()),
            "corr_norm_log_popularity": float(np.corrcoef(norms.numpy(), np.log1p(counts.numpy()))[0, 1])}
