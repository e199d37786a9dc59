"""Budgets, spend anomalies and the alerts they raise (PROTOCOL section 6)."""
