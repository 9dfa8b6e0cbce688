"""recinterp.load_interpreter: a saved adapter asked in plain calls, answering as the evaluation does."""
import re
from pathlib import Path

import pytest
import torch

from recinterp import load_interpreter
from recinterp.data.types import Catalogue, RecDataset, Split
from recinterp.llm import tiny_llm
from recinterp.models import build_encoder, save_checkpoint
from recinterp.tasks.aligned import run_aligned
from recinterp.trained import Reading, TrainedInterpreter

N_ITEMS = 20
TITLES = [f"{chr(65 + i)}{chr(122 - i)} film" for i in range(N_ITEMS)]
EVAL = {"n_cases": None, "n_distractors": 3, "max_new_tokens": 6, "batch_size": 4, "samplers": ["random"]}
ALIGN = {"k": 4, "hidden": 64}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny SASRec saved as notebook 02 saves it, its dataset, the tiny LLM, and a results folder."""
    torch.manual_seed(0)
    enc = build_encoder("sasrec", N_ITEMS, d=8).eval()
    g = torch.Generator().manual_seed(1)
    lens = torch.tensor([10, 3, 2, 5, 4, 6])
    seqs = torch.full((len(lens), 10), N_ITEMS)
    for i, n in enumerate(lens):
        seqs[i, :n] = torch.randperm(N_ITEMS, generator=g)[:n]
    split = Split(seqs, lens, torch.zeros(len(lens), dtype=torch.long))
    ds = RecDataset("movielens", N_ITEMS, split, split, split, Catalogue(TITLES, TITLES))
    results = tmp_path_factory.mktemp("results")
    save_checkpoint(enc, results / "checkpoints", "movielens")
    return enc, ds, tiny_llm(), results


def window(ds, i):
    return ds.test.seqs[i, : int(ds.test.lens[i])].tolist()


@pytest.mark.parametrize("task", ["residual", "recovery"])
def test_answers_equal_the_evaluations_own_answers(world, task):
    """Each window asked through load_interpreter gets exactly the answer the evaluation generated for it."""
    enc, ds, llm, results = world
    res = run_aligned(task, enc, ds, llm, out_dir=results / "04" / task, align_cfg=ALIGN, readout={"epochs": 2},
                      eval=EVAL)
    ri = load_interpreter(res["adapter_dir"], llm=llm, dataset=ds, max_new_tokens=EVAL["max_new_tokens"])
    assert ri.encoder.name == "sasrec" and isinstance(ri, TrainedInterpreter)
    texts = res["eval"]["test"]["generation"]["model"]["texts"]
    assert len(texts) == len(ds.test)  # every window is a case (all have >= 2 items)
    for i in range(len(ds.test)):
        w = window(ds, i)
        r = ri.residual(w[:-1], [TITLES[j] for j in w]) if task == "residual" else ri.recover(w)
        assert isinstance(r, Reading) and r.answer == texts[i]
        assert r.truth == ([TITLES[w[-1]]] if task == "residual" else [TITLES[j] for j in w])
        assert set(r.found) <= set(r.truth)
    # the zero control answers from the prompt alone: the same text for every window
    zero = {ri.recover(window(ds, i), control="zero").answer if task == "recovery"
            else ri.residual(window(ds, i)[:-1], window(ds, i), control="zero").answer for i in range(3)}
    assert len(zero) == 1


def test_name_item_reads_an_embedding_through_the_item_aligner(world):
    enc, ds, llm, results = world
    res = run_aligned("item", enc, ds, llm, out_dir=results / "04" / "item", align_cfg=ALIGN,
                      eval={**EVAL, "n_cases": 2})
    ri = load_interpreter(res["adapter_dir"], llm=llm, dataset=ds)
    emb = ri.item_embedding(TITLES[3])
    assert torch.equal(emb, enc.item_embeddings.weight[3].detach().float())
    r = ri.name_item(emb, true_id=3)
    assert r.truth == [TITLES[3]] and isinstance(r.answer, str)
    assert ri.name_item(emb).truth == []
    with pytest.raises(ValueError, match=r"one embedding of shape \(8,\)"):
        ri.name_item(torch.zeros(2, 8))


def test_clear_errors(world, tmp_path):
    enc, ds, llm, results = world
    res = run_aligned("residual", enc, ds, llm, out_dir=results / "04" / "residual", align_cfg=ALIGN,
                      readout={"epochs": 2}, eval=EVAL)
    adapter_dir = Path(res["adapter_dir"])
    # a folder that is not an adapter names the adapters below it
    with pytest.raises(FileNotFoundError, match=r"not a saved adapter .*adapters below it: \[.*adapter"):
        load_interpreter(results / "04", llm=llm, dataset=ds)
    with pytest.raises(FileNotFoundError, match="no adapter below it either"):
        load_interpreter(tmp_path, llm=llm, dataset=ds)
    # an LLM of another width
    with pytest.raises(ValueError, match="trained for an LLM of width 32.*cannot feed an LLM of width 48"):
        load_interpreter(adapter_dir, llm=tiny_llm(hidden=48), dataset=ds)
    # no checkpoints above the folder, none given
    import shutil
    lone = shutil.copytree(adapter_dir, tmp_path / "lone")
    with pytest.raises(FileNotFoundError, match=r"no checkpoints/movielens/sasrec above .* pass checkpoints="):
        load_interpreter(lone, llm=llm, dataset=ds)
    assert load_interpreter(lone, checkpoints=results / "checkpoints", llm=llm, dataset=ds).task.name == "residual"
    ri = load_interpreter(adapter_dir, llm=llm, dataset=ds)
    # unknown titles come back with the nearest catalogue titles
    with pytest.raises(ValueError, match=re.escape(f"unknown title 'Az flim'") + ".*Nearest: \\['Az film'"):
        ri.residual(["Az flim"], ["Az flim", TITLES[1]])
    with pytest.raises(ValueError, match=r"item id 99 is outside the catalogue \(0..19\)"):
        ri.residual([99], [99, 1])
    with pytest.raises(TypeError, match="a list of titles or item ids"):
        ri.residual("Az film", ["Az film", TITLES[1]])
    with pytest.raises(ValueError, match=r"'after' must be 'before' \+ \[item\]"):
        ri.residual([1, 2], [1, 3, 4])
    with pytest.raises(ValueError, match="trained for task 'residual': ask it with .residual()"):
        ri.recover([1, 2, 3])
    with pytest.raises(ValueError, match="at most 10"):
        ri.residual(list(range(10)), list(range(11)))
    # a dataset that does not match the encoder
    small = RecDataset("movielens", 5, ds.test, ds.test, ds.test, Catalogue(TITLES[:5], TITLES[:5]))
    with pytest.raises(ValueError, match="5 titles for an encoder of 20 items"):
        load_interpreter(adapter_dir, llm=llm, dataset=small)


@pytest.mark.notebook
def test_readme_snippet_runs_on_a_smoke_adapter(smoke_results):
    """The README's five lines, as written, on notebook 04's saved SASRec adapter of this session's smoke run."""
    from conftest import run_notebook

    adapter = smoke_results / "04_sequence_residual" / "runs" / "movielens" / "sasrec" / "aligned" / "adapter"
    if not (adapter / "adapter_config.json").exists():
        for name in ("01_data_prep", "02_recommenders", "04_sequence_residual"):
            if not (smoke_results / name / "metrics.json").exists():
                run_notebook(name, smoke_results)
    readme = (REPO / "README.md").read_text()
    snippet = re.search(r"<!-- load_interpreter:begin -->\n```python\n(.*?)```", readme, re.S).group(1)
    code = snippet.replace("results/cpu/", f"{smoke_results}/")
    env: dict = {}
    exec(compile(code, "README.md", "exec"), env)
    ri, reading = env["ri"], env["reading"]
    assert ri.task.name == "residual" and ri.encoder.name == "sasrec" and ri.llm.hidden_size == 576
    assert isinstance(reading, Reading) and reading.truth == [env["history"][-1]] and reading.answer.strip()
