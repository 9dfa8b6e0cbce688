"""Figure helpers on hand-made metrics: tables carry the numbers, files are written."""
import matplotlib

matplotlib.use("Agg")

from recinterp import figures as F  # noqa: E402

M02 = {"datasets": {"movielens": {"models": {
    "popularity": {"test": {"HR@10": 0.1, "HR@20": 0.2, "NDCG@10": 0.05, "NDCG@20": 0.07, "n": 95},
                   "test_ci": {"HR@10": {"mean": 0.1, "lo": 0.05, "hi": 0.15}}},
    "sasrec": {"test": {"HR@10": 0.3, "HR@20": 0.4, "NDCG@10": 0.15, "NDCG@20": 0.17, "n": 95},
               "test_ci": {"HR@10": {"mean": 0.3, "lo": 0.2, "hi": 0.4}}}}}}}


def test_recommender_table_and_plot(tmp_path):
    t = F.recommender_table(M02)
    assert list(t.model) == ["popularity", "sasrec"] and t.loc[t.model == "sasrec", "HR@10"].item() == 0.3
    assert t.loc[t.model == "sasrec", "lo"].item() == 0.2
    paths = F.save_figure(F.plot_recommenders(t), "rec", tmp_path, "smoke")
    assert [p.name for p in paths] == ["rec.png", "rec.pdf"] and all(p.stat().st_size > 0 for p in paths)
    assert not list(tmp_path.glob(".*tmp*"))


def test_markdown_table_escapes_and_formats():
    import pandas as pd

    md = F.markdown_table(pd.DataFrame({"a": ["x|y"], "b": [0.12345], "c": [float("nan")]}))
    assert md.splitlines() == ["| a | b | c |", "|---|---|---|", "| x\\|y | 0.123 |  |"]


def test_recovery_and_residual_tables(tmp_path):
    from test_report import result

    from recinterp import report as R
    from recinterp.report import tables as T

    runs = [R.run_block(result(task="recovery"), route="linear10", role="main"),
            R.run_block(result(task="recovery"), route="conv_pool1", role="variant"),
            R.run_block(result(), route="pair_item", role="main"),
            R.run_block(result(), route="pair_item", role="ablation"),
            {**R.run_block(result(hit=(0.2, 0.1, 0.0)), route="pair_item", role="comparison"), "encoder": "caser"},
            {**R.run_block(result(), route="e2e", role="contrast"), "encoder": "caser"}]
    h = F.recovery_hist_table(runs)
    assert set(h.route) == {"linear10"} and set(h.condition) == {"model", "shuffled", "zero", "popularity"}
    assert h.share.sum() == 4.0
    p = F.probe_table(runs, "recovery")
    assert set(p.condition) == {"model", "shuffled", "zero"} and set(p.route) == {"linear10"}
    assert set(p["n"]) == {20}
    r = F.residual_generation_table(runs)
    # the headline encoder and the encoder comparison, not the contrast route
    assert list(r.condition) == ["model", "shuffled", "zero", "popularity"] * 2 and list(r.encoder) == ["sasrec"] * 4 + ["caser"] * 4
    assert r["mean"].tolist() == [0.5, 0.1, 0.0, 0.05, 0.2, 0.1, 0.0, 0.05] and set(r.route) == {"pair_item"}
    for fig in (F.plot_recovery_hist(h), F.plot_probe(p), F.plot_residual_generation(r),
                F.plot_training_curves(T.curve_rows(runs))):
        assert F.save_figure(fig, "x", tmp_path, "smoke")


def test_training_curves_of_a_token_space_only_run_draw_nothing_and_write_no_file(tmp_path, capsys):
    import pandas as pd

    from recinterp.figures import plot_training_curves
    from recinterp.lesson.card import show_figure

    assert plot_training_curves(pd.DataFrame()) is None and plot_training_curves(None) is None
    assert show_figure(plot_training_curves(pd.DataFrame()), tmp_path / "curves.png", "training curves",
                       empty="nothing trained through the LLM") is None
    assert not (tmp_path / "curves.png").exists() and list(tmp_path.iterdir()) == []
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "nothing trained through the LLM" in out  # one printed line


def test_figure_set_saves_each_figure_once_and_remembers_its_files(tmp_path):
    import matplotlib.pyplot as plt
    import pytest

    figs = F.FigureSet(tmp_path / "figs", "cpu")
    paths = figs.save(plt.figure(), "one")
    assert [p.split("/")[-1] for p in paths] == ["one.png", "one.pdf"] and figs.saved == {"one": paths}
    with pytest.raises(ValueError, match="saved already"):
        figs.save(plt.figure(), "one")
