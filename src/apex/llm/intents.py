"""Which question of PROTOCOL.md section 5 a message asks: weighted cue patterns per intent.

Each intent has cues in English, German and French, each with a weight; the entities of the text
are cues too (a target model makes a what-if, a named budget a budget question, "next month" a
forecast). The highest total wins if it reaches `MIN_SCORE`; a tie goes to the intent earlier in
`TIE_ORDER`, the more specific question before the more general one. The conversational intents
are decided here as well, but only when no analysis intent is cued: a greeting opens the
message, an off-topic cue names another domain, or nothing at all is said about LLM usage.
Whether a message is `unsafe` depends on what screening removed, so `classify` decides that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from apex.llm.plan import Intent, RequestEntities

Cue = tuple[re.Pattern[str], float]
MIN_SCORE = 2.0
MAX_SIGNALS = 20


def _cues(*pairs: tuple[str, float]) -> tuple[Cue, ...]:
    return tuple((re.compile(pattern), weight) for pattern, weight in pairs)


CUES: dict[Intent, tuple[Cue, ...]] = {
    Intent.WHAT_IF: _cues(
        (
            r"\bwhat (?:would|if|happens if|could)\b|\bhow much (?:would|could) (?:we|i)\b"
            r"|\bwas (?:würde|wäre|passiert|würden|könnten)\b|\bwie ?viel (?:würden|könnten)\b"
            r"|\bque se passerait|\bcombien (?:économiserions|économiserait|gagnerions)",
            3,
        ),
        (
            r"\b(?:switch\w*|mov(?:e|es|ed|ing)|migrat\w*|swap\w*|replac\w*|downgrad\w*"
            r"|wechsel\w*|umstell\w*|umstieg|umsteig\w*|migrier\w*|ersetz\w*|tausch\w*|passer"
            r"|remplac\w*|migrer)\b",
            2,
        ),
        (
            r"\b(?:would|würde|würden)\b.{0,60}\b(?:save|cost|sparen|kosten)\b"
            r"|\b(?:économiserait|coûterait)\b",
            2,
        ),
        (r"\b(?:instead of|rather than|statt|anstatt|anstelle|au lieu de)\b", 1),
    ),
    Intent.COMPARE: _cues(
        (r"\bcompar(?:e|es|ed|ing|ison)\b|\bvergleich\w*|\bcompar(?:er|ez|aison)\b", 4),
        (
            r"\b(?:vs\.?|versus|side by side|head to head|gegenüber|im gegensatz zu"
            r"|par rapport à)\b",
            3,
        ),
        (r"\bdifference between\b|\bunterschied zwischen\b|\bdifférence entre\b", 3),
        (
            r"\b(?:cheaper|faster|better|slower|pricier|günstiger|billiger|schneller|besser"
            r"|moins cher|plus rapide)\s+(?:than|als|que)\b",
            2,
        ),
        (r"\bhow does\b.{0,40}\bstack up\b", 2),
    ),
    Intent.FORECAST: _cues(
        (
            r"\b(?:forecast\w*|project(?:ed|ion|ions)|predict\w*|extrapolat\w*|run[- ]?rate"
            r"|prognos\w*|vorhersag\w*|hochrechnung\w*|voraussichtlich\w*|prévision\w*|prévoir"
            r"|projection\w*)\b",
            4,
        ),
        (
            r"\bwhat will (?:i|we|it|my|our)\b|\bhow much will\b|\bwill (?:we|i) (?:spend|pay)\b"
            r"|\b(?:going to|gonna) (?:spend|cost|pay)\b|\bwas werden (?:wir|ich)\b"
            r"|\bwie ?viel werden\b|\bwerden (?:wir|ich)\b.{0,40}\bausgeben\b"
            r"|\bcombien (?:allons|vais|va)[- ]"
            r"|\bque (?:allons|vais)[- ]",
            3,
        ),
        (
            r"\b(?:next|coming|upcoming) (?:week|month|quarter|year)\b|\bend of (?:the )?(?:month"
            r"|quarter|year)\b|\b(?:nächste[nrs]?|kommende[nrs]?) (?:woche|monat|quartal|jahr)\b"
            r"|\b(?:mois|semaine|trimestre|année) prochaine?\b",
            2,
        ),
        (
            r"\b(?:capacity|throughput|headroom|provisioned|ptu|reserved capacity|kapazität"
            r"|durchsatz|capacité|débit)\b",
            3,
        ),
        (
            r"\b(?:scale|scaling|grow|growing|growth|doubles?|doubling|tripl\w*|10x|peak|peaks"
            r"|burst|bursts|wachstum|wachsen|verdoppel\w*|croissance|doubler)\b",
            2,
        ),
        (
            r"\bhandle\b.{0,30}?\b(?:traffic|load|volume|requests|spikes?|peaks?)\b"
            r"|\b(?:tpm|rpm|rps|qps|tokens per (?:minute|second)|requests per (?:minute|second))\b"
            r"|\bsustain\b",
            2,
        ),
    ),
    Intent.BUDGET: _cues(
        (r"\bbudget\w*\b|\bbudgétaire\b", 3),
        (
            r"\b(?:do|will|would|does|can) (?:we|i|it|this|that) fit\b|\bfit (?:in|into|within"
            r"|under)\b|\bstay (?:under|within|below)\b|\bwithin (?:our |my |the )?(?:limit|cap)\b"
            r"|\bcan (?:we|i) afford\b|\bafford\w*\b|\bpasst (?:das|es)\b|\bpassen wir\b"
            r"|\breicht (?:das|es)\b|\breichen\b|\bim rahmen\b"
            r"|\b(?:unter|innerhalb)\b.{0,30}\bbleiben\b"
            r"|\bleisten\b|\best-ce que (?:ça|cela|on) (?:passe|tient|rentre)\b"
            r"|\brester (?:sous|dans|en dessous)\b|\bsuffi(?:t|sant)\b",
            3,
        ),
        (r"\b(?:cap|capped|ceiling|spending limit|obergrenze|deckel|plafond)\b", 2),
    ),
    Intent.CACHING: _cues(
        (
            r"\b(?:prompt[- ]caching|cach(?:e|es|ed|ing)|cache hits?|cached tokens?"
            r"|zwischenspeicher\w*|mise en cache)\b|\bprompt-cach\w*",
            5,
        ),
        (
            r"\b(?:repeated|duplicate|identical) (?:prompts?|requests?|calls?|prefix\w*)\b"
            r"|\bsystem prompt prefix\b",
            2,
        ),
    ),
    Intent.BATCHING: _cues(
        (
            r"\b(?:batch(?:es|ed|ing)?|batch api|bulk|stapelverarbeitung|gebündelt\w*"
            r"|par lots|traitement par lots)\b|\bbatch-\w+",
            5,
        ),
        (
            r"\b(?:nightly|overnight|offline|asynchronous|async|nächtlich\w*|nocturne)\b"
            r".{0,20}\b(?:jobs?|processing|runs?|verarbeitung|traitements?)\b",
            2,
        ),
    ),
    Intent.RELIABILITY: _cues(
        (
            r"\b(?:fail|fails|failing|failed|failures?|errors?|erroring|error rate|retry|retries"
            r"|retried|outages?|flaky|broken|crash\w*|5\d\d s?|429s?|rate[- ]limited"
            r"|rate limits?|throttl\w*|timeouts?|timed out|reliab\w*|success rate"
            r"|fehler\w*|fehlgeschlagen\w*|scheiter\w*|ausf[äa]ll\w*|wiederhol\w*|zuverlässig\w*"
            r"|abbr[üu]ch\w*|échou\w*|erreurs?|échecs?|plant\w*|fiabilité|nouvelles tentatives)\b",
            4,
        ),
        (r"\bschlag\w*\b.{0,60}\bfehl\b|\bfehl(?:schlag\w*|geschlagen)\b", 4),
    ),
    Intent.LATENCY: _cues(
        (r"\b(?:latency|latencies|latenz\w*|latence\w*)\b", 4),
        (
            r"\bp(?:50|75|90|95|99)\b|\bpercentile\b|\bperzentil\b|\bttft\b"
            r"|\btime to first token\b",
            4,
        ),
        (
            r"\b(?:slow|slower|slowest|sluggish|laggy|lag|lagging|delay|delays|delayed|langsam\w*"
            r"|verzögerung\w*|träge|lent|lente|lents|lentes|lenteur)\b",
            3,
        ),
        (
            r"\b(?:response|wait|waiting|load|processing) times?\b|\btakes? (?:too |so )?long\b"
            r"|\bantwortzeit\w*|\bdauer(?:t|n)\b.{0,30}\blange?\b|\btemps de réponse\b",
            3,
        ),
        (
            r"\b(?:fast|faster|fastest|speed|speed up|quick|quicker|snappy|responsive|schnell\w*"
            r"|geschwindigkeit|rapide|rapidité|vitesse)\b",
            2,
        ),
        (r"\b(?:hangs?|stall\w*)\b", 2),
    ),
    Intent.MODEL_SELECTION: _cues(
        (
            r"\b(?:which|what) (?:llm|model)s? (?:should|to|would|could|is (?:best|right)|for"
            r"|do you recommend)\b|\bwelche[sn]? (?:modell|llm)\w* (?:soll\w*|für|nehmen|nutzen"
            r"|eignet|ist am besten|empfiehlst)\b|\bquel(?:le)?s? (?:modèle|llm)s? (?:utiliser"
            r"|devrions|choisir|pour|recommandes?)\b",
            4,
        ),
        (
            r"\b(?:best|right|better|alternative|smaller|cheaper|cheapest|faster|open[- ]source"
            r"|open[- ]weights?|other|different|another|lighter) (?:llm|model)s?\b"
            r"|\b(?:bessere[ns]?|beste[ns]?|günstigere[ns]?|billigere[ns]?|kleinere[ns]?"
            r"|andere[ns]?|passende[ns]?) (?:modell|llm)\w*"
            r"|\b(?:meilleur|autre) modèle\b|\bmodèle (?:moins cher|plus petit|plus rapide)\b",
            3,
        ),
        (
            r"\bmodel (?:choice|selection|routing|mix)\b|\bmodell(?:wahl|auswahl)\b"
            r"|\bchoix du modèle\b|\brout(?:e|es|ed|ing)\b|\brouter\b",
            3,
        ),
        (
            r"\bshould (?:i|we) use\b|\bsollten wir\b.{0,40}\b(?:nutzen|verwenden|einsetzen|nehmen)\b"
            r"|\bdevrions[- ]nous utiliser\b",
            2,
        ),
        (
            r"\b(?:good enough|quality|accuracy|capable|smart enough|qualität|genauigkeit"
            r"|qualité|précision)\b",
            1,
        ),
        (r"\bworth (?:it|using|switching)\b|\blohnt sich\b|\bvaut[- ]il\b", 1),
    ),
    Intent.BREAKDOWN: _cues(
        (
            r"\b(?:which|what) (?:features?|models?|providers?|teams?|endpoints?|use cases?"
            r"|workloads?|tags?)\b.{0,40}\b(?:most|least|biggest|largest|highest|lowest"
            r"|expensive|costliest)\b"
            r"|\bwelche[rsmn]? (?:feature|funktion|modell|anbieter|provider)\w*\b.{0,40}"
            r"\b(?:am meisten|am teuersten|am wenigsten|meisten|höchsten|teuerste\w*)\b"
            r"|\bquel(?:le)?s? (?:fonctionnalité|modèle|fournisseur)s?\b.{0,40}"
            r"\b(?:le plus|plus cher|coûte le plus)\b",
            4,
        ),
        (
            r"\b(?:by|per|for each|across) (?:models?|features?|providers?|vendors?|tags?"
            r"|use cases?|workloads?)\b|\b(?:nach|pro|je) (?:modell|feature|funktion|anbieter"
            r"|provider)\w*\b|\bpar (?:modèle|fonctionnalité|fournisseur)s?\b",
            3,
        ),
        (
            r"\bbreak ?down\b|\bbreakdown\b|\bsplit\b|\baufschlüssel\w*|\baufteilung\b"
            r"|\brépartition\b|\bventilation\b",
            3,
        ),
        (
            r"\bwhere (?:is|does|did|are)\b.{0,30}\b(?:money|spend|spending|budget|costs?)\b"
            r".{0,12}\bgo(?:ing|es)?\b"
            r"|\bwhere (?:is|does|did|are) (?:my|our|the) (?:money|spend|budget|costs?)\b"
            r"|\bwhat(?:'s| is| are) (?:driving|eating)\b|\bwohin (?:geht|fließt)\b"
            r"|\bmost expensive\b|\bcostliest\b|\bam teuersten\b|\ble plus cher\b",
            3,
        ),
        (
            r"\b(?:bill|spend|spending|costs?|kosten|ausgaben|rechnung|facture|coûts?|dépenses)"
            r" (?:doubled|tripled|went up|increased|jumped|spiked|grew|rose|exploded|gestiegen"
            r"|verdoppelt|explodiert|a doublé|a augmenté|ont augmenté)\b|\bwhy (?:is|are|did|has"
            r"|have) (?:my|our|the) (?:bill|spend|costs?)\b|\bwarum (?:ist|sind) (?:unsere|die)"
            r" (?:rechnung|kosten|ausgaben)\b",
            3,
        ),
    ),
    Intent.COST_REDUCTION: _cues(
        (
            r"\b(?:cut|cutting|reduce|reducing|lower|lowering|decrease|trim|slash|optimi[sz]e"
            r"|optimi[sz]ing|minimi[sz]e|shrink|bring down|get (?:it |this |costs? )?down|save"
            r"|saving|savings)\b",
            2,
        ),
        (
            r"\b(?:senken|reduzieren|verringern|sparen|einsparen|einsparung\w*|optimieren|kürzen"
            r"|réduire|baisser|diminuer|économiser|économies|optimiser)\b",
            2,
        ),
        (
            r"\b(?:too (?:much|high|expensive)|overpay\w*|overspend\w*|wast\w*|expensive|pricey"
            r"|zu teuer|zu hoch|verschwend\w*|trop cher|gaspill\w*)\b",
            2,
        ),
        (r"\b(?:costs?|bills?|spend|spending|kosten|rechnung|coûts?|factures?)\b", 1),
        (
            r"\bhow (?:do|can|could|should) (?:we|i)\b.{0,40}\b(?:bring|get|cut|reduce|lower)\b"
            r".{0,20}\b(?:down|less|costs?|spend|bill)\b|\bbring (?:it|this|them|that) down\b",
            3,
        ),
        (
            r"\b(?:cheapest|cheaper) way\b|\bgünstigste\w* (?:weg|art)\b"
            r"|\b(?:le moyen|la façon) la moins chère\b",
            3,
        ),
    ),
    Intent.SUMMARY: _cues(
        (
            r"\bsummary\b|\bsummari[sz]e\b(?! (?:feature|endpoint|calls|requests|job))"
            r"|\bzusammenfass(?:en|e)\b|\bfass\w* .{0,60}\bzusammen\b"
            r"|\b(?:eine|kurze|kurzen) zusammenfassung\b|\brésum(?:é|er|ez|e)\b|\bsynthèse\b",
            4,
        ),
        (
            r"\btell (?:me|us) about\b|\banaly[sz]e (?:my|our)\b"
            r"|\berzähl\w* (?:mir|uns) (?:von|über)\b|\banalysiere (?:meine|unsere)\b",
            3,
        ),
        (
            r"\b(?:report|overview|recap|digest|executive|cfo|ceo|cto|board|leadership"
            r"|management|stakeholders?|one[- ]pager|one[- ]paragraph|paragraph|tl;?dr"
            r"|überblick|übersicht|bericht|geschäftsführung|vorstand|aperçu|vue d'ensemble"
            r"|rapport|direction)\b",
            3,
        ),
    ),
    Intent.SPEND: _cues(
        (
            r"\bhow much (?:did|have|do|does|am|are|was|were|is|has) (?:i|we|my|our|it|the)\b"
            r"|\bwhat (?:did|have|do) (?:i|we) spen[dt]\b|\bwhat(?:'s| is| was) (?:my|our|the)"
            r" (?:total |current )?(?:spend|bill|cost)\b"
            r"|\bhow much (?:did|does|do|has|have|was|were|is|are)\b.{0,60}\b(?:cost|costs|spen[dt]"
            r"|pay|paid)\b|\bwhat (?:did|does|do|has)\b.{0,60}\bcost\b"
            r"|\bwie ?viel (?:haben|hat|habe|kostet|kosteten|kostete|zahlen|zahlten|geben)\b"
            r"|\bwas (?:hat|haben|kostet|kosteten)\b.{0,60}\bgekostet\b"
            r"|\bwie hoch (?:waren|war|sind|ist) (?:die|unsere) (?:kosten|ausgaben)\b"
            r"|\bwas (?:haben|hat) (?:wir|ich)\b.{0,40}\bausgegeben\b"
            r"|\bcombien (?:avons|ai|a|as|avez)[- ]",
            4,
        ),
        (
            r"\b(?:spent|total (?:spend|cost|bill)|ausgegeben|ausgaben|gesamtkosten|bezahlt"
            r"|dépensé|dépenses|coût total)\b",
            2,
        ),
        (
            r"\b(?:show|give|tell|list)\b.{0,20}\b(?:spend|spending|costs?|usage|bill)\b"
            r"|\bzeig\w*\b.{0,20}\b(?:ausgaben|kosten|nutzung)\b",
            2,
        ),
        (r"\b(?:bill|invoice|rechnung|facture)\b", 1.5),
        (r"\b(?:spend|spending)\b", 1),
    ),
}
TIE_ORDER = (
    Intent.WHAT_IF,
    Intent.COMPARE,
    Intent.FORECAST,
    Intent.BUDGET,
    Intent.CACHING,
    Intent.BATCHING,
    Intent.RELIABILITY,
    Intent.LATENCY,
    Intent.MODEL_SELECTION,
    Intent.BREAKDOWN,
    Intent.COST_REDUCTION,
    Intent.SUMMARY,
    Intent.SPEND,
)

GREETING = re.compile(
    r"^\W*(?:hi|hello|hey|howdy|help|thanks|thank you|good (?:morning|afternoon|evening)"
    r"|hallo|servus|moin|guten (?:morgen|tag|abend)|grüß gott|danke|vielen dank|hilfe"
    r"|bonjour|bonsoir|salut|coucou|merci|aide)\b"
    r"|\bwhat can you do\b|\bhow do(?:es)? (?:this|you|apex) work\b|\bget started\b"
    r"|\bwho are you\b|\bwas kannst du\b|\bwie funktionierst du\b|\bwer bist du\b"
    r"|\bque (?:peux|sais)[- ]tu faire\b|\bqui es[- ]tu\b"
)
OFF_TOPIC = re.compile(
    r"\b(?:weather|recipe|cook\w*|bake|baking|poem|poetry|joke|song|lyrics|movie"
    r"|film|football|soccer|basketball|world cup|president|election|capital of|flights?|hotels?"
    r"|vacation|holiday|horoscope|homework|essay|dating|girlfriend|boyfriend|bitcoin|crypto"
    r"|stock price|car|cars|rent|mortgage|groceries|restaurant|translate (?:this|the following)"
    r"|story|novel|birthday|pizza|coffee|wine|dog|cat"
    r"|wetter|rezept\w*|kochen|backen|gedicht\w*|witz\w*|fußball|urlaub|flug|flüge"
    r"|hauptstadt|präsident\w*|wahl|hund|katze\w*|geburtstag|kaffee|wein|miete"
    r"|météo|recette\w*|cuisine|poème\w*|blague\w*|chanson\w*|vacances|capitale|anniversaire"
    r"|chien|vin|loyer)s?\b"
)
LLM_DOMAIN = re.compile(
    r"\b(?:llms?|ai|genai|gen ai|ki|ia|models?|modell\w*|modèles?|tokens?|prompts?|completions?"
    r"|inference|apis?|endpoints?|providers?|anbieter\w*|fournisseurs?|embeddings?|chatbots?"
    r"|agents?|rag|workloads?|apex|gpt\S*|claude|gemini|llama|mistral|openai|anthropic|bedrock"
    r"|vertex|litellm|langfuse|helicone|cach\w*|batch\w*|latency|latenz|latence|ttft"
    r"|throughput|rate limits?)\b"
)
USAGE_WORDS = re.compile(
    r"\b(?:usage|requests|calls|traffic|features?|responses?|spend|spending|costs?|bills?"
    r"|budget|nutzung|anfragen|aufrufe|antworten|kosten|ausgaben|rechnung|utilisation|requêtes"
    r"|appels|réponses"
    r"|coûts?|dépenses|facture)\b"
)


@dataclass(frozen=True, slots=True)
class IntentVerdict:
    """The intent of one message; `cued` says whether any cue (not a default) decided it."""

    intent: Intent
    score: float
    margin: float
    cued: bool
    off_domain: bool
    signals: tuple[str, ...]


def _entity_boosts(entities: RequestEntities) -> dict[Intent, float]:
    """Entities are cues too: a target model, two models, a budget, a target, a future period."""
    boosts: dict[Intent, float] = {}

    def add(intent: Intent, weight: float) -> None:
        boosts[intent] = boosts.get(intent, 0.0) + weight

    if entities.target_models:
        add(Intent.WHAT_IF, 4)
    elif len(entities.models) >= 2:
        add(Intent.COMPARE, 1.5)
    if entities.budgets:
        add(Intent.BUDGET, 3)
    for target in entities.targets:
        metric = target.metric or "cost"
        add(
            {"latency": Intent.LATENCY, "errors": Intent.RELIABILITY}.get(
                metric, Intent.COST_REDUCTION
            ),
            3,
        )
    if entities.percentiles or entities.latency_target_ms is not None:
        add(Intent.LATENCY, 2)
    if entities.period is not None and entities.period.is_future:
        add(Intent.FORECAST, 3)
    if entities.dimension is not None:
        add(Intent.BREAKDOWN, 2)
    return boosts


def _scores(text: str, entities: RequestEntities) -> tuple[dict[Intent, float], list[str]]:
    scores = _entity_boosts(entities)
    signals: list[str] = []
    for intent, cues in CUES.items():
        for pattern, weight in cues:
            match = pattern.search(text)
            if match:
                scores[intent] = scores.get(intent, 0.0) + weight
                signals.append(match.group(0)[:80])
    return scores, signals


def _conversational(text: str, named: bool) -> tuple[Intent, bool]:
    """The intent of a message no analysis cue claims, and whether it is about something else.

    Named models, providers or features, or words about usage and spend, make it an LLM-usage
    question with no particular ask: a summary. A greeting opens the conversation. Anything
    else, and anything with an other-domain cue, is off topic; it is plainly about something
    else when nothing in it is about LLMs.
    """
    llm_domain = named or bool(LLM_DOMAIN.search(text))
    if OFF_TOPIC.search(text):
        return Intent.OFF_TOPIC, not llm_domain
    if GREETING.search(text):
        return Intent.GREETING, False
    if llm_domain or USAGE_WORDS.search(text):
        return Intent.SUMMARY, False
    return Intent.OFF_TOPIC, False


def decide_intent(text: str, entities: RequestEntities) -> IntentVerdict:
    """The intent of normalised, screened `text` with the entities read from it.

    An analysis cue wins unless the text is plainly about another domain ("how much does a
    flight to Tokyo cost?"): an other-domain cue with nothing about LLMs in it.
    """
    if not text:
        return IntentVerdict(Intent.OFF_TOPIC, 0.0, 0.0, False, False, ())
    scores, signals = _scores(text, entities)
    ranked = sorted(
        TIE_ORDER, key=lambda intent: (-scores.get(intent, 0.0), TIE_ORDER.index(intent))
    )
    top, second = scores.get(ranked[0], 0.0), scores.get(ranked[1], 0.0)
    named = bool(
        entities.models or entities.target_models or entities.providers or entities.features
    )
    intent, off_domain = _conversational(text, named)
    cued = top >= MIN_SCORE and not off_domain
    return IntentVerdict(
        ranked[0] if cued else intent,
        top,
        top - second,
        cued,
        off_domain,
        tuple(signals[:MAX_SIGNALS]),
    )
