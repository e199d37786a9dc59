"""Rows from text: timestamps and zones, counts, statuses, costs, keys; every bad value named."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from apex.analytics.normalize import LINE, Normalizer
from apex.analytics.pricing import ModelPrice, PriceCatalog


@pytest.fixture(scope="module")
def normalizer():  # type: ignore[no-untyped-def]
    instance = Normalizer(PriceCatalog.load().resolver(), threads=1, memory_limit_mb=128)
    yield instance
    instance.close()


def run(normalizer: Normalizer, rows: list[dict[str, str | None]]):  # type: ignore[no-untyped-def]
    names = sorted({name for row in rows for name in row})
    table = pa.table(
        {
            LINE: list(range(2, len(rows) + 2)),
            **{name: pa.array([row.get(name) for row in rows], pa.string()) for name in names},
        }
    )
    return normalizer.normalize(table, tenant_id="tenant-a", upload_id="up-1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10)),
        ("2024-05-01 05:00:00-0500", datetime(2024, 5, 1, 10)),
        ("2024-05-01 06:00:00 America/New_York", datetime(2024, 5, 1, 10)),
        ("2024-05-01T10:00:00.123456Z", datetime(2024, 5, 1, 10, 0, 0, 123456)),
        ("2024-05-01 10:00:00", datetime(2024, 5, 1, 10)),
        ("2024-05-01", datetime(2024, 5, 1)),
        ("1714557600", datetime(2024, 5, 1, 10)),
        ("1714557600.5", datetime(2024, 5, 1, 10, 0, 0, 500000)),
        ("1714557600123", datetime(2024, 5, 1, 10, 0, 0, 123000)),
        ("1714557600123456", datetime(2024, 5, 1, 10, 0, 0, 123456)),
        ("1714557600123456789", datetime(2024, 5, 1, 10, 0, 0, 123456)),
        ("Wed, 01 May 2024 10:00:00 GMT", datetime(2024, 5, 1, 10)),
        ("Wed, 01 May 2024 12:00:00 +0200", datetime(2024, 5, 1, 10)),
        ("20240501T100000Z", datetime(2024, 5, 1, 10)),
        ("2024/05/01 10:00:00", datetime(2024, 5, 1, 10)),
    ],
)
def test_timestamps_in_many_formats_and_zones_become_utc(
    normalizer: Normalizer, text: str, expected: datetime
) -> None:
    result = run(normalizer, [{"timestamp": text, "model": "gpt-4o"}])
    assert result.errors == []
    assert result.rows.column("timestamp").to_pylist() == [expected]


def test_every_bad_value_is_rejected_with_its_line_and_reason(normalizer: Normalizer) -> None:
    good = {"timestamp": "2024-05-01T10:00:00Z", "model": "gpt-4o"}
    result = run(
        normalizer,
        [
            {**good, "input_tokens": "-5"},
            {**good, "output_tokens": "12.5"},
            {**good, "input_tokens": "many"},
            {**good, "timestamp": "yesterday"},
            {**good, "timestamp": "1890-01-01"},
            {**good, "model": "  "},
            {**good, "cost_usd": "-0.01"},
            {**good, "cost_usd": "free"},
            {**good, "latency_ms": "-3"},
            {**good, "status": "maybe"},
            {**good, "input_tokens": "10", "cached_input_tokens": "11"},
            {"model": "gpt-4o"},
            {**good, "input_tokens": " 7 ", "output_tokens": "3.0"},
        ],
    )
    messages = [(error.line, error.message.split(",")[0].split(":")[0]) for error in result.errors]
    assert messages == [
        (2, "input_tokens"),
        (3, "output_tokens"),
        (4, "input_tokens"),
        (5, "timestamp"),
        (6, "timestamp"),
        (7, "model"),
        (8, "cost_usd"),
        (9, "cost_usd"),
        (10, "latency_ms"),
        (11, "status"),
        (12, "cached_input_tokens"),
        (13, "timestamp"),
    ]
    assert "'-5'" in result.errors[0].message
    assert result.rejected == 12
    assert result.rows.num_rows == 1
    assert result.rows.column("input_tokens").to_pylist() == [7]


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "Infinity", "-inf", "1e999"])
@pytest.mark.parametrize("field", ["latency_ms", "latency_s", "ttft_ms"])
def test_durations_that_are_not_finite_are_rejected(
    normalizer: Normalizer, field: str, value: str
) -> None:
    # an infinite or NaN latency kept in the ledger would make every later summary
    # unserializable as JSON
    result = run(
        normalizer,
        [
            {"timestamp": "2024-05-01", "model": "gpt-4o", field: value},
            {"timestamp": "2024-05-01", "model": "gpt-4o", field: "1e300"},
        ],
    )
    assert result.rows.column("latency_ms" if field != "ttft_ms" else field).to_pylist() == [
        1e303 if field == "latency_s" else 1e300
    ]
    assert [(error.line, error.message.split(":")[0]) for error in result.errors] == [(2, field)]
    assert result.rows.num_rows == 1


def test_seconds_that_overflow_as_milliseconds_are_rejected(normalizer: Normalizer) -> None:
    result = run(normalizer, [{"timestamp": "2024-05-01", "model": "gpt-4o", "latency_s": "1e306"}])
    assert [error.message.split(":")[0] for error in result.errors] == ["latency_s"]


def test_catalog_prices_cached_and_reasoning_tokens_apart(normalizer: Normalizer) -> None:
    result = run(
        normalizer,
        [
            {
                "timestamp": "2024-05-01",
                "model": "gpt-4o",
                "input_tokens": "1000000",
                "cached_input_tokens": "400000",
                "output_tokens": "100000",
            },
            {
                "timestamp": "2024-05-01",
                "model": "o3",
                "input_tokens": "1000",
                "output_tokens": "5000",
                "reasoning_tokens": "4000",
            },
            {
                "timestamp": "2024-05-01",
                "model": "claude-3-5-haiku-20241022",
                "provider": "Anthropic",
                "input_tokens": "10",
                "output_tokens": "1",
                "cost": None,
                "cost_usd": "0.5",
            },
        ],
    )
    rows = result.rows.to_pylist()
    # 600k uncached x 2.50 + 400k cached x 1.25 + 100k output x 10.00, per million
    assert rows[0]["cost_usd"] == Decimal("1.5") + Decimal("0.5") + Decimal("1.0")
    assert rows[0]["cost_source"] == "catalog" and rows[0]["provider"] == "openai"
    assert rows[1]["cost_usd"] == (Decimal(1000) * 2 + Decimal(5000) * 8) / 1_000_000
    assert (rows[2]["cost_usd"], rows[2]["cost_source"], rows[2]["provider"]) == (
        Decimal("0.5"),
        "file",
        "anthropic",
    )


@pytest.mark.parametrize(
    ("per_million", "tokens"),
    [
        ("2.5", 1_000_000),  # whole picodollars per token: integer arithmetic
        ("0.0375", 99_999_999),  # six decimals per million, the finest whole picodollar
        ("2000.25", 12_345),  # 2^31 picodollars or more per token: decimal arithmetic
        ("0.1234567891", 7_654_321),  # not a whole picodollar: decimal arithmetic, rounded
        ("0.01", 50_000_000_000),  # a day's aggregate row: tens of billions of tokens
    ],
)
def test_every_price_and_size_costs_exactly_what_decimal_arithmetic_says(
    per_million: str, tokens: int
) -> None:
    price = Decimal(per_million)
    catalog = PriceCatalog.load().with_overrides(
        [
            ModelPrice(
                id="acme-1",
                provider="acme",
                input=price,
                output=price * 4,
                cached_input=price / 10,
                reasoning=price * 2,
            )
        ]
    )
    instance = Normalizer(catalog.resolver(), threads=1, memory_limit_mb=128)
    try:
        rows = run(
            instance,
            [
                {
                    "timestamp": "2024-05-01",
                    "provider": "acme",
                    "model": "acme-1",
                    "input_tokens": str(tokens),
                    "cached_input_tokens": str(tokens // 3),
                    "output_tokens": str(tokens // 7),
                    "reasoning_tokens": str(tokens // 11),
                }
            ],
        ).rows.to_pylist()
    finally:
        instance.close()
    exact = (
        Decimal(tokens - tokens // 3) * price
        + Decimal(tokens // 3) * price / 10
        + Decimal(tokens // 7 - tokens // 11) * price * 4
        + Decimal(tokens // 11) * price * 2
    ) / 1_000_000
    assert rows[0]["cost_source"] == "catalog"
    assert rows[0]["cost_usd"] == exact.quantize(Decimal("1e-12"))


def test_a_row_costing_more_than_the_ledger_can_hold_is_rejected_alone(
    normalizer: Normalizer,
) -> None:
    result = run(
        normalizer,
        [
            {"timestamp": "2024-05-01", "model": "gpt-4o", "input_tokens": "900000000000000"},
            {"timestamp": "2024-05-01", "model": "gpt-4o", "input_tokens": "1000"},
        ],
    )
    assert result.rows.num_rows == 1 and result.rejected == 1
    assert result.errors[0].line == 2
    assert "over $1,000,000 for one call" in result.errors[0].message


def test_unknown_models_are_reported_not_priced_as_zero(normalizer: Normalizer) -> None:
    result = run(
        normalizer,
        [
            {"timestamp": "2024-05-01", "model": "in-house-llm", "input_tokens": "10"},
            {"timestamp": "2024-05-01", "model": "in-house-llm", "input_tokens": "20"},
            {"timestamp": "2024-05-01", "model": "in-house-llm", "cost_usd": "0.1"},
        ],
    )
    rows = result.rows.to_pylist()
    assert [(row["cost_usd"], row["cost_source"]) for row in rows] == [
        (None, "unpriced"),
        (None, "unpriced"),
        (Decimal("0.1"), "file"),
    ]
    assert result.unpriced == {("", "in-house-llm"): 2}


def test_statuses_totals_latency_and_tags(normalizer: Normalizer) -> None:
    base = {"timestamp": "2024-05-01T10:00:00Z", "model": "gpt-4o-mini"}
    result = run(
        normalizer,
        [
            {**base, "status": "429"},
            {**base, "status": "Success", "tags": "Batch; nightly|batch"},
            {**base, "error_type": "Timeout"},
            {**base, "status": "timeout"},
            {**base, "input_tokens": "100", "total_tokens": "130", "latency_s": "1.5"},
            {**base, "end_time": "2024-05-01T10:00:02.250Z", "tags": '["B", "a"]'},
        ],
    )
    rows = result.rows.to_pylist()
    assert [(r["status"], r["error_type"]) for r in rows] == [
        ("error", "http_429"),
        ("ok", ""),
        ("error", "Timeout"),
        ("error", "timeout"),
        ("ok", ""),
        ("ok", ""),
    ]
    assert rows[1]["tags"] == ["batch", "nightly"]
    assert rows[4]["output_tokens"] == 30 and rows[4]["latency_ms"] == 1500.0
    assert rows[5]["latency_ms"] == 2250.0 and rows[5]["tags"] == ["a", "b"]


def test_prompt_text_is_hashed_and_never_kept(normalizer: Normalizer) -> None:
    result = run(
        normalizer, [{"timestamp": "2024-05-01", "model": "gpt-4o", "prompt": "my secret prompt"}]
    )
    row = result.rows.to_pylist()[0]
    assert len(row["prompt_hash"]) == 32
    assert "my secret prompt" not in str(row)


def test_row_key_depends_on_content_not_on_tenant_or_upload(normalizer: Normalizer) -> None:
    row = {"timestamp": "2024-05-01", "model": "gpt-4o", "input_tokens": "3"}
    table = pa.table({LINE: [2], **{k: [v] for k, v in row.items()}})
    first = normalizer.normalize(table, tenant_id="a", upload_id="1").rows
    second = normalizer.normalize(table, tenant_id="b", upload_id="2").rows
    changed = normalizer.normalize(
        table.set_column(3, "input_tokens", pa.array(["4"])), tenant_id="a", upload_id="1"
    ).rows
    assert first.column("row_key") == second.column("row_key")
    assert first.column("row_key") != changed.column("row_key")
    assert second.column("tenant_id").to_pylist() == ["b"]


def test_the_row_key_function_is_pinned(normalizer: Normalizer) -> None:
    """Dedup compares keys across uploads made months apart: if an engine upgrade changes the
    key of this row, existing ledgers need their keys recomputed before the upgrade ships."""
    result = run(
        normalizer,
        [
            {
                "timestamp": "2024-05-01T10:00:00.250Z",
                "model": "gpt-4o",
                "provider": "openai",
                "input_tokens": "1200",
                "output_tokens": "80",
                "cached_input_tokens": "200",
                "latency_ms": "812.5",
                "status": "ok",
                "feature": "chat",
                "tags": "a,b",
                "end_user": "u1",
                "prompt_hash": "p",
                "prefix_hash": "x",
                "request_id": "r1",
            }
        ],
    )
    assert result.rows.column("row_key").to_pylist() == [PINNED_ROW_KEY]


PINNED_ROW_KEY = 13013402658972726082


@pytest.mark.parametrize("offset", [0, 3])
def test_values_lose_surrounding_whitespace_and_blank_ones_count_as_missing(
    normalizer: Normalizer, offset: int
) -> None:
    """ASCII, Unicode (no-break, ideographic) and separator whitespace alike; the input may be
    a slice of a larger table, as a reader's batches are."""
    models = ["pad"] * offset + [
        " gpt-4o\t",
        "\u00a0gpt-4o\u3000",
        "\x1cgpt-4o\x1f",
        "gpt-4o",
        "  ",
        "",
        "\u3000",
        "gpt-4o",
    ]
    features = ["pad"] * offset + [" search ", "search", " ", None, "chat", "chat", "chat", "\r"]
    count = len(models)
    table = pa.table(
        {
            LINE: list(range(count)),
            "timestamp": ["2024-05-01T10:00:00Z"] * count,
            "model": models,
            "feature": features,
            "input_tokens": [" 10 "] * count,
        }
    ).slice(offset)
    result = normalizer.normalize(table, tenant_id="tenant-a", upload_id="up-1")
    assert [(error.line, error.message) for error in result.errors] == [
        (offset + 4, "model: missing"),
        (offset + 5, "model: missing"),
        (offset + 6, "model: missing"),
    ]
    rows = result.rows.sort_by("feature")
    assert rows.column("model").to_pylist() == ["gpt-4o"] * 5
    assert sorted(rows.column("feature").to_pylist()) == ["", "", "", "search", "search"]
    assert rows.column("input_tokens").to_pylist() == [10] * 5


# where the unit read from a number's size changes, doubles stop being exact, 64 bits end, and
# the ledger's range (2000 to 2099, in nanoseconds) starts and ends
_EPOCH_EDGES = (10**11, 10**14, 2**53, 10**17, 2**63, 946_684_800 * 10**9, 4_102_444_800 * 10**9)
_WHOLE_EPOCHS = [str(edge + step) for edge in _EPOCH_EDGES for step in (-1, 0, 1)] + [
    "0",
    "1714557600",
    "0001714557600",
    "1714557600123",
    "1714557600123456",
    "1714557600123456789",
    "99999999999999999999",
]


@pytest.mark.parametrize("whole", _WHOLE_EPOCHS)
def test_a_whole_epoch_number_reads_as_the_same_number_with_a_fraction_does(
    normalizer: Normalizer, whole: str
) -> None:
    """Whole numbers take a shorter way than numbers with a fraction (no 38-digit decimals):
    the same instant, or the same refusal, either way; as the start and as the end."""
    result = run(
        normalizer,
        [
            {"timestamp": whole, "end_time": whole, "model": "gpt-4o"},
            {"timestamp": f"{whole}.0", "end_time": f"{whole}.0", "model": "gpt-4o"},
        ],
    )
    if result.errors:
        assert [(e.line, e.message.split(", got")[0]) for e in result.errors] == [
            (2, "timestamp: out of range (2000 to 2099)"),
            (3, "timestamp: out of range (2000 to 2099)"),
        ]
    else:
        stamps = result.rows.column("timestamp").to_pylist()
        assert len(stamps) == 2 and stamps[0] == stamps[1]
        assert result.rows.column("latency_ms").to_pylist() == [0.0, 0.0]
