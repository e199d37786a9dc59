"""Priced as the provider bills, on DuckDB and on ClickHouse (chDB): each source's convention
for cached tokens, cache writes, long-context tiers, reasoning tokens and model ids, with the
cost each case must come to written out by hand from the catalog's list prices."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from apex.analytics.ingest import UsageImporter
from apex.analytics.ledger import SqlLedger
from apex.analytics.pricing import PriceCatalog, price_from_dict
from tests.support.agent_harness import run_workflow, supervisor
from tests.support.usage_files import import_bytes

# USD per million tokens, packaged catalog:
# claude-sonnet-4   input 3.00  cache read 0.30  cache write 3.75  output 15.00
#   above 200,000   input 6.00  cache read 0.60  cache write 7.50  output 22.50
# claude-haiku-4-5  input 1.00  cache read 0.10  cache write 1.25  output 5.00
# gpt-4o            input 2.50  cache read 1.25  (cache writes billed as input)  output 10.00
# o3                input 2.00  cache read 0.50  output 8.00 (reasoning billed as output)
# gemini-2.5-pro    input 1.25  output 10.00; above 200,000: input 2.50  output 15.00
# claude-3-haiku    input 0.25  output 1.25
START = "2024-05-01T10:00:00Z"
START_NANOS = "1714557600000000000"


def _jsonl(record: dict) -> bytes:
    return json.dumps({"timestamp": START, **record}).encode() + b"\n"


def _span(model: str, attributes: dict[str, int]) -> bytes:
    values = [{"key": "gen_ai.request.model", "value": {"stringValue": model}}]
    values += [{"key": key, "value": {"intValue": str(value)}} for key, value in attributes.items()]
    span = {
        "spanId": "a1",
        "startTimeUnixNano": START_NANOS,
        "endTimeUnixNano": START_NANOS,
        "attributes": values,
    }
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


def _litellm(model: str, prompt: int, completion: int, usage: dict[str, int]) -> bytes:
    row = {
        "request_id": "r1",
        "call_type": "acompletion",
        "spend": None,
        "startTime": START,
        "model": model,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "metadata": {"additional_usage_values": usage},
    }
    return json.dumps([row]).encode()


def _csv(header: str, *values: object) -> bytes:
    return (f"timestamp,{header}\n{START}," + ",".join(str(v) for v in values) + "\n").encode()


# (file, ledger tokens: input, cache read, cache write, output, reasoning), cost in USD
CONVENTIONS = {
    # Anthropic's usage object: input_tokens leaves out cache reads and writes
    "anthropic usage, JSON Lines": (
        _jsonl(
            {
                "model": "claude-sonnet-4",
                "usage": {
                    "input_tokens": 1_000,
                    "cache_read_input_tokens": 20_000,
                    "cache_creation_input_tokens": 5_000,
                    "output_tokens": 500,
                },
            }
        ),
        (26_000, 20_000, 5_000, 500, 0),
        "0.03525",
    ),
    "anthropic usage, CSV": (
        _csv(
            "model,input_tokens,cache_read_input_tokens,cache_creation_input_tokens,output_tokens",
            "claude-sonnet-4",
            1_000,
            20_000,
            5_000,
            500,
        ),
        (26_000, 20_000, 5_000, 500, 0),
        "0.03525",
    ),
    # OpenAI's usage object: prompt_tokens counts the cached ones
    "openai usage, cached prompt tokens": (
        _jsonl(
            {
                "model": "gpt-4o",
                "usage": {
                    "prompt_tokens": 10_000,
                    "completion_tokens": 2_000,
                    "prompt_tokens_details": {"cached_tokens": 8_000},
                },
            }
        ),
        (10_000, 8_000, 0, 2_000, 0),
        "0.035",
    ),
    "openai usage, reasoning tokens billed as output": (
        _jsonl(
            {
                "model": "o3",
                "usage": {
                    "prompt_tokens": 1_000,
                    "completion_tokens": 5_000,
                    "completion_tokens_details": {"reasoning_tokens": 4_000},
                },
            }
        ),
        (1_000, 0, 0, 5_000, 4_000),
        "0.042",
    ),
    # OpenTelemetry GenAI: input counts cache reads and writes
    "opentelemetry, cache_write": (
        _span(
            "claude-haiku-4-5",
            {
                "gen_ai.usage.input_tokens": 30_000,
                "gen_ai.usage.cache_read.input_tokens": 10_000,
                "gen_ai.usage.cache_write.input_tokens": 4_000,
                "gen_ai.usage.output_tokens": 1_000,
            },
        ),
        (30_000, 10_000, 4_000, 1_000, 0),
        "0.027",
    ),
    "opentelemetry, older cache_creation name": (
        _span(
            "claude-haiku-4-5",
            {
                "gen_ai.usage.input_tokens": 30_000,
                "gen_ai.usage.cache_read.input_tokens": 10_000,
                "gen_ai.usage.cache_creation.input_tokens": 4_000,
                "gen_ai.usage.output_tokens": 1_000,
            },
        ),
        (30_000, 10_000, 4_000, 1_000, 0),
        "0.027",
    ),
    # LiteLLM reports the OpenAI way for every provider, cache counts in its metadata
    "litellm spend log": (
        _litellm(
            "claude-sonnet-4",
            26_000,
            500,
            {"cache_read_input_tokens": 20_000, "cache_creation_input_tokens": 5_000},
        ),
        (26_000, 20_000, 5_000, 500, 0),
        "0.03525",
    ),
    # cache writes of a provider that bills none apart cost what input costs
    "openai, cache writes at the input price": (
        _csv(
            "model,input_tokens,cache_write_input_tokens,output_tokens", "gpt-4o", 4_000, 1_000, 0
        ),
        (4_000, 0, 1_000, 0, 0),
        "0.01",
    ),
    # long context: the whole request at the tier's prices, decided per request
    "long context, above the threshold": (
        _csv(
            "model,input_tokens,cached_input_tokens,cache_write_input_tokens,output_tokens",
            "claude-sonnet-4",
            250_000,
            100_000,
            50_000,
            1_000,
        ),
        (250_000, 100_000, 50_000, 1_000, 0),
        "1.0575",
    ),
    "long context, at the threshold": (
        _csv("model,input_tokens,output_tokens", "claude-sonnet-4", 200_000, 1_000),
        (200_000, 0, 0, 1_000, 0),
        "0.615",
    ),
    "long context, one token above": (
        _csv("model,input_tokens,output_tokens", "claude-sonnet-4", 200_001, 1_000),
        (200_001, 0, 0, 1_000, 0),
        "1.222506",
    ),
    "long context with reasoning tokens": (
        _csv(
            "model,input_tokens,output_tokens,reasoning_tokens",
            "gemini-2.5-pro",
            300_000,
            2_000,
            1_500,
        ),
        (300_000, 0, 0, 2_000, 1_500),
        "0.78",
    ),
}


def importer_for(ledger: SqlLedger) -> UsageImporter:
    return UsageImporter(ledger, PriceCatalog.load())


async def _ledger_row(ledger: SqlLedger, tenant: str) -> tuple[int, ...]:
    bind = ledger._binder()
    rows = ledger._rows(
        bind.statement(
            "SELECT input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens, "
            f"reasoning_tokens FROM {ledger._table('usage')} WHERE tenant_id = {bind(tenant)}"
        )
    )
    assert len(rows) == 1
    return tuple(int(value) for value in rows[0])


@pytest.mark.parametrize("case", list(CONVENTIONS))
async def test_each_source_convention_is_priced_as_billed(
    usage_ledger: SqlLedger, case: str
) -> None:
    data, tokens, cost = CONVENTIONS[case]
    status = import_bytes(importer_for(usage_ledger), "t", data)
    assert (status.rows_accepted, status.errors, status.unpriced) == (1, [], [])
    assert await _ledger_row(usage_ledger, "t") == tokens
    totals = await usage_ledger.totals("t")
    assert totals.cost_usd == Decimal(cost)
    assert totals.cache_write_input_tokens == tokens[2]
    assert totals.unpriced_requests == 0


MODEL_IDS = {
    "bedrock cross-region profile": (
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
        "aws.bedrock",
        "0.0045",
    ),
    "bedrock route and region": (
        "bedrock/us-east-1/anthropic.claude-3-haiku-20240307-v1:0",
        "",
        "0.000375",
    ),
    "bedrock global profile": ("global.anthropic.claude-sonnet-4-20250514-v1:0", "", "0.0045"),
    "azure deployment of a catalog model": ("azure/gpt-4o", "", "0.0035"),
    "vertex ai": ("vertex_ai/gemini-2.5-pro", "", "0.00225"),
    "vertex ai anthropic snapshot": ("vertex_ai/claude-sonnet-4@20250514", "", "0.0045"),
    "openrouter": ("openrouter/anthropic/claude-sonnet-4", "", "0.0045"),
    "dated snapshot": ("gpt-4o-2024-08-06", "openai", "0.0035"),
}


@pytest.mark.parametrize("case", list(MODEL_IDS))
async def test_model_ids_with_prefixes_and_suffixes_find_the_catalog_model(
    usage_ledger: SqlLedger, case: str
) -> None:
    model, provider, cost = MODEL_IDS[case]
    data = _csv("model,provider,input_tokens,output_tokens", model, provider, 1_000, 100)
    status = import_bytes(importer_for(usage_ledger), "t", data)
    assert (status.rows_accepted, status.unpriced) == (1, [])
    assert (await usage_ledger.totals("t")).cost_usd == Decimal(cost)


async def test_a_model_id_that_does_not_resolve_is_reported_by_name_and_left_unpriced(
    usage_ledger: SqlLedger,
) -> None:
    data = (
        _csv("model,input_tokens,output_tokens", "azure/team-gpt-deployment", 1_000, 100)
        + f"{START},gpt-4o,1000,100\n".encode()
    )
    status = import_bytes(importer_for(usage_ledger), "t", data)
    assert [(u.model, u.rows) for u in status.unpriced] == [("azure/team-gpt-deployment", 1)]
    summary = await usage_ledger.summary("t")
    assert (summary.totals.cost_usd, summary.totals.unpriced_requests) == (Decimal("0.0035"), 1)
    shown = summary.model_dump(mode="json")
    models = {m["model"]: m for m in shown["by_model"]}
    assert models["azure/team-gpt-deployment"]["cost_usd"] is None
    assert models["azure/team-gpt-deployment"]["unpriced_requests"] == 1
    assert models["gpt-4o"]["cost_usd"] == 0.0035
    assert [(d["cost_usd"], d["unpriced_requests"]) for d in shown["by_day"]] == [(0.0035, 1)]
    assert [(f["cost_usd"], f["unpriced_requests"]) for f in shown["by_feature"]] == [(0.0035, 1)]
    split = {d["model"]: (d["cost_usd"], d["unpriced_requests"]) for d in shown["by_day_model"]}
    assert split == {"gpt-4o": (0.0035, 0), "azure/team-gpt-deployment": (None, 1)}
    mix = {m.model: m.model_dump(mode="json") for m in await usage_ledger.by_model_feature("t")}
    assert [
        (mix[name]["cost_usd"], mix[name]["unpriced_requests"])
        for name in ("gpt-4o", "azure/team-gpt-deployment")
    ] == [(0.0035, 0), (None, 1)]


async def test_a_total_of_unpriced_requests_only_has_no_cost(usage_ledger: SqlLedger) -> None:
    data = _csv("model,input_tokens,output_tokens", "house-model", 1_000, 100)
    import_bytes(importer_for(usage_ledger), "t", data)
    totals = (await usage_ledger.summary("t")).model_dump(mode="json")["totals"]
    assert (totals["requests"], totals["cost_usd"], totals["unpriced_requests"]) == (1, None, 1)


async def test_a_users_cache_write_and_tier_prices_reprice_the_rows(
    usage_ledger: SqlLedger,
) -> None:
    importer = importer_for(usage_ledger)
    import_bytes(importer, "t", CONVENTIONS["long context, above the threshold"][0])
    import_bytes(importer, "t", CONVENTIONS["anthropic usage, CSV"][0])
    assert (await usage_ledger.totals("t")).cost_usd == Decimal("1.0575") + Decimal("0.03525")
    price = price_from_dict(
        {
            "id": "claude-sonnet-4",
            "provider": "anthropic",
            "input": "4",
            "cached_input": "0.4",
            "cache_write": "5",
            "output": "20",
            "tiers": [
                {
                    "above_input_tokens": 200_000,
                    "input": "8",
                    "cached_input": "0.8",
                    "cache_write": "10",
                    "output": "30",
                }
            ],
        },
        source="user",
    )
    assert importer.set_price("t", price) == 2
    # 100,000 x 8 + 100,000 x 0.8 + 50,000 x 10 + 1,000 x 30 = 1,410,000 micro-dollars, and
    # 1,000 x 4 + 20,000 x 0.4 + 5,000 x 5 + 500 x 20 = 47,000
    assert (await usage_ledger.totals("t")).cost_usd == Decimal("1.41") + Decimal("0.047")


async def test_a_ledger_from_before_cache_writes_is_upgraded_in_place(
    usage_ledger: SqlLedger,
) -> None:
    importer = importer_for(usage_ledger)
    data = _csv("model,input_tokens,output_tokens", "gpt-4o", 1_000, 100)
    import_bytes(importer, "t", data)
    tables = ("usage", "usage_staging") if usage_ledger.engine == "clickhouse" else ("usage",)
    for table in tables:
        usage_ledger._command(
            f"ALTER TABLE {usage_ledger._table(table)} DROP COLUMN cache_write_input_tokens"
        )
    usage_ledger.initialize()
    assert await _ledger_row(usage_ledger, "t") == (1_000, 0, 0, 100, 0)
    # the row keeps its key: the same file sent again adds nothing
    again = import_bytes(importer, "t", data)
    assert (again.rows_accepted, again.rows_duplicate) == (0, 1)
    import_bytes(importer, "t", CONVENTIONS["anthropic usage, CSV"][0])
    assert (await usage_ledger.totals("t")).cost_usd == Decimal("0.0035") + Decimal("0.03525")


async def test_a_report_says_what_its_total_leaves_out(usage_ledger: SqlLedger) -> None:
    data = _csv("model,input_tokens,output_tokens", "gpt-4o", 1_000, 100) + b"".join(
        f"{START},azure/team-gpt-deployment,1000,{n}\n".encode() for n in range(3)
    )
    import_bytes(importer_for(usage_ledger), "t", data)
    run = await run_workflow(supervisor(usage_ledger), "t", "How much did I spend?")
    report = run.report
    assert (report["totals"]["cost_usd"], report["totals"]["unpriced_requests"]) == (0.0035, 3)
    lines = {m["model"]: (m["cost_usd"], m["unpriced_requests"]) for m in report["by_model"]}
    assert lines == {"gpt-4o": (0.0035, 0), "azure/team-gpt-deployment": (None, 3)}
    left_out = "3 requests of models with no known price are not in the cost"
    assert left_out in report["answer"]["headline"]
    assert f"Total: 4 requests, $0.00 ({left_out}), 0 errors." in report["markdown"]
    assert "| azure/team-gpt-deployment | 3 | unpriced |" in report["markdown"]
