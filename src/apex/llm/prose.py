"""The facts a piece of prose is written from.

Numbers come from the data and the price catalog, never from a language model: the caller
computes them, puts them in a `ProseBrief`, and the model (provider or built-in templates) only
words them. `report` follows the report shape of PROTOCOL.md section 4, so no second report type
exists in this layer.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from apex.llm.plan import QuestionPlan


class ProseKind(StrEnum):
    ANSWER = "answer"
    GUIDANCE = "guidance"
    PARTIAL = "partial"


class ProseBrief(BaseModel):
    """What to write and from which numbers.

    - `answer`: the final response to the question, from a full report.
    - `guidance`: there is no usable data; explain what to upload and how.
    - `partial`: the data lacks what the question needs (`missing` names it, e.g. "latency_ms");
      say what could be computed and how to get the rest.

    In `report`, `traffic_share` is a fraction (0 to 1) and `savings_pct` a percentage (0 to 100).
    """

    model_config = ConfigDict(frozen=True)

    kind: ProseKind
    question: str = Field(default="", max_length=20_000)
    classification: QuestionPlan | None = None
    report: dict[str, Any] = Field(default_factory=dict)
    missing: list[str] = Field(default_factory=list, max_length=50)
