"""Language models: one protocol; the built-in deterministic engine; OpenAI-compatible and Anthropic adapters.

The public surface is re-exported here; `apex.llm.factory.build_language_model` builds the
configured model from Settings.
"""

from apex.llm.base import (
    ChatMessage,
    ChatResponse,
    ChatSettings,
    FallbackNotice,
    LanguageModel,
    ProseDelta,
    ProseEnd,
    ProseEvent,
    ProseRestart,
    RejectedToolCall,
    ToolCall,
    ToolSpec,
)
from apex.llm.builtin import BuiltinModel
from apex.llm.errors import LanguageModelError, LlmFailureReason
from apex.llm.fallback import FallbackModel
from apex.llm.metered import LlmCallRecord, LlmUsageRecorder, MeteredModel
from apex.llm.plan import (
    CONVERSATIONAL,
    ClassificationFlag,
    Intent,
    QuestionPlan,
    ReductionTarget,
    RequestCategory,
    RequestedPeriod,
    RequestEntities,
    SpendBudget,
)
from apex.llm.prompts import plan_messages, prose_messages, tool_messages
from apex.llm.prose import ProseBrief, ProseKind
from apex.llm.usage import LlmUsage

__all__ = [
    "CONVERSATIONAL",
    "BuiltinModel",
    "ChatMessage",
    "ChatResponse",
    "ChatSettings",
    "ClassificationFlag",
    "FallbackModel",
    "FallbackNotice",
    "Intent",
    "LanguageModel",
    "LanguageModelError",
    "LlmCallRecord",
    "LlmFailureReason",
    "LlmUsage",
    "LlmUsageRecorder",
    "MeteredModel",
    "ProseBrief",
    "ProseDelta",
    "ProseEnd",
    "ProseEvent",
    "ProseKind",
    "ProseRestart",
    "ReductionTarget",
    "RequestCategory",
    "QuestionPlan",
    "RequestEntities",
    "RequestedPeriod",
    "SpendBudget",
    "plan_messages",
    "prose_messages",
    "tool_messages",
    "RejectedToolCall",
    "ToolCall",
    "ToolSpec",
]
