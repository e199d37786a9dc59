"""The recommendation kinds of PRODUCT.md, one module each, all computed from the rows.

Each module has `find(data, scope, catalog) -> list[Opportunity]`.
"""
