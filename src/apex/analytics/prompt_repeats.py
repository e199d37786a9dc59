"""The calls of the prompts each tenant has had answered more than once: what a duplicates read
groups.

Finding the few prompts sent twice among ten million calls means grouping every prompt hash,
most of a second, and even knowing them, picking their calls out of every row costs a scan of
all the prompt hashes. So three tables are kept per tenant, in the transaction that changes the
rows (DuckDB, with the rollups):
- `usage_prompt_keys`: the key (the 64-bit hash the duplicates statement groups on) of every
  answered prompt, to tell whether a prompt arriving now was answered before;
- `usage_prompt_repeats`: the keys of the prompts answered more than once (a few hundred where
  the other holds millions);
- `usage_repeated_calls`: the answered calls of those prompts, with the columns a duplicates
  read and its scope need. The read groups these (the period's few hundred thousand) rather
  than ten million rows.

A commit adds the keys of the rows it added; a key that becomes repeated brings the earlier
calls of its prompt into the copy with it. A re-pricing copies the re-priced calls again.
A read counts each prompt's calls in its period again, so the copy need only hold every call of
every prompt answered twice: a prompt repeated only across periods, or whose other calls have
since been erased, costs its calls a look and nothing else. Erasing rows therefore leaves the
keys alone; replacing an upload builds them again (its new rows would otherwise all count as
repeats of the rows they replace).
"""

from __future__ import annotations

from collections.abc import Mapping

from apex.analytics import queries as q
from apex.analytics.schema import COLUMNS
from apex.analytics.statement import Statement, Value

KEYS_TABLE = "usage_prompt_keys"
REPEATS_TABLE = "usage_prompt_repeats"
CALLS_TABLE = "usage_repeated_calls"
TABLES = (KEYS_TABLE, REPEATS_TABLE, CALLS_TABLE)
# the columns of the rows a copied call keeps: those of a duplicates read and of its scope
_COPIED = ("timestamp", "prompt_hash", "provider", "model", "feature", "cost_usd")
_KEY_COLUMNS = "tenant_id VARCHAR NOT NULL, prompt_key UBIGINT NOT NULL"
TABLES_SQL = (
    f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} ({_KEY_COLUMNS})",
    f"CREATE TABLE IF NOT EXISTS {REPEATS_TABLE} ({_KEY_COLUMNS})",
    f"CREATE TABLE IF NOT EXISTS {CALLS_TABLE} ({_KEY_COLUMNS}, "
    + ", ".join(f'"{c.name}" {c.duckdb}' for c in COLUMNS if c.name in _COPIED)
    + ")",
)

# the duplicates statement over the copied calls
DUPLICATES = q.duplicates(
    "duplicates_of_repeats",
    f"SELECT prompt_key, prompt_hash, provider, model, cost_usd FROM {CALLS_TABLE} WHERE {q.SCOPE}",
)

_TENANT = "$tenant_id"
_ADDED = "apex_added_prompts"
_NEW = "apex_new_repeats"


def _of_tenant(table: str) -> str:
    return f"(SELECT prompt_key FROM {table} WHERE tenant_id = {_TENANT})"


def _copied(rows: str) -> str:
    """The statement copying the tenant's answered calls matching `rows` into the copy."""
    return (
        f"INSERT INTO {CALLS_TABLE} BY NAME SELECT tenant_id, {q.PROMPT_KEY} AS prompt_key, "
        f"{', '.join(_COPIED)} "
        f"FROM usage WHERE tenant_id = {_TENANT} AND {q.ANSWERED_PROMPT} AND ({rows})"
    )


def added_statements(
    tenant_id: str, added: str, values: Mapping[str, Value] | None = None
) -> list[Statement]:
    """Statements that add the tenant's usage rows matching `added` (the rows a transaction has
    just added; `values`: its placeholders'): a key already kept, or answered twice among the
    added rows, becomes a repeated one, and the calls of repeated prompts are copied (the
    added ones, and the earlier ones of the prompts repeated now). The kept keys are read once,
    in a join rather than `IN`: DuckDB then hashes the smaller side, a live commit's few keys
    rather than the millions kept."""
    statements = [
        f"CREATE OR REPLACE TEMP TABLE {_ADDED} AS "
        "SELECT added.prompt_key, added.calls, kept.prompt_key IS NOT NULL AS known FROM ("
        f"SELECT {q.PROMPT_KEY} AS prompt_key, count(*) AS calls FROM usage "
        f"WHERE tenant_id = {_TENANT} AND ({added}) AND {q.ANSWERED_PROMPT} GROUP BY prompt_key"
        f") AS added LEFT JOIN {_of_tenant(KEYS_TABLE)} AS kept "
        "ON added.prompt_key = kept.prompt_key",
        f"CREATE OR REPLACE TEMP TABLE {_NEW} AS SELECT added.prompt_key FROM {_ADDED} AS added "
        f"ANTI JOIN {_of_tenant(REPEATS_TABLE)} AS kept ON added.prompt_key = kept.prompt_key "
        "WHERE added.calls > 1 OR added.known",
        f"INSERT INTO {REPEATS_TABLE} SELECT {_TENANT}, prompt_key FROM {_NEW}",
        _copied(f"({added}) AND {q.PROMPT_KEY} IN {_of_tenant(REPEATS_TABLE)}"),
        _copied(f"NOT ({added}) AND {q.PROMPT_KEY} IN (SELECT prompt_key FROM {_NEW})"),
        f"INSERT INTO {KEYS_TABLE} SELECT {_TENANT}, prompt_key FROM {_ADDED} WHERE NOT known",
        f"DROP TABLE {_ADDED}",
        f"DROP TABLE {_NEW}",
    ]
    bound = {**(values or {}), "tenant_id": tenant_id}
    return [Statement.of(sql, bound) for sql in statements]


def repriced_statements(
    tenant_id: str, rows: str, values: Mapping[str, Value] | None = None
) -> list[Statement]:
    """Statements that copy the tenant's repeated calls matching `rows` (a condition on the
    columns the copy keeps: re-priced models) again, at their cost now."""
    statements = [
        f"DELETE FROM {CALLS_TABLE} WHERE tenant_id = {_TENANT} AND ({rows})",
        _copied(f"({rows}) AND {q.PROMPT_KEY} IN {_of_tenant(REPEATS_TABLE)}"),
    ]
    bound = {**(values or {}), "tenant_id": tenant_id}
    return [Statement.of(sql, bound) for sql in statements]


def rebuilt_statements(tenant_id: str) -> list[Statement]:
    """Statements that keep the keys and repeated calls of the tenant's rows as they are now,
    and no others."""
    return [
        *(
            Statement.of(
                f"DELETE FROM {table} WHERE tenant_id = {_TENANT}", {"tenant_id": tenant_id}
            )
            for table in TABLES
        ),
        *added_statements(tenant_id, "TRUE"),
    ]
