"""A tenant's own prices, and re-pricing its rows when they change."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from apex.analytics.ledger_core import LedgerCore
from apex.analytics.pricing import ModelPrice, PriceCatalog, Rates, price_from_dict
from apex.analytics.row_values import as_int, utc_or_none
from apex.analytics.schema import COST_PRECISION, COST_SCALE, MAX_CALL_COST
from apex.analytics.statement import Binder, Statement


class PriceOverrides(LedgerCore):
    """Price overrides, re-pricing marks and the re-pricing of rows."""

    # -- price overrides --------------------------------------------------------------------
    def price_overrides(self, tenant_id: str) -> list[ModelPrice]:
        """The tenant's own prices; where a replacement left two for a model (see
        `save_price_override`), the one saved last."""
        bind = self._binder()
        rows = self._rows(
            bind.statement(
                f"SELECT provider, model, document FROM {self._table('price_overrides')} "
                f"WHERE tenant_id = {bind(tenant_id)} ORDER BY provider, model, saved_at"
            )
        )
        latest = {(provider, model): document for provider, model, document in rows}
        return [
            price_from_dict(json.loads(document), source="user") for document in latest.values()
        ]

    def save_price_override(self, tenant_id: str, price: ModelPrice) -> None:
        """Replace the tenant's price for the model: the new one is inserted first and only
        then are the earlier ones deleted, so a stop or a failure in between leaves two
        (the newer is read) rather than none, on an engine without transactions too. The new
        one is dated after the earlier ones even when this server's clock is behind the one
        that saved them."""
        document = json.dumps(price.to_dict(), default=str)
        bind = self._binder()
        scope = self._override_scope(bind, tenant_id, price.provider, price.id)
        table = self._table("price_overrides")
        with self.commit_lock:
            latest = utc_or_none(
                self._rows(bind.statement(f"SELECT max(saved_at) FROM {table} WHERE {scope}"))[0][0]
            )
            now = datetime.now(UTC)
            if latest is not None and latest >= now:
                now = latest + timedelta(microseconds=1)
            saved_at = bind(now)
            self._command(
                bind.statement(
                    f"INSERT INTO {table} (tenant_id, provider, model, document, saved_at) "
                    f"VALUES ({bind(tenant_id)}, {bind(price.provider)}, {bind(price.id)}, "
                    f"{bind(document)}, {saved_at})"
                )
            )
            self._delete(bind, "price_overrides", f"{scope} AND saved_at < {saved_at}")

    def _override_scope(self, bind: Binder, tenant_id: str, provider: str, model: str) -> str:
        return (
            f"tenant_id = {bind(tenant_id)} AND provider = {bind(provider)} "
            f"AND model = {bind(model)}"
        )

    def delete_price_override(self, tenant_id: str, provider: str, model: str) -> bool:
        bind = self._binder()
        where = self._override_scope(bind, tenant_id, provider, model)
        found = as_int(
            self._rows(
                bind.statement(
                    f"SELECT count(*) FROM {self._table('price_overrides')} WHERE {where}"
                )
            )[0][0]
        )
        if found:
            self._delete(bind, "price_overrides", where)
        return bool(found)

    @contextmanager
    def repricing(self, tenant_id: str) -> Iterator[bool]:
        """Hold the commit lock and mark the tenant's rows as being re-priced until the block
        ends without an error; yields whether an earlier re-pricing of the tenant was cut
        short (its mark is still there), in which case the caller re-prices all the tenant's
        rows, not only those it changes.

        Re-pricing a large tenant takes seconds and runs model by model, and an override is
        saved before it: a stop or an error in between would leave rows at a price the tenant
        has replaced, for good. The mark outlives both, and `interrupted_repricing` lists it.
        """
        bind = self._binder()
        tenant = f"tenant_id = {bind(tenant_id)}"
        table = self._table("repricing")
        with self.commit_lock:
            interrupted = bool(
                self._rows(bind.statement(f"SELECT count(*) FROM {table} WHERE {tenant}"))[0][0]
            )
            self._command(
                bind.statement(
                    f"INSERT INTO {table} (tenant_id, started_at) "
                    f"VALUES ({bind(tenant_id)}, {bind(datetime.now(UTC))})"
                )
            )
            yield interrupted
            self._delete(bind, "repricing", tenant)

    def interrupted_repricing(self) -> list[str]:
        """Tenants whose re-pricing began and did not finish. Every mark counts when no other
        process can be re-pricing meanwhile (`writes_alone`, checked under the commit lock);
        otherwise only marks older than ABANDONED_AFTER (a re-pricing that may still be
        running on another server is left alone)."""
        bind = self._binder()
        with self.commit_lock:
            where = ""
            if not self.writes_alone:
                where = f" WHERE started_at < {bind(datetime.now(UTC) - self.abandoned_after)}"
            rows = self._rows(
                bind.statement(
                    f"SELECT DISTINCT tenant_id FROM {self._table('repricing')}"
                    f"{where} ORDER BY tenant_id"
                )
            )
        return [row[0] for row in rows]

    def reprice(
        self,
        tenant_id: str,
        catalog: PriceCatalog,
        *,
        upload_id: str | None = None,
        since: PriceCatalog | None = None,
    ) -> int:
        """Re-price the tenant's catalog-priced and unpriced rows with `catalog`, after a user
        override changed: only those of `upload_id` when given, and only the models whose
        price differs from `since` when given. File-given costs are never touched; a row the
        new price would take to MAX_CALL_COST or more is left unpriced (`calls_over_cost_limit`
        lets a caller refuse such a price first). Returns the rows re-priced."""
        changed = 0
        with self.commit_lock:
            for provider, model, count, price in self._repriced_models(
                tenant_id, upload_id, catalog, since
            ):
                bind = self._binder()
                if price is None:
                    assignments = "cost_usd = NULL, cost_source = 'unpriced'"
                else:
                    cost = self._cost_terms(bind, price)
                    assignments = (
                        f"cost_usd = CASE WHEN {cost} < {MAX_CALL_COST} THEN CAST({cost} AS "
                        f"DECIMAL({COST_PRECISION}, {COST_SCALE})) END, cost_source = CASE WHEN "
                        f"{cost} < {MAX_CALL_COST} THEN 'catalog' ELSE 'unpriced' END"
                    )
                model_rows = f"provider = {bind(provider)} AND model = {bind(model)}"
                where = f"{self._repriced_scope(bind, tenant_id, upload_id)} AND {model_rows}"
                self._reprice_rows(
                    [
                        bind.statement(self._update_statement("usage", assignments, where)),
                        *self._rollup_refresh(tenant_id, model_rows, model_rows, None, bind.values),
                        *self._repeated_calls_refresh(tenant_id, model_rows, bind.values),
                    ]
                )
                changed += count
            self.rows_changed(tenant_id)
        return changed

    def _reprice_rows(self, statements: Sequence[Statement]) -> None:
        """One model's rows at their new cost and, in the same transaction, the tenant's
        rollups of that model: one step of a re-pricing, which `repricing` guards against
        being cut short between two."""
        self._write(statements)

    def calls_over_cost_limit(
        self, tenant_id: str, catalog: PriceCatalog, *, since: PriceCatalog
    ) -> int:
        """How many of the tenant's calls re-pricing with `catalog` would take to
        MAX_CALL_COST or more (a price that high is refused rather than applied)."""
        over = 0
        for provider, model, _count, price in self._repriced_models(
            tenant_id, None, catalog, since
        ):
            if price is not None:
                bind = self._binder()
                over += as_int(
                    self._rows(
                        bind.statement(
                            f"SELECT count(*) FROM {self._table('usage')} WHERE "
                            f"{self._repriced_scope(bind, tenant_id, None)} AND provider = "
                            f"{bind(provider)} AND model = {bind(model)} AND "
                            f"{self._cost_terms(bind, price)} >= {MAX_CALL_COST}"
                        )
                    )[0][0]
                )
        return over

    @staticmethod
    def _repriced_scope(bind: Binder, tenant_id: str, upload_id: str | None) -> str:
        scope = f"tenant_id = {bind(tenant_id)} AND cost_source <> 'file'"
        if upload_id is not None:
            scope += f" AND upload_id = {bind(upload_id)}"
        return scope

    def _repriced_models(
        self,
        tenant_id: str,
        upload_id: str | None,
        catalog: PriceCatalog,
        since: PriceCatalog | None,
    ) -> list[tuple[str, str, int, ModelPrice | None]]:
        """(provider, model, rows, new price) of the models of the re-priced rows whose price
        in `catalog` differs from the one in `since` (all of them without `since`)."""
        bind = self._binder()
        rows = self._rows(
            bind.statement(
                f"SELECT provider, model, count(*) FROM {self._table('usage')} "
                f"WHERE {self._repriced_scope(bind, tenant_id, upload_id)} "
                "GROUP BY provider, model"
            )
        )
        changed = []
        for provider, model, count in rows:
            price = catalog.resolve(model, provider)
            if since is None or since.resolve(model, provider) != price:
                changed.append((provider, model, as_int(count), price))
        return changed

    def unpriced_rows(self, tenant_id: str, upload_id: str) -> dict[tuple[str, str], int]:
        """Rows of one upload left without a price, by (provider, model)."""
        bind = self._binder()
        rows = self._rows(
            bind.statement(
                f"SELECT provider, model, count(*) FROM {self._table('usage')} WHERE "
                f"tenant_id = {bind(tenant_id)} AND upload_id = {bind(upload_id)} AND "
                "cost_source = 'unpriced' GROUP BY provider, model"
            )
        )
        return {(provider, model): as_int(count) for provider, model, count in rows}

    @staticmethod
    def _cost_terms(bind: Binder, price: ModelPrice) -> str:
        """A row's cost at `price`, exact, in the price band of the row's input size: token
        counts (at most 10^15) times prices per token (at most 1, see MAX_PRICE_PER_MILLION)
        fit 38 digits with 18 decimals."""
        million = Decimal(1_000_000)

        def terms(band: Rates) -> str:
            parts = (
                ("input_tokens - cached_input_tokens - cache_write_input_tokens", band.input),
                ("cached_input_tokens", band.cached_input),
                ("cache_write_input_tokens", band.cache_write),
                ("output_tokens - reasoning_tokens", band.output),
                ("reasoning_tokens", band.reasoning),
            )
            return (
                "("
                + " + ".join(
                    f"CAST({tokens} AS DECIMAL(18, 0)) * CAST({bind(per_million / million)} "
                    "AS DECIMAL(38, 18))"
                    for tokens, per_million in parts
                )
                + ")"
            )

        base, *tiers = price.bands()
        if not tiers:
            return terms(base)
        cases = " ".join(
            f"WHEN input_tokens >= {bind(int(band.min_input))} THEN {terms(band)}"
            for band in reversed(tiers)
        )
        return f"(CASE {cases} ELSE {terms(base)} END)"
