"""What each intent needs: the analyses the data agent runs and the finders optimization runs.

The supervisor runs only what the plan's intent names here: a spend question reads its totals
and nothing else, a breakdown adds the breakdown, and only the intents that answer with
recommendations (cost reduction, budget, summary, caching, batching, model selection) run the
optimization finders, each only the kinds it is about.
"""

from __future__ import annotations

from dataclasses import dataclass

from apex.agents.analyses.finders import FINDERS
from apex.llm import Intent

ALL_FINDERS = tuple(FINDERS)


@dataclass(frozen=True, slots=True)
class IntentNeeds:
    # analyses beyond the scope's totals and per-model spend, which every answer reads
    analyses: tuple[str, ...] = ()
    # optimization finders; empty: no optimization, actions or recommendations
    finders: tuple[str, ...] = ()

    @property
    def recommends(self) -> bool:
        return bool(self.finders)


NEEDS: dict[Intent, IntentNeeds] = {
    Intent.COST_REDUCTION: IntentNeeds(finders=ALL_FINDERS),
    Intent.SPEND: IntentNeeds(),
    Intent.BREAKDOWN: IntentNeeds(analyses=("breakdown",)),
    Intent.WHAT_IF: IntentNeeds(analyses=("what_if",)),
    Intent.COMPARE: IntentNeeds(analyses=("compare_models",)),
    Intent.FORECAST: IntentNeeds(analyses=("forecast",)),
    Intent.BUDGET: IntentNeeds(finders=ALL_FINDERS),
    Intent.LATENCY: IntentNeeds(analyses=("latency",)),
    Intent.RELIABILITY: IntentNeeds(analyses=("reliability",)),
    Intent.CACHING: IntentNeeds(finders=("find_prompt_caching",)),
    Intent.BATCHING: IntentNeeds(finders=("find_batch_api",)),
    Intent.MODEL_SELECTION: IntentNeeds(finders=("find_model_routing",)),
    Intent.SUMMARY: IntentNeeds(finders=ALL_FINDERS),
    Intent.GREETING: IntentNeeds(),
    Intent.OFF_TOPIC: IntentNeeds(),
    Intent.UNSAFE: IntentNeeds(),
}
