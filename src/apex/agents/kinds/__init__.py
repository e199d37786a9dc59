"""The recommendation kinds of PRODUCT.md, one module each, all computed from the rows.

Each kind module has `find(data, scope, catalog) -> list[Opportunity]`, and states in its
docstring the signal, the saving, the spend it acts on, and how its confidence and risk follow
from the evidence (`confidence`). `fallbacks` picks a model the caller already runs to fall
back to.
"""
