"""What a notebook says about its own results, generated from them: readings, summaries, exercises.

The notebooks teach: after every table a paragraph says what to look at and what the reading
means against its controls, and every notebook ends with a Summary and Exercises.  A sentence
that quotes a number is written here, from this run's values, never typed into a notebook's
prose (a typed number goes stale the first time a preset changes).

    s = Summary("recovery")
    s.add(f"SASRec's states name {format_ci(gen)} titles per window ...")
    s.record(metrics)          # metrics["summary"] = {"notebook": ..., "points": [...]}
    s                          # renders as Markdown in the notebook

One file per job: this one holds the phrases every notebook uses (a reading against its
controls, a CI, a count); ``lesson.worked`` builds the worked case of a task notebook (one test
window through both routes); ``lesson.read`` the how-to-read paragraphs of tasks 1-3's tables.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from recinterp.metrics import ci_values, format_ci


@dataclass
class Summary:
    """A notebook's Summary: points that each state one result of this run, with its numbers."""

    notebook: str
    points: list[str] = field(default_factory=list)
    title: str = "Summary"

    def add(self, point: str) -> "Summary":
        point = point.strip()
        if point:
            self.points.append(point)
        return self

    def bullets(self) -> str:
        """The points as a Markdown list (what the notebook shows under its own "## Summary" heading)."""
        if not self.points:
            raise ValueError(f"the summary of {self.notebook} has no points: add at least one result of this run")
        return "\n".join(f"- {p}" for p in self.points) + "\n"

    def markdown(self) -> str:
        """The Summary as a section of its own (heading + points), e.g. for ``figures/summary.md``."""
        return f"## {self.title}\n\n" + self.bullets()

    def _repr_markdown_(self) -> str:
        return self.bullets()  # the notebook's Markdown cell above it carries the heading

    def record(self, metrics: dict) -> dict:
        """Write the points into a notebook's metrics (what the notebook tests read); returns ``metrics``."""
        self.markdown()  # raises when empty
        metrics["summary"] = {"notebook": self.notebook, "points": list(self.points)}
        return metrics


def ci(s, digits: int = 3) -> str:
    """A {mean, lo, hi} summary as 'mean [lo, hi]' (the one CI formatter, ``metrics.format_ci``)."""
    return format_ci(s, digits)


def excludes_zero(diff) -> bool | None:
    """Does a paired difference's 95% CI lie above 0 (True), below 0 (False)?  None: it covers 0 (or is missing)."""
    mean, lo, hi = ci_values(diff)
    if lo != lo:
        return None
    return True if lo > 0 else False if hi < 0 else None


def against(diff, control: str, digits: int = 3) -> str:
    """One clause on a paired difference: 'above the shuffled control by +0.150 [0.100, 0.200]' / 'not clear of ...'."""
    side = excludes_zero(diff)
    d = format_ci(diff, digits, signed=True)
    if not d:
        return f"no paired difference with the {control} control was measured"
    if side is True:
        return f"above the {control} control by {d} (the interval excludes 0)"
    if side is False:
        return f"below the {control} control by {d} (the interval excludes 0)"
    return f"not clear of the {control} control ({d}: the interval covers 0)"


def share(k: int, n: int) -> str:
    """'3 of 4'."""
    return f"{k} of {n}"
