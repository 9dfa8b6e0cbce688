"""recinterp.lesson.card: the run card every notebook opens with, figures shown with alt text (none without
data), and the notes that say what a preset ran.  Checked on what the functions return and write."""
import json
import os

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from recinterp.lesson import card as K  # noqa: E402


def test_run_card_has_every_field_non_empty(capsys):
    c = K.run_card("classroom", seed=0, device="auto")
    assert K.check_card(c) == [] and set(K.CARD_FIELDS) <= set(c)
    assert c["preset"] == "classroom" and c["purpose"] == K.PURPOSE["classroom"]
    assert c["cores"] == (os.cpu_count() or 1) and c["torch_threads"] >= 1 and c["device"] in ("cpu", "cuda")
    assert c["seed"] == 0 and c["time_utc"].endswith("+00:00")
    json.dumps(c)  # goes into metrics.json as it is
    out = capsys.readouterr().out
    assert out.startswith("Run card:") and c["commit"] in out and c["cpu"] in out


def test_run_card_of_an_own_preset_without_seed_and_outside_git(monkeypatch):
    import recinterp.reproduce as rep

    monkeypatch.setattr(rep, "source_commit", lambda: None)
    c = K.run_card("/tmp/my_preset.json", device="cpu", show=False)
    assert c["commit"] == "unknown" and "of your own" in c["purpose"] and K.check_card(c) == []
    monkeypatch.setattr(rep, "source_commit", lambda: 1 / 0)  # never fails a notebook
    assert K.run_card("smoke", seed=3, show=False)["commit"] == "unknown"


def test_check_card_names_missing_and_empty_fields():
    c = K.run_card("smoke", seed=1, device="cpu", show=False)
    assert K.check_card({**c, "cpu": " ", "seed": None}) == ["cpu", "seed"]
    assert K.check_card(None) == list(K.CARD_FIELDS)


def test_resolve_device():
    assert K.resolve_device("cuda:1") == "cuda:1" and K.resolve_device("auto") in ("cpu", "cuda")


def test_show_figure_saves_shows_with_alt_and_skips_none(tmp_path, capsys, monkeypatch):
    import matplotlib.pyplot as plt
    import IPython.display as D

    shown = []
    monkeypatch.setattr(D, "display", lambda *objs, **kw: shown.extend(objs))
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [3, 1, 2])
    path = K.show_figure(fig, tmp_path / "a" / "f.png", "a line against its index")
    assert path.exists() and path.read_bytes()[:4] == b"\x89PNG" and not plt.fignum_exists(fig.number)
    (img,) = shown
    assert img.alt == "a line against its index" and img.data == path.read_bytes()
    assert "Figure: a line against its index." in capsys.readouterr().out
    assert K.show_figure(None, tmp_path / "g.png", "nothing") is None and not (tmp_path / "g.png").exists()
    assert capsys.readouterr().out.strip().startswith("No figure drawn (nothing)")
    with pytest.raises(ValueError, match="alt text"):
        K.show_figure(plt.figure(), tmp_path / "h.png")


def test_what_ran_follows_the_preset():
    off = K.what_ran("recovery", "classroom")
    assert "**off**" in off and "`aligned`" in off
    on = K.what_ran("residual", "smoke")
    assert "**off**" not in on and "steps per adapter" in on and "variants" in on
    rec = K.what_ran("recommenders", "classroom")
    assert "not trained here" in rec and "GRU4Rec" in rec
    assert "not trained here" not in K.what_ran("recommenders", "cpu")
    assert "trained no end-to-end adapter" in K.what_ran("instantiation", "classroom")


def test_paper_route_names_the_gpu_command_and_what_changes():
    from recinterp.plan import resolve_preset

    text = K.paper_route("residual", "classroom")
    llm = resolve_preset("gpu", "residual")["llm"]
    assert f'make reproduce PRESET=gpu TORCH_SPEC="torch==2.6.0" PARAMS="llm={llm} device=cuda"' in text
    assert "off here, is trained" in text and "every test case" in text
    assert "off here" not in K.paper_route("residual", "cpu")
    assert "here `tiny`" in K.paper_route("recovery", "gpu", llm="tiny")  # the notebook's LLM parameter counts
    assert "this run uses the gpu preset's settings" in K.paper_route("recovery", "gpu")
