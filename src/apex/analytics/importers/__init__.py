"""File importers: each turns one format into batches of text columns named after the ledger.

`read_usage_file` picks the reader (by the caller's `format` or by sniffing) and yields
`RawBatch`es plus the rows it could not even split into fields; the normalizer does the rest.
"""
