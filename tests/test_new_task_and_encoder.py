"""A new task and a new encoder need no edit to the library (issue 17's done-when).

In test code only: a toy task ("name the first item of the window") and a toy fourth encoder
(a running mean of the item embeddings) are registered, run through the end-to-end and the
aligned routes on the tiny LLM, and the toy encoder shows up in task 2's per-encoder table and figure.
"""
from dataclasses import dataclass

import matplotlib
import pytest
import torch
import torch.nn as nn

from recinterp import figures, report
from recinterp.report import tables
from recinterp import prompts as P
from recinterp.cases import TASKS, Cases, Task, get_split, hidden_states, register_task
from recinterp.data.types import Catalogue, RecDataset, Split
from recinterp.llm import tiny_llm
from recinterp.models import ENCODERS, EncoderConfig, SeqEncoder, build_encoder, register_encoder
from recinterp.plan import encoder_role
from recinterp.tasks import run_task
from recinterp.tasks.aligned import run_aligned

matplotlib.use("Agg")
N_ITEMS = 20
TITLES = [f"{chr(65 + i)}{chr(122 - i)} film" for i in range(N_ITEMS)]
TRAIN = {"batch_size": 4, "max_steps": 2, "warmup_steps": 1, "ckpt_every": 0}
EVAL = {"n_cases": 6, "n_distractors": 3, "max_new_tokens": 3, "batch_size": 4}
ALIGN = {"k": 4, "hidden": 64}


class FirstItemTask(Task):
    """Name the first item of the window, from the encoder's state after it."""

    name, inputs = "first_item", ("first",)
    eval_defaults = {"max_new_tokens": 4}
    PROMPTS = P.TaskPrompts("first_item", ("seq",), train=("A history <seq>. Which {noun} came first?",),
                            eval=("The first {noun} of the history <seq>?",))

    def prompts(self, input):
        return self.PROMPTS

    def build(self, enc, ds, split, input, positions="last", seed=0, held_out_items=0.1):
        sp, used = get_split(ds, split)
        seqs, lens = sp.seqs.long(), sp.lens.long()
        h = hidden_states(enc, seqs, lens)[:, 0]  # (N, d): the state after the first item
        window = torch.where(torch.arange(seqs.shape[1])[None] < lens[:, None], seqs, torch.full_like(seqs, -1))
        return Cases(self.name, input, h[:, None, None].clone(), seqs[:, :1].clone(), window, {"h_first": h},
                     {"dataset": ds.name, "encoder": enc.name, "n_items": enc.n_items, "split": used})

    def readout_inputs(self, cases):
        return cases.states["h_first"]

    def readout_pairs(self, cases):
        return cases.features[:, 0, 0], cases.answers[:, 0]

    def encoder_scores(self, item_embeddings, cases, candidates):
        return (item_embeddings.detach().float()[candidates] * cases.states["h_first"][:, None]).sum(-1)


@dataclass
class MeanPoolConfig(EncoderConfig):
    pass


class MeanPool(SeqEncoder):
    """The running mean of the item embeddings, a linear map and a LayerNorm (causal by construction)."""

    name = "meanpool"

    def __init__(self, cfg: MeanPoolConfig):
        super().__init__(cfg)
        self.proj, self.ln = nn.Linear(cfg.d, cfg.d), nn.LayerNorm(cfg.d)
        self._init_weights()

    def _encode(self, x, valid):
        n = valid.long().cumsum(1).clamp(min=1)[..., None]  # (B, L, 1) items so far
        return self.ln(self.proj(x.cumsum(1) / n))


@pytest.fixture(scope="module")
def world():
    register_task(FirstItemTask())
    register_encoder("meanpool", MeanPool, MeanPoolConfig)
    torch.manual_seed(0)
    encs = {e: build_encoder(e, N_ITEMS, d=8).eval() for e in ("sasrec", "meanpool")}
    g = torch.Generator().manual_seed(1)
    lens = torch.tensor([10, 3, 2, 2, 10, 10, 5, 4, 10, 6, 7, 8])
    seqs = torch.full((len(lens), 10), N_ITEMS)
    for i, n in enumerate(lens):
        seqs[i, :n] = torch.randperm(N_ITEMS, generator=g)[:n]
    split = Split(seqs, lens, torch.zeros(len(lens), dtype=torch.long))
    yield encs, RecDataset("movielens", N_ITEMS, split, split, split, Catalogue(TITLES, TITLES)), tiny_llm()
    TASKS.pop("first_item")
    ENCODERS.pop("meanpool")


def test_a_task_registered_in_test_code_runs_end_to_end_and_aligned(world, tmp_path):
    encs, ds, llm = world
    for name, enc in encs.items():
        e2e = run_task("first_item", enc, ds, llm, out_dir=tmp_path / name / "e2e", adapter={"n_tokens": 2},
                       train=TRAIN, eval=EVAL, readout={"epochs": 2})
        al = run_aligned("first_item", enc, ds, llm, out_dir=tmp_path / name / "aligned", align_cfg=ALIGN,
                         readout={"epochs": 200, "lr": 0.05}, eval=EVAL)
        for r, route in ((e2e, "linear2"), (al, "aligned")):
            assert (r["task"], r["input"], r["encoder"]) == ("first_item", "first", name)
            ev = r["eval"]["test"]
            cases = r["cases"]["test"]
            assert ev["n"] == len(cases) == 6 and cases.task == "first_item"
            assert set(cases.answers[:, 0].tolist()) <= set(ds.test.seqs[:, 0].tolist())  # first items only
            b = report.run_block(r, route=route, role="main")
            assert b["generation"]["metric"] == "hit" and b["generation"]["n"] == 6
            assert set(b["probe"]) == {"random", "popular"} and b["signal"]
            assert {"model", "shuffled", "zero", "popularity", "encoder"} <= set(b["probe"]["random"]["conditions"])
        assert "readout" in e2e["eval"]["test"]["ranking"]["random"]  # the task's readout inputs feed the reference
        # the aligned readout memorises the 12 training windows' first items; the evaluated 6 are among them
        assert al["fit"]["readout"]["top1_train"] == 1.0
        assert al["eval"]["test"]["adapter_side"] == {"readout_top1": 1.0, "n": 6, "per": "case"}


def test_a_registered_encoder_appears_in_the_task_2_table_and_figure(world, tmp_path):
    encs, ds, llm = world
    order = list(encs)  # the headline encoder first, then the comparison
    runs = []
    for name, enc in encs.items():
        r = run_task("residual", enc, ds, llm, out_dir=tmp_path / name / "e2e", input="pair", adapter={"n_tokens": 2},
                     train=TRAIN, eval=EVAL)
        runs.append(report.run_block(r, route="pair_scratch", role=encoder_role("main", name, order)))
        al = run_aligned("residual", enc, ds, llm, out_dir=tmp_path / name / "aligned", align_cfg=ALIGN,
                         readout={"epochs": 2}, eval=EVAL)
        runs.append(report.run_block(al, route="aligned", role=encoder_role("contrast", name, order)))
    assert [b["role"] for b in runs] == ["main", "contrast", "comparison", "contrast"]
    table = figures.residual_generation_table(runs)
    assert list(dict.fromkeys(table.encoder)) == order and set(table.condition) >= {"model", "shuffled", "zero"}
    fig = figures.plot_residual_generation(table)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == order
    per_encoder = tables.headline_table(runs, roles=("main", "comparison"))
    assert set(per_encoder.encoder) == set(order)
