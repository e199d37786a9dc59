"""Usage ledger: schema, importers, price catalog, queries, demo workload.

DuckDB embedded, ClickHouse scaled; see ledger.py for the surface callers use.
"""
