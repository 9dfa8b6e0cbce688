"""The grid runner: one task of one preset over datasets x encoders x routes, as notebooks 03 and 04 run it.

    grid = Grid.load("recovery", "smoke", output_dir="results/smoke/03_sequence_recovery",
                     checkpoint_dir="results/smoke/checkpoints")
    runs = grid.recovery()                       # every end-to-end adapter, then the aligned route
    tables.ci_table(tables.probe_rows(blocks(runs)), ["dataset", "encoder", "route", "sampler"])
    runs[0].cases.answers                        # the evaluated cases, as the evaluation read them

Each run goes through ``recinterp.tasks.run_task`` (end to end) or ``run_aligned`` (token space)
with the preset's settings for its dataset, encoder and role (``recinterp.plan.resolve_preset``),
its adapter is saved under ``<checkpoint_dir>/adapters/<dataset>/<encoder>/<name>`` (where
notebook 05 and ``python -m recinterp.tasks`` find it), and it comes back as a :class:`Run`:
the report block (``recinterp.report.run_block``), the result and the evaluated cases.
``recinterp.plan`` names the routes and gives their roles; nothing here re-derives a cache path.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from recinterp import report as R
from recinterp.adapter import load_adapter
from recinterp.cases import Cases
from recinterp.config import STRUCTURED_TEMPERATURE, resolve
from recinterp.data import dataset_sources, load_dataset
from recinterp.llm import load_llm
from recinterp.models import load_checkpoint
from recinterp.plan import adapter_name, encoder_role, resolve_preset, route_roles, variant_name
from recinterp.tasks import run_task
from recinterp.tasks.aligned import finetune_aligned, run_aligned


@dataclass
class Run:
    """One run of the grid: its report block, what run_task / run_aligned returned, the evaluated cases."""

    block: R.RunBlock
    result: dict = field(repr=False)
    split: str | None = None  # which evaluation the block reports (item alignment has two)

    @property
    def eval(self) -> dict | None:
        return (self.result.get("eval") or {}).get(self.split)

    @property
    def cases(self) -> Cases | None:
        return (self.result.get("cases") or {}).get(self.split)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.block["dataset"], self.block["encoder"], self.block["route"]


def blocks(*groups: list[Run]) -> list[R.RunBlock]:
    """The report blocks of runs, group after group, in run order."""
    return [r.block for g in groups for r in g]


@dataclass
class Grid:
    """One task section of a preset over its datasets and encoders, with the LLM loaded once."""

    task: str  # the preset section: recovery | residual
    preset: str
    data: dict  # dataset name -> RecDataset
    encoders: dict  # (dataset, encoder) -> trained encoder
    llm: object
    out: Path  # the notebook's output folder; runs under out/runs/<dataset>/<encoder>/<route>
    checkpoints: Path  # where notebook 02 saved the encoders; adapters go to checkpoints/adapters
    seed: int = 0
    llm_name: str = ""
    log: object = print
    items: dict = field(default_factory=dict)  # (dataset, encoder) -> the item stage's run (residual)
    item_runs: list = field(default_factory=list)  # the item stage's runs, in the order they were made

    def __post_init__(self):
        self.cfg = resolve_preset(self.preset, self.task)
        self.roles = route_roles(self.cfg)
        self.aligned_cfg = self.cfg.get("aligned") or {}

    @classmethod
    def load(cls, task: str, preset: str, *, output_dir, checkpoint_dir, datasets: str = "", llm: str = "",
             device: str = "auto", seed: int = 0, log=print) -> "Grid":
        """The preset's datasets (or the comma-separated subset ``datasets``), their encoders from
        ``checkpoint_dir`` and the LLM (the preset's, or ``llm``)."""
        cfg = resolve_preset(preset, task)
        sources = dataset_sources(datasets, cfg["datasets"])  # name -> what load_dataset takes (a name or a path)
        llm_name = llm or cfg["llm"]
        out, ckpt = resolve(output_dir), resolve(checkpoint_dir)
        out.mkdir(parents=True, exist_ok=True)
        lm = load_llm(llm_name, device=device, verbose=True)
        data = {d: load_dataset(src) for d, src in sources.items()}
        encs = {(d, e): load_checkpoint(ckpt, d, e) for d in data for e in cfg["encoders"]}
        return cls(task, preset, data, encs, lm, out, ckpt, seed, llm_name, log)

    # -- settings ---------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.data)

    @property
    def encoder_names(self) -> list[str]:
        return list(self.cfg["encoders"])

    def settings(self, dataset: str, encoder: str | None = None, role: str = "main") -> dict:
        """The preset's settings for one run (``resolve_preset`` with the run's dataset, encoder, role)."""
        return resolve_preset(self.preset, self.task, dataset=dataset, encoder=encoder, role=role)

    def folder(self, dataset: str, encoder: str, route: str) -> Path:
        return self.out / "runs" / dataset / encoder / route

    def save(self, adapter_dir, dataset: str, encoder: str, name: str) -> str:
        saved = self.checkpoints / "adapters" / dataset / encoder / name
        load_adapter(adapter_dir).save(saved)
        return str(saved)

    def metrics(self, runs: list[R.RunBlock], **info) -> R.TaskMetrics:
        """The notebook's metrics.json: its runs and what produced them."""
        return R.task_metrics(self.task, runs, preset=self.preset, llm=self.llm.describe(), llm_name=self.llm_name,
                              seed=self.seed, encoders=self.encoder_names,
                              headline_route=self.cfg.get("headline_route", "end_to_end"), **info)

    # -- the two routes, one run each -----------------------------------------------------------
    def end_to_end(self, dataset: str, encoder: str, *, route: str, role: str, save_as: str, task: str | None = None,
                   adapter: dict | None = None, train: dict, eval: dict | None, extra: dict | None = None,
                   **kw) -> list[Run]:
        """``run_task`` in ``folder(dataset, encoder, route)``; the adapter saved as ``save_as``; one Run per
        evaluated split (one with no evaluation)."""
        t0 = time.perf_counter()
        r = run_task(task or self.task, self.encoders[(dataset, encoder)], self.data[dataset], self.llm,
                     out_dir=self.folder(dataset, encoder, route), adapter=adapter or self.cfg.get("adapter"),
                     train=train, eval=eval, seed=self.seed, progress=False, **kw)
        saved = self.save(r["adapter_dir"], dataset, encoder, save_as)
        h = r["train"]
        self.log(f"{dataset}/{encoder}/{route}: {h['steps']} steps, {h['seconds_total']:.0f} s training "
                 f"({h['seconds_total'] / max(h['steps'], 1):.1f} s/step), {time.perf_counter() - t0:.0f} s with "
                 f"evaluation -> {saved}")
        return [Run(R.run_block(r, route=route, role=role, split=sp, saved_to=saved, extra=extra), r, sp)
                for sp in (r.get("eval") or {None: None})]

    def aligned(self, dataset: str, encoder: str, *, role: str, task: str | None = None, eval: dict | None,
                folder: Path | None = None, **kw) -> tuple[list[Run], dict]:
        """``run_aligned`` with the section's ``aligned`` settings; one Run per evaluated split."""
        a = self.aligned_cfg
        folder = folder or self.folder(dataset, encoder, "aligned")
        r = run_aligned(task or self.task, self.encoders[(dataset, encoder)], self.data[dataset], self.llm,
                        out_dir=folder, align_cfg=a.get("align"), eval=eval, seed=self.seed, **kw)
        return [Run(R.run_block(r, route="aligned", role=role, split=sp,
                                extra={"adapter_side": r["eval"][sp]["adapter_side"], "fit": r["fit"]}), r, sp)
                for sp in r["eval"]], r

    def structured(self, dataset: str, encoder: str, role: str, save_as: str) -> Run:
        """The section's aligned route (readout + catalogue aligner) on one dataset and encoder, saved."""
        a, t0 = self.aligned_cfg, time.perf_counter()
        (run,), r = self.aligned(dataset, encoder, role=role, eval=self.settings(dataset, encoder)["eval"],
                                 readout=a.get("readout"), temperature=a.get("temperature", STRUCTURED_TEMPERATURE),
                                 catalogue_dir=self.folder(dataset, encoder, "aligned"))
        run.block["saved_to"] = self.save(r["adapter_dir"], dataset, encoder, save_as)
        fit, side = r["fit"], run.eval["adapter_side"]
        self.log(f"{dataset}/{encoder}/aligned: fitted in {fit['seconds_total']:.0f} s (readout top-1 "
                 f"{fit['readout']['top1_train']:.3f} on its training pairs, {side['readout_top1']:.3f} on the "
                 f"evaluated cases), {time.perf_counter() - t0:.0f} s with evaluation -> {run.block['saved_to']}")
        return run

    # -- task 1 --------------------------------------------------------------------------------
    def recovery(self) -> list[Run]:
        """Task 1 over the whole grid: every end-to-end adapter, then the aligned route."""
        return self.recovery_end_to_end() + self.recovery_aligned()

    @property
    def end_to_end_on(self) -> bool:
        """Does the preset train the paper's route at all (``"end_to_end": false``: the token-space route alone)?"""
        return self.cfg.get("end_to_end", True) is not False

    def recovery_end_to_end(self) -> list[Run]:
        """The main adapter on every dataset and encoder, the variants on the preset's ``variant_datasets``."""
        if not self.end_to_end_on:
            return []
        main, variants = self.cfg["adapters"][0], self.cfg["adapters"][1:]
        on = self.cfg.get("variant_datasets", self.names)
        runs = []
        for d in self.names:
            for e in self.encoder_names:
                for a in [main] + (variants if d in on else []):
                    is_main, name = a is main, adapter_name(a)
                    s = self.settings(d, role="main" if is_main else "variant")
                    runs += self.end_to_end(d, e, route=name, role=self.roles["end_to_end"] if is_main else "variant",
                                            save_as="recovery" if is_main else f"recovery_{name}", adapter=a,
                                            train=s["train"], eval=s["eval"],
                                            max_train_cases=self.cfg.get("max_train_cases"),
                                            readout=self.cfg.get("readout") if is_main else None)
        return runs

    def recovery_aligned(self) -> list[Run]:
        """The aligned route (per-position readout + catalogue aligner) on every dataset and encoder, when enabled."""
        if not self.aligned_cfg.get("enabled"):
            return []
        return [self.structured(d, e, self.roles["aligned"], "recovery_aligned")
                for d in self.names for e in self.encoder_names]

    # -- task 2 --------------------------------------------------------------------------------
    def item_adapter(self, dataset: str, encoder: str, evaluate: bool = False) -> dict:
        """The item stage's run (trained once per dataset and encoder; its blocks join ``item_runs``)."""
        if (dataset, encoder) not in self.items:
            st = self.cfg["item_stage"]
            runs = self.end_to_end(dataset, encoder, route="item", role="item", save_as="item", task="item",
                                   train=st["train"], eval=st.get("eval") if evaluate else None,
                                   max_train_cases=st.get("n_items"))
            self.item_runs += runs
            self.items[(dataset, encoder)] = runs[0].result
        return self.items[(dataset, encoder)]

    def item_stage(self) -> list[Run]:
        """The item stage on the ablation's dataset and encoder, evaluated, when a variant starts from it."""
        st, abl = self.cfg["item_stage"], self.cfg["ablation"]
        if self.end_to_end_on and st["enabled"] and any(v.get("init") == "item" for v in abl["variants"]) and abl["dataset"] in self.names:
            self.item_adapter(abl["dataset"], abl["encoder"], evaluate=bool(st.get("eval")))
        return list(self.item_runs)

    def ablation(self) -> list[Run]:
        """Every input / start variant on the ablation's dataset and encoder, with the ablation's budget."""
        abl = self.cfg["ablation"]
        d, e = abl["dataset"], abl["encoder"]
        if d not in self.names or not self.end_to_end_on:
            return []
        runs = []
        for v in abl["variants"]:
            name, from_item = variant_name(v), v.get("init") == "item"
            init = self.item_adapter(d, e)["adapter_dir"] if from_item else None
            runs += self.end_to_end(d, e, route=name, role="ablation", save_as=f"residual_{name}",
                                    input=v["input"], train=abl["train"], eval=abl["eval"], init_adapter=init,
                                    extra={"init": v.get("init"), "steps_at_eval": abl["train"]["max_steps"],
                                           "item_steps": self.items[(d, e)]["train"]["steps"] if from_item else 0})
        return runs

    def best_variant(self, ablation: list[Run]) -> tuple[dict, str]:
        """The variant with the best validation Hit@1 (ties: MRR; ``report.pick_best``), marked ``chosen`` in the
        ablation's blocks, with its name; the preset's default variant when no ablation ran.  -> (variant, note)"""
        st, abl = self.cfg["item_stage"], self.cfg["ablation"]
        default = {"input": self.cfg["main_input"], "init": "item" if st["enabled"] else None}
        best, note = R.pick_best(blocks(ablation))
        best = best or variant_name(default)
        v = next((v for v in abl["variants"] if variant_name(v) == best), default)
        for r in ablation:
            r.block["extra"]["chosen"] = r.block["route"] == best
        return {"name": best, **v}, note

    def residual(self, variant: dict) -> list[Run]:
        """The chosen variant end to end on every dataset and end-to-end encoder (the preset's budget)."""
        st, runs = self.cfg["item_stage"], []
        if not self.end_to_end_on:
            return runs
        for d in self.names:
            for e in self.cfg.get("end_to_end_encoders") or self.encoder_names:
                s = self.settings(d, e)
                init = self.item_adapter(d, e)["adapter_dir"] if variant.get("init") == "item" and st["enabled"] else None
                runs += self.end_to_end(d, e, route=variant["name"], role=encoder_role(self.roles["end_to_end"], e,
                                                                                      self.encoder_names),
                                        save_as="residual", input=variant["input"], train=s["train"], eval=s["eval"],
                                        init_adapter=init, readout=self.cfg.get("readout"))
        return runs

    def residual_aligned(self) -> tuple[list[Run], list[Run]]:
        """The aligned route on every dataset and encoder: the item aligner (on the training share of the
        catalogue, evaluated on it and on the held-out items) and the residual adapter.  -> (item runs, residual runs)"""
        items, runs = [], []
        if not self.aligned_cfg.get("enabled"):
            return items, runs
        for d in self.names:
            for e in self.encoder_names:
                folder = self.folder(d, e, "aligned")
                it, _ = self.aligned(d, e, role="item", task="item", folder=folder / "item",
                                     eval=self.aligned_cfg.get("item_eval") or self.cfg["item_stage"].get("eval"))
                items += it
                runs.append(self.structured(d, e, encoder_role(self.roles["aligned"], e, self.encoder_names),
                                            "residual_aligned"))
                self.save(folder / "aligner", d, e, "aligner")
        return items, runs

    def saved_residual(self, variant: dict, runs: list[R.RunBlock]) -> dict:
        """Per dataset: which end-to-end variant is saved as ``residual`` and how to rebuild its features (notebook 05
        reads ``input``, ``n_tokens``, ``positions`` to call ``recinterp.tasks.residual.residual_features``)."""
        a = self.cfg["adapter"]
        return {d: {"variant": variant["name"], "input": variant["input"], "init": variant.get("init"),
                    "n_tokens": a["n_tokens"], "kind": a["kind"], "positions": a.get("positions", "last"), "name": "residual",
                    "paths": {b["encoder"]: b["saved_to"] for b in R.select(runs, dataset=d, route=variant["name"])}}
                for d in self.names}

    def finetune(self, aligned: list[Run]) -> tuple[list[Run], dict]:
        """The aligned adapter trained on with the paper's loss (the section's ``aligned.finetune``), on the first
        encoder of its datasets, paired case by case with the aligned evaluation.  -> (runs, dataset -> reading -> change)"""
        ft, e = self.aligned_cfg.get("finetune") or {}, self.encoder_names[0]
        runs, change = [], {}
        if not (self.aligned_cfg.get("enabled") and ft.get("datasets")):
            return runs, change
        before = {r.key[:2]: r.eval for r in aligned}
        for d in [d for d in self.names if d in ft["datasets"]]:
            t0 = time.perf_counter()
            r = finetune_aligned(self.task, self.encoders[(d, e)], self.data[d], self.llm,
                                 adapter_dir=self.folder(d, e, "aligned") / "adapter",
                                 out_dir=self.folder(d, e, "aligned_finetuned"), train=ft.get("train"),
                                 eval=self.settings(d, e)["eval"], seed=self.seed)
            self.save(r["adapter_dir"], d, e, "residual_aligned_finetuned")
            runs.append(Run(R.run_block(r, route="aligned_finetuned", role="variant"), r,
                            next(iter(r["eval"]))))
            change[d] = R.before_after(before[(d, e)], runs[-1].eval, seed=self.seed)
            h = r["train"]
            self.log(f"{d}/{e}: {h['steps']} steps from the aligned start, {h['seconds_total']:.0f} s training, "
                     f"{time.perf_counter() - t0:.0f} s with evaluation")
        return runs, change
