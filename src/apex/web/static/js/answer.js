// The answer card (PROTOCOL.md section 5): the question's own answer, shown before anything else
// of the report. The headline, every figure of `answer.figures` as a tile, `answer.table`, names
// the question gave that match nothing, and how the question was understood.

import { dataTable } from "./datatable.js";
import { h } from "./dom.js";
import { fieldLabel, fieldValue, period, usd } from "./format.js";

const INTENTS = {
  cost_reduction: "Cost reduction", spend: "Spend", breakdown: "Breakdown", what_if: "What if",
  compare: "Comparison", forecast: "Forecast", budget: "Budget", latency: "Latency",
  reliability: "Reliability", caching: "Prompt caching", batching: "Batching",
  model_selection: "Model selection", summary: "Summary", greeting: "Greeting",
  off_topic: "Off topic", unsafe: "Declined",
};

const FIGURES = {
  cost_usd: "Spend", requests: "Requests", current_monthly_usd: "Spend / month",
  achievable_monthly_savings_usd: "Achievable savings / month", target_pct: "Target",
  meets_target: "Meets the target", dimension: "Grouped by", current_cost_usd: "Current cost",
  projected_cost_usd: "Projected cost", monthly_savings_usd: "Savings / month",
  low_usd: "Low (95%)", high_usd: "High (95%)", budget_usd: "Budget / month",
  after_recommendations_monthly_usd: "After the recommendations / month", fits: "Fits the budget",
  p50_latency_ms: "p50 latency", p95_latency_ms: "p95 latency", errors: "Failed calls",
  error_rate: "Error rate", retry_waste_usd: "Cost of failed calls", worth_it: "Worth it",
};

const COLUMNS = {
  cost_usd: "Spend", cost_per_1k_requests_usd: "Per 1k requests", p95_latency_ms: "p95 latency",
  status: "Error", errors: "Failed calls",
};

const SCOPE = [
  ["models", "Models"], ["target_models", "Moving to"], ["providers", "Providers"],
  ["features", "Features"],
];

function present(value) {
  return value !== null && value !== undefined;
}

function figureTiles(figures) {
  const entries = Object.entries(figures || {});
  if (!entries.length) return null;
  const tile = ([name, value]) => h("div", {
    class: "tile", testid: "answer-figure", dataset: { figure: name, missing: !present(value) },
  },
  h("dt", {}, FIGURES[name] || fieldLabel(name)),
  h("dd", {}, name === "dimension" ? fieldLabel(value) : fieldValue(name, value)));
  return h("dl", { class: "tiles", testid: "answer-figures" }, entries.map(tile));
}

function answerTable(rows, dimension) {
  if (!Array.isArray(rows) || !rows.length) return null;
  const label = (name) => (name === "key" ? fieldLabel(dimension || "key")
    : COLUMNS[name] || fieldLabel(name));
  return dataTable(rows, { label, testid: "answer-table" });
}

function unknownNames(names) {
  if (!names?.length) return null;
  return h("p", { class: "warning", testid: "unknown-names" },
    h("strong", {}, "Not found in your data or the price catalog: "),
    names.map((name, i) => [i ? ", " : "", h("code", {}, name)]),
    `. Nothing was computed for ${names.length === 1 ? "it" : "them"}.`);
}

function understood(question) {
  const intent = INTENTS[question.intent] || fieldLabel(question.intent || "question");
  const parts = [h("span", { class: "intent", testid: "question-intent" }, intent)];
  const asked = period(question.period);
  if (asked) parts.push(h("span", { testid: "question-period" }, asked));
  for (const [key, label] of SCOPE) {
    const names = question[key];
    if (!names?.length) continue;
    const chip = (name) => h("span", {
      class: "scope-chip", testid: "scope-chip", dataset: { scope: key },
    }, name);
    parts.push(h("span", { class: "scope" }, `${label}:`, names.map(chip)));
  }
  if (present(question.target_pct)) {
    parts.push(h("span", {}, `Target: ${fieldValue("target_pct", question.target_pct)}`));
  }
  if (present(question.budget_usd)) {
    parts.push(h("span", {}, `Budget: ${usd(question.budget_usd)} / month`));
  }
  return h("div", { class: "understood", testid: "question-understood" },
    h("span", { class: "label" }, "Understood as"), parts);
}

// a page of this app named in a headline, as "(#/budgets)": shown as a link to it
const APP_LINK = /\((#\/[a-z]+)\)/g;

/** The headline as text, with the app's own pages it names as links (nothing else is). */
function headline(text) {
  const page = (route) => route.charAt(2).toUpperCase() + route.slice(3);
  return text.split(APP_LINK).map((part, i) => (i % 2
    ? ["(", h("a", { href: part, testid: "answer-link" }, `open ${page(part)}`), ")"]
    : part));
}

/** The card answering the question of a report that carries `answer`. */
export function renderAnswer(report) {
  const { answer, question } = report;
  const attrs = { class: "answer-card", testid: "answer", dataset: { intent: question?.intent } };
  return h("article", attrs,
    h("p", { class: "headline", testid: "answer-headline" }, headline(String(answer.headline ?? ""))),
    unknownNames(question?.unknown),
    figureTiles(answer.figures),
    answerTable(answer.table, answer.figures?.dimension),
    question ? understood(question) : null);
}
