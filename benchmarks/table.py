"""The one table of every benchmark's figures, from the JSON lines `figures.py` saved.

    python benchmarks/table.py FIGURES.jsonl [--readme README.md]

Prints the table (Markdown) and, with `--readme`, puts it between the README's
`<!-- bench-table:start -->` and `<!-- bench-table:end -->` markers, so the performance table
there is always what `make bench` measured last. Exits 1 when a figure missed its target.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from figures import Figure

START = "<!-- bench-table:start -->"
END = "<!-- bench-table:end -->"


def read(path: Path) -> tuple[list[Figure], str]:
    figures: list[Figure] = []
    machine = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        machine = data.pop("machine", machine)
        data.pop("met", None)
        figures.append(Figure(**data))
    return figures, machine


def table(figures: list[Figure], machine: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    benchmarks = ", ".join(dict.fromkeys(figure.benchmark for figure in figures))
    lines = [
        f"Saved {when} on {machine} by: {benchmarks}. Load is the 1-minute load average "
        "when the figure was taken.",
        "",
        "| benchmark | figure | measured | target | met | load |",
        "|---|---|---:|---|---|---:|",
    ]
    for figure in figures:
        name = f"{figure.name} ({figure.context})" if figure.context else figure.name
        lines.append(
            f"| {figure.benchmark} | {name} | {figure.value_text()} | "
            f"{figure.target_text()} | {figure.met_text()} | {figure.load} |"
        )
    return "\n".join(lines)


def into_readme(readme: Path, text: str) -> None:
    content = readme.read_text(encoding="utf-8")
    if START not in content or END not in content:
        raise SystemExit(f"{readme} has no {START} ... {END} block")
    head, rest = content.split(START, 1)
    _old, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figures", type=Path)
    parser.add_argument("--readme", type=Path)
    args = parser.parse_args()
    figures, machine = read(args.figures)
    text = table(figures, machine)
    print(text)
    if args.readme:
        into_readme(args.readme, text)
    missed = [f for f in figures if f.met is False]
    if missed:
        print(f"\n{len(missed)} of {sum(1 for f in figures if f.met is not None)} targets missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
