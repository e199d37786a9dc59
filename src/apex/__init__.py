"""Apex: a self-hostable, multi-user AI-spend optimization co-pilot."""

__version__ = "0.1.0"
