"""Usage files for tests, with the expected answer computed independently of Apex's code."""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

from apex.analytics.ingest import UsageImporter
from apex.analytics.uploads import UploadStatus

MODELS = (
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4"),
    ("gcp.gemini", "gemini-2.5-flash"),
    ("openai", "o4-mini"),
    ("acme", "house-model"),
)
HEADER = [
    "Timestamp",
    "Provider",
    "Model_Name",
    "Prompt_Tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "Cost",
    "latency_ms",
    "ttft_ms",
    "status",
    "error_type",
    "feature",
    "tags",
    "user",
    "prompt_hash",
    "prefix_hash",
]


def catalog_prices() -> dict[tuple[str, str], dict[str, Decimal]]:
    """Prices read straight from the data file, not through PriceCatalog."""
    document = json.loads(
        resources.files("apex.analytics").joinpath("data/prices.json").read_text()
    )

    def price(entry: dict[str, Any], key: str, fallback: str) -> Decimal:
        value = entry.get(key)
        return Decimal(str(entry[fallback] if value is None else value))

    prices = {}
    for entry in document["models"]:
        prices[(entry["provider"], entry["id"])] = {
            "input": Decimal(entry["input"]),
            "cached": price(entry, "cached_input", "input"),
            "output": Decimal(entry["output"]),
            "reasoning": price(entry, "reasoning", "output"),
        }
    return prices


@dataclass
class UsageFile:
    data: bytes
    good_rows: int
    bad_lines: list[int]
    cost: Decimal
    unpriced: int
    errors: int


def _timestamp(rng: random.Random, day: int, second: int) -> str:
    hour, rest = divmod(second, 3600)
    minute, sec = divmod(rest, 60)
    styles = [
        f"2024-03-{day:02d}T{hour:02d}:{minute:02d}:{sec:02d}Z",
        f"2024-03-{day:02d} {hour:02d}:{minute:02d}:{sec:02d}",
        f"2024-03-{day:02d}T{hour:02d}:{minute:02d}:{sec:02d}.250+00:00",
    ]
    return rng.choice(styles)


def make_usage_csv(rows: int, seed: int, *, bad_every: int = 0) -> UsageFile:
    """A CSV export; every `bad_every`-th row is broken in some way (negative tokens, ...)."""
    rng = random.Random(seed)
    prices = catalog_prices()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    cost = Decimal(0)
    good = unpriced = errors = 0
    bad_lines = []
    for index in range(rows):
        line = index + 2
        provider, model = rng.choice(MODELS)
        inputs = rng.randint(1, 40_000)
        cached = rng.choice([0, 0, rng.randint(0, inputs)])
        outputs = rng.randint(0, 3_000)
        reasoning = rng.randint(0, outputs) if model == "o4-mini" else 0
        file_cost = rng.choice(["", "", "", f"{rng.randint(0, 10**6) / 10**6:.6f}"])
        status = rng.choice(["ok"] * 9 + ["error"])
        row = [
            _timestamp(rng, rng.randint(1, 28), rng.randint(0, 86_399)),
            provider,
            model,
            inputs,
            outputs,
            cached,
            reasoning,
            file_cost,
            rng.randint(50, 30_000),
            rng.choice(["", rng.randint(20, 900)]),
            status,
            "timeout" if status == "error" else "",
            rng.choice(["chat", "summarization", "nightly-batch", ""]),
            rng.choice(["", "a,b", "batch"]),
            rng.choice(["", "u1", "u2"]),
            rng.choice(["", f"h{rng.randint(0, 30)}"]),
            rng.choice(["", "p1", "p2"]),
        ]
        if bad_every and index % bad_every == bad_every - 1:
            column, value = rng.choice(
                [(3, -5), (4, "lots"), (0, "not a date"), (2, ""), (7, "-1.00")]
            )
            row[column] = value
            bad_lines.append(line)
        else:
            good += 1
            errors += status == "error"
            if file_cost:
                cost += Decimal(file_cost)
            elif (provider, model) in prices:
                p = prices[(provider, model)]
                cost += (
                    Decimal(inputs - cached) * p["input"]
                    + Decimal(cached) * p["cached"]
                    + Decimal(outputs - reasoning) * p["output"]
                    + Decimal(reasoning) * p["reasoning"]
                ) / Decimal(1_000_000)
            else:
                unpriced += 1
        writer.writerow(row)
    return UsageFile(out.getvalue().encode(), good, bad_lines, cost, unpriced, errors)


def import_bytes(
    importer: UsageImporter,
    tenant_id: str,
    data: bytes,
    fmt: str | None = None,
    filename: str = "usage.csv",
) -> UploadStatus:
    """Run an import synchronously, as the upload endpoint's worker thread does."""
    status = importer.start(tenant_id, filename=filename, fmt=fmt or "auto", bytes_total=len(data))
    return importer.import_stream(status, io.BytesIO(data), fmt)
