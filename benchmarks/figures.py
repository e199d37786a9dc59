"""Every benchmark's figures, printed alike and checked against their targets.

A benchmark records each figure with `Figures.target` (a figure with a target, met or missed)
or `Figures.note` (reported, no target), then ends with `sys.exit(figures.finish())`: that
prints the figures, appends them as JSON lines to the file `APEX_BENCH_FIGURES` names (what
`make bench` sets), and returns 1 when a target was missed. `benchmarks/table.py` turns that
file into the one table `make bench` prints and writes into the README, so the README's
"met" column is never edited by hand.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

FIGURES_FILE_ENV = "APEX_BENCH_FIGURES"
Bound = Literal["at_most", "at_least"]


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def load_average() -> float:
    """The 1-minute load average: on a shared machine, what every figure has to be read with."""
    return round(os.getloadavg()[0], 2)


@dataclass(frozen=True)
class Figure:
    benchmark: str
    name: str
    value: float
    unit: str
    bound: Bound | None
    target: float | None
    load: float
    context: str

    @property
    def met(self) -> bool | None:
        if self.bound is None or self.target is None:
            return None
        return self.value <= self.target if self.bound == "at_most" else self.value >= self.target

    def target_text(self) -> str:
        if self.target is None:
            return "—"
        sign = "≤" if self.bound == "at_most" else "≥"
        return f"{sign} {format_value(self.target)} {self.unit}".rstrip()

    def value_text(self) -> str:
        return f"{format_value(self.value)} {self.unit}".rstrip()

    def met_text(self) -> str:
        return {True: "yes", False: "no", None: "—"}[self.met]


def format_value(value: float) -> str:
    """Thousands separated; one decimal below 1,000 (three below 1)."""
    if abs(value) >= 1000 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}"


class Figures:
    """The figures of one benchmark run, in the order they were measured."""

    def __init__(self, benchmark: str, context: str = "") -> None:
        self.benchmark = benchmark
        self.context = context
        self.figures: list[Figure] = []

    def target(
        self,
        name: str,
        value: float,
        unit: str,
        *,
        at_most: float | None = None,
        at_least: float | None = None,
        context: str | None = None,
    ) -> bool:
        """Record a figure with its target (exactly one of `at_most`, `at_least`); whether it
        was met."""
        if (at_most is None) == (at_least is None):
            raise ValueError("a target is either at_most or at_least")
        bound: Bound = "at_most" if at_most is not None else "at_least"
        figure = self._record(
            name, value, unit, bound, at_most if at_most is not None else at_least, context
        )
        return bool(figure.met)

    def note(self, name: str, value: float, unit: str, *, context: str | None = None) -> None:
        """Record a figure that has no target."""
        self._record(name, value, unit, None, None, context)

    def _record(
        self,
        name: str,
        value: float,
        unit: str,
        bound: Bound | None,
        target: float | None,
        context: str | None,
    ) -> Figure:
        figure = Figure(
            self.benchmark,
            name,
            float(value),
            unit,
            bound,
            target,
            load_average(),
            self.context if context is None else context,
        )
        self.figures.append(figure)
        print(
            f"  {name}: {figure.value_text()}   target {figure.target_text()}   "
            f"met {figure.met_text()}   (load {figure.load})",
            flush=True,
        )
        return figure

    @property
    def missed(self) -> list[Figure]:
        return [figure for figure in self.figures if figure.met is False]

    def finish(self, *, failures: list[str] | None = None) -> int:
        """Print the summary, save the figures for `make bench`, and return the exit code: 1
        when a target was missed or the benchmark found a failure (a lost event, a wrong
        answer) that a figure does not show."""
        destination = os.environ.get(FIGURES_FILE_ENV)
        if destination:
            with Path(destination).open("a", encoding="utf-8") as out:
                for figure in self.figures:
                    out.write(
                        json.dumps({**asdict(figure), "met": figure.met, "machine": machine()})
                        + "\n"
                    )
        print(
            f"\n{self.benchmark}: {len(self.figures)} figures, "
            f"{sum(1 for f in self.figures if f.met is not None)} with a target, "
            f"{len(self.missed)} missed"
        )
        for figure in self.missed:
            print(f"  MISSED {figure.name}: {figure.value_text()}, target {figure.target_text()}")
        for failure in failures or []:
            print(f"  FAILED {failure}")
        return 1 if self.missed or failures else 0


def machine() -> str:
    return f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
