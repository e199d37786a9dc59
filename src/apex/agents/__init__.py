"""Agents: the supervisor workflow and its triage, data, data_helper, optimization, actions
and reporting agents (see docs/agents.md)."""
