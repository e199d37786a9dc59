"""False-alarm rate of the spend-anomaly rule on the demo workload (which plants no anomaly).

Loads the demo workload over `--days` days for one user per seed into a DuckDB ledger through
the product's own import path, reads each model's and each feature's daily spend through the
ledger's read API (as alert evaluation does), and judges every day that has a baseline with the
rule of `apex.monitoring.anomalies` (median and MAD of the same kind of days among the 28
before; a run of anomalous days counts once). Every alert there is false: the figure is
alerts per judged series-day, and per series per 30 days. For the rule's sensitivity it also
doubles, in turn, each judged day whose usual spend is at least $10 and counts how many are
flagged (reported, no target). Exits 1 when the false-alarm rate is above the target.

    PYTHONPATH=src python benchmarks/bench_anomaly_false_alarms.py
    PYTHONPATH=src python benchmarks/bench_anomaly_false_alarms.py --rows 100000 --seeds 1
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from figures import Figures

from apex.analytics.demo import DemoWorkload, default_end
from apex.analytics.ingest import UsageImporter
from apex.analytics.ledger_duckdb import DuckDBLedger
from apex.analytics.pricing import PriceCatalog
from apex.analytics.results import UsagePeriod
from apex.monitoring.anomalies import WINDOW_DAYS, anomalies, baseline, judge
from apex.monitoring.budgets import scope_filter

TARGET_RATE = 0.01  # at most one false alert per 100 judged series-days
# the sensitivity is measured on days whose usual spend is at least this (smaller ones fall
# under the rule's minimum delta by design)
MATERIAL_USD = Decimal(10)


async def measure(
    ledger: DuckDBLedger, importer: UsageImporter, seed: int, rows: int, days: int
) -> tuple[int, int, int, int, list[str]]:
    user = f"bench-{seed}"
    end = default_end()
    status = await asyncio.to_thread(importer.start, user, filename=f"demo-{seed}", fmt="demo")
    status = await asyncio.to_thread(
        importer.import_demo, status, DemoWorkload(rows, seed, end=end, days=days)
    )
    assert status.rows_accepted == rows, status
    window = UsagePeriod(start=end - timedelta(days=days), end=end)
    judged = flagged = caught = material = 0
    found: list[str] = []
    names = await ledger.names(user)
    for dimension, key in (("model", "models"), ("feature", "features")):
        for name in sorted({getattr(n, dimension) for n in names} - {""}):
            series = await ledger.by_day(user, window, where=scope_filter({key: [name]}))
            daily = {d.day: d.cost_usd for d in series}
            first = min(daily) + timedelta(days=WINDOW_DAYS)
            span = [first + timedelta(days=i) for i in range((end.date() - first).days)]
            span = [day for day in span if baseline(daily, day) is not None]
            judged += len(span)
            for day in span:
                reference = baseline(daily, day)
                if reference is not None and reference.median >= MATERIAL_USD:
                    material += 1
                    doubled = {**daily, day: daily.get(day, Decimal(0)) * 2}
                    caught += judge(doubled, day) is not None
            for anomaly in anomalies(daily, span):
                flagged += 1
                found.append(
                    f"seed {seed} {dimension} {name} {anomaly.day}: "
                    f"${anomaly.spend:.2f} vs median ${anomaly.baseline.median:.2f}"
                )
    return judged, flagged, caught, material, found


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ledger = DuckDBLedger(Path(tmp) / "ledger.duckdb", memory_limit_mb=1024)
        importer = UsageImporter(ledger, PriceCatalog.load())
        judged = flagged = caught = material = 0
        found: list[str] = []
        try:
            for seed in range(1, args.seeds + 1):
                j, f, c, m, lines = await measure(ledger, importer, seed, args.rows, args.days)
                judged, flagged, found = judged + j, flagged + f, found + lines
                caught, material = caught + c, material + m
        finally:
            ledger.close()
    rate = flagged / judged if judged else 0.0
    for line in found:
        print("  alert:", line)
    print(
        f"demo workload: {args.seeds} seeds x {args.rows:,} rows over {args.days} days "
        f"(ending {datetime.now(UTC).date()})"
    )
    print(f"judged series-days: {judged:,}; alerts (all false): {flagged}")
    print(
        f"sensitivity: of {material:,} judged days whose usual spend is at least "
        f"${MATERIAL_USD}, {caught / material if material else 0:.1%} are flagged when doubled"
    )
    figures = Figures(
        "spend anomalies", f"{args.seeds} seeds x {args.rows:,} demo rows, {judged:,} series-days"
    )
    figures.target("false alarms per series-day", rate * 100, "%", at_most=TARGET_RATE * 100)
    figures.note(
        f"doubled days caught (usual spend ≥ ${MATERIAL_USD})",
        caught / material * 100 if material else 0,
        "%",
    )
    return figures.finish()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
