"""Which of a tenant's rows a read covers besides its period: named models, providers, features.

A question's scope ("gpt-4o only", "summarization on anthropic") narrows every figure of its
answer, so the narrowing happens in the ledger's own statements rather than on groups read back:
a percentile of a scope cannot be put together from the percentiles of its groups. Names are the
rows' own spellings (triage matched the question's names against them), compared exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# the feature of the platform's own language-model calls (self-metering): left out of analyses
# unless a question names it
OWN_CALLS_FEATURE = "apex"


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """Rows whose model, provider and feature are among the named ones (an empty tuple does not
    narrow), without those of `exclude_features`."""

    models: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    exclude_features: tuple[str, ...] = ()

    def clauses(self, table: str = "") -> tuple[tuple[str, dict[str, str]], ...]:
        """(SQL condition, the values its placeholders take) for each dimension that narrows;
        `table` qualifies the columns (a statement that joins the rows to something else).
        Plain `IN` lists: DuckDB and ClickHouse compare them per row far faster than a list
        function."""
        prefix = f"{table}." if table else ""
        parts = []
        for key, column, negate, names in (
            ("m", "model", False, self.models),
            ("p", "provider", False, self.providers),
            ("f", "feature", False, self.features),
            ("x", "feature", True, self.exclude_features),
        ):
            if not names:
                continue
            values = {f"f_{key}{index}": name for index, name in enumerate(names)}
            listed = ", ".join(f":{placeholder}" for placeholder in values)
            parts.append((f"{prefix}{column} {'NOT IN' if negate else 'IN'} ({listed})", values))
        return tuple(parts)

    def excludes(self, feature: str) -> bool:
        """True when no row of `feature` can be among the rows this filter keeps."""
        return feature in self.exclude_features or (
            bool(self.features) and feature not in self.features
        )


EVERY_ROW = UsageFilter()
# every row but the platform's own calls
ANALYSED_ROWS = UsageFilter(exclude_features=(OWN_CALLS_FEATURE,))


def analysed_rows(features: Iterable[str]) -> UsageFilter:
    """What an analysis of a tenant whose rows have `features` reads: every row but the
    platform's own calls. A tenant without such calls gets no condition at all, so its
    statements stay the plain ones (and any answer prepared for them is served)."""
    return ANALYSED_ROWS if OWN_CALLS_FEATURE in set(features) else EVERY_ROW
