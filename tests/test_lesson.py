"""The phrases the notebooks' generated prose is made of: hand-computed cases, bad input."""
import pytest

from recinterp.lesson import Summary, against, excludes_zero


def test_excludes_zero_three_ways():
    assert excludes_zero({"mean": 0.2, "lo": 0.1, "hi": 0.3}) is True
    assert excludes_zero({"mean": -0.2, "lo": -0.3, "hi": -0.1}) is False
    assert excludes_zero({"mean": 0.05, "lo": -0.01, "hi": 0.1}) is None
    assert excludes_zero(None) is None


def test_against_says_which_side_with_the_interval():
    assert against({"mean": 0.15, "lo": 0.1, "hi": 0.2}, "shuffled") == \
        "above the shuffled control by +0.150 [+0.100, +0.200] (the interval excludes 0)"
    assert "covers 0" in against({"mean": 0.0, "lo": -0.1, "hi": 0.1}, "zero")
    assert against(None, "zero") == "no paired difference with the zero control was measured"


def test_summary_records_its_points_and_refuses_to_be_empty():
    s = Summary("data").add("  MovieLens has 10 items. ").add("")
    assert s.markdown() == "## Summary\n\n- MovieLens has 10 items.\n"
    m = s.record({"preset": "x"})
    assert m["summary"] == {"notebook": "data", "points": ["MovieLens has 10 items."]}
    with pytest.raises(ValueError, match="no points"):
        Summary("recovery").record({})
