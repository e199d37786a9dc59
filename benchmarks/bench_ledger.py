"""Usage ledger benchmark: ingest rows/s (CSV, JSONL), query latency, peak resident memory.

    python benchmarks/bench_ledger.py                 # 1,000,000 rows
    python benchmarks/bench_ledger.py --rows 200000   # quicker
    python benchmarks/bench_ledger.py --ten-million   # 10,000,000 rows (long on 2 cores)

Generates the demo workload as CSV and JSON Lines files (not timed), imports each into a fresh
DuckDB ledger through the same path as an upload, then runs the summary and every analysis
query `--repeat` times with the answer store emptied before each run (the cost of computing
it) and `--repeat` times more with the answer stored (what a repeated read costs until the
tenant's rows change), and prints median and worst latency; then asks a full chat run's reads
at once, as the data agent does. Peak RSS is sampled every 20 ms during each import; the files
are generated in a child process, so what the generator's allocations leave behind is not
counted.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from apex.agents.data import DataAgent  # noqa: E402
from apex.analytics.filters import EVERY_ROW  # noqa: E402
from apex.analytics.demo import write_demo_file  # noqa: E402
from apex.analytics.ingest import UsageImporter  # noqa: E402
from apex.analytics.ledger_duckdb import DuckDBLedger  # noqa: E402
from apex.analytics.pricing import PriceCatalog  # noqa: E402

TENANT = "bench-tenant"
END = datetime(2026, 11, 1, tzinfo=UTC)


class PeakRss:
    """Samples this process's resident memory in a thread; `peak_mb` after `stop()`."""

    def __init__(self, every_s: float = 0.02) -> None:
        self._process = psutil.Process()
        self._every = every_s
        self._stop = threading.Event()
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def peak_mb(self) -> float:
        return self.peak / 1_048_576


def generate(path: Path, rows: int, fmt: str) -> None:
    """Write the demo file in a child process: the import's peak RSS is then its own."""
    child = multiprocessing.get_context("spawn").Process(
        target=write_demo_file, args=(path,), kwargs={"rows": rows, "seed": 1, "fmt": fmt,
                                                       "end": END})
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"generating {path.name} failed (exit code {child.exitcode})")


def ingest(path: Path, ledger: DuckDBLedger, fmt: str) -> tuple[float, int, float]:
    importer = UsageImporter(ledger, PriceCatalog.load())
    with PeakRss() as rss:
        started = time.perf_counter()
        status = importer.start(TENANT, filename=path.name, fmt=fmt)
        with path.open("rb") as stream:
            status = importer.import_stream(status, stream, fmt)
        elapsed = time.perf_counter() - started
    assert status.rows_rejected == 0, status.errors[:3]
    return elapsed, status.rows_accepted, rss.peak_mb


async def time_queries(ledger: DuckDBLedger,
                       repeat: int) -> list[tuple[str, float, float, float]]:
    queries: dict[str, Callable[[], Awaitable[Any]]] = {
        "summary (totals+by model/feature/day)": lambda: ledger.summary(TENANT),
        "totals": lambda: ledger.totals(TENANT),
        "by_model": lambda: ledger.by_model(TENANT),
        "by_feature": lambda: ledger.by_feature(TENANT),
        "by_tag": lambda: ledger.by_tag(TENANT),
        "by_day": lambda: ledger.by_day(TENANT),
        "by_model_feature": lambda: ledger.by_model_feature(TENANT),
        "latency_percentiles": lambda: ledger.latency_percentiles(TENANT),
        "error_retry_waste": lambda: ledger.error_retry_waste(TENANT),
        "duplicate_prompts": lambda: ledger.duplicate_prompts(TENANT),
        "shared_prefixes": lambda: ledger.shared_prefixes(TENANT),
        "token_outliers (output)": lambda: ledger.token_outliers(TENANT, kind="output"),
        "token_outliers (input)": lambda: ledger.token_outliers(TENANT, kind="input"),
        "hour_of_day": lambda: ledger.hour_of_day(TENANT),
        "batchable_share": lambda: ledger.batchable_share(TENANT),
        "period_bounds": lambda: ledger.period_bounds(TENANT),
    }
    results = []
    answers = ledger.answers
    assert answers is not None
    for name, run in queries.items():
        await run()
        samples = []
        for _ in range(repeat):
            answers.clear()
            started = time.perf_counter()
            await run()
            samples.append((time.perf_counter() - started) * 1000)
        stored = []
        for _ in range(repeat):
            started = time.perf_counter()
            await run()
            stored.append((time.perf_counter() - started) * 1000)
        results.append((name, statistics.median(samples), max(samples),
                        statistics.median(stored)))
    return results


async def time_reads_at_once(ledger: DuckDBLedger,
                             repeat: int) -> tuple[int, float, float, int, int]:
    """Every read a chat run may ask (DataAgent.reads) over the default period, all at once and
    computed: how many reads, the median and worst wall time, the reads that failed, and the
    statements that ran out of memory side by side and ran again alone."""
    period = await ledger.default_period(TENANT)
    assert period is not None
    answers = ledger.answers
    assert answers is not None
    signals = [read for read, _summary, _description in DataAgent(ledger).reads(TENANT).values()]
    reads = [lambda p, w: ledger.totals(TENANT, p, where=w),
             lambda p, w: ledger.by_model(TENANT, p, where=w), *signals]
    samples, failed, retried = [], 0, ledger.memory.retried
    for _ in range(repeat):
        answers.clear()
        started = time.perf_counter()
        results = await asyncio.gather(*(read(period, EVERY_ROW) for read in reads),
                                       return_exceptions=True)
        samples.append(time.perf_counter() - started)
        failed += sum(isinstance(result, Exception) for result in results)
    return (len(reads), statistics.median(samples), max(samples), failed,
            ledger.memory.retried - retried)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ten-million", action="store_true", help="use 10,000,000 rows")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-jsonl", action="store_true")
    parser.add_argument("--skip-csv", action="store_true",
                        help="import only JSON Lines (its peak RSS then excludes the CSV import)")
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument("--memory-mb", type=int, default=448,
                        help="DuckDB ledger memory limit (APEX_LEDGER_MEMORY_LIMIT_MB)")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: tmp)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep usage files already generated in --dir")
    args = parser.parse_args()
    rows = 10_000_000 if args.ten_million else args.rows
    work = args.dir or Path(tempfile.mkdtemp(prefix="apex-bench-"))
    try:
        return run(args, rows, work)
    finally:
        if args.dir is None:  # generated files run to gigabytes at 10M rows
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, rows: int, work: Path) -> int:
    work.mkdir(parents=True, exist_ok=True)
    print(f"apex ledger benchmark: {rows:,} rows, {psutil.cpu_count()} CPUs, work dir {work}")

    formats = [fmt for fmt, skipped in (("csv", args.skip_csv), ("jsonl", args.skip_jsonl))
               if not skipped]
    for fmt in formats:
        path = work / f"usage.{fmt}"
        if path.exists() and args.reuse:
            continue
        started = time.perf_counter()
        generate(path, rows, fmt)
        print(f"  generated {path.name}: {path.stat().st_size / 1_048_576:,.0f} MiB in "
              f"{time.perf_counter() - started:.1f} s (not part of the figures)")

    ledger = None
    for fmt in formats:
        for stale in work.glob(f"ledger-{fmt}.duckdb*"):
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink()
        target = DuckDBLedger(work / f"ledger-{fmt}.duckdb", memory_limit_mb=args.memory_mb)
        elapsed, accepted, peak = ingest(work / f"usage.{fmt}", target, fmt)
        print(f"ingest {fmt:5s}: {accepted:,} rows in {elapsed:.2f} s = "
              f"{accepted / elapsed:,.0f} rows/s, peak RSS {peak:,.0f} MiB")
        started = time.perf_counter()
        target.wait_for_answers()
        print(f"  first reads prepared in the background {time.perf_counter() - started:.2f} s "
              "after the commit")
        if ledger is None:
            ledger = target
        else:
            target.close()
    assert ledger is not None
    if args.skip_queries:
        ledger.close()
        return 0

    print(f"query latency on {rows:,} rows (DuckDB, computed: median / worst of {args.repeat}; "
          "stored answer: median):")
    for name, median, worst, stored in asyncio.run(time_queries(ledger, args.repeat)):
        print(f"  {name:40s} {median:8.1f} ms  {worst:8.1f} ms  {stored:8.3f} ms")
    count, median, worst, failed, retried = asyncio.run(time_reads_at_once(ledger, args.repeat))
    print(f"a chat run's {count} reads of the default period at once, computed: median "
          f"{median:.2f} s, worst {worst:.2f} s; {failed} of {count * args.repeat} failed, "
          f"{retried} ran again alone after running out of memory side by side")
    ledger.close()
    print(f"process peak RSS {psutil.Process().memory_info().rss / 1_048_576:,.0f} MiB (now)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
