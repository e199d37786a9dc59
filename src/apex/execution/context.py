"""The immutable identity every run and every piece of work inside it carries.

It is validated once, at construction, so code holding one never re-checks who it acts for.
A sub-agent gets a child context: same user, thread, run and request, its own agent name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

SUPERVISOR = "supervisor"
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_AGENT = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class InvalidContext(ValueError):
    """A context field is missing or malformed: a programming error, never user input."""


@dataclass(frozen=True, slots=True)
class UserExecutionContext:
    user_id: str
    thread_id: str
    run_id: str
    request_id: str
    agent_name: str = SUPERVISOR
    parent_agent: str | None = None

    def __post_init__(self) -> None:
        for name in ("user_id", "thread_id", "run_id", "request_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _ID.match(value):
                raise InvalidContext(
                    f"{name} must be a non-empty id of at most 64 safe characters, got {value!r}"
                )
        for name in ("agent_name", "parent_agent"):
            value = getattr(self, name)
            if value is None and name == "parent_agent":
                continue
            if not isinstance(value, str) or not _AGENT.match(value):
                raise InvalidContext(f"{name} must be a lowercase identifier, got {value!r}")

    def child(self, agent_name: str) -> UserExecutionContext:
        """The context of a sub-agent: same user, thread, run and request."""
        return replace(self, agent_name=agent_name, parent_agent=self.agent_name)
