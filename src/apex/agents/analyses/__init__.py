"""Every analysis a run can ask for, registered in `registry.ANALYSES` on import."""

from apex.agents.analyses import (
    budget,
    compare,
    finders,
    forecast,
    latency,
    reliability,
    usage,
    what_if,
)
from apex.agents.analyses.registry import (
    ANALYSES,
    Analysis,
    AnalysisArguments,
    AnalysisContext,
    run_analysis,
)

__all__ = [
    "ANALYSES",
    "Analysis",
    "AnalysisArguments",
    "AnalysisContext",
    "budget",
    "compare",
    "finders",
    "forecast",
    "latency",
    "reliability",
    "run_analysis",
    "usage",
    "what_if",
]
