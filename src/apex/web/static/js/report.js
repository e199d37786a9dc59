// The final report (PROTOCOL.md sections 4 and 5), each part shown once: the answer to the
// question first, then the prose, then the recommendations ranked by monthly savings, the action
// plan with copyable config snippets and the spend by model, collapsed until opened; Markdown and
// JSON export last. A report from before `answer` existed shows its Markdown in the answer's place.

import { renderAnswer } from "./answer.js";
import { dataTable } from "./datatable.js";
import { announce, copyText, downloadText, h, toast } from "./dom.js";
import { renderEvidence } from "./evidence.js";
import { fieldLabel, integer, isoDay, level, pct, period, rate, usd } from "./format.js";
import { renderMarkdown } from "./markdown.js";

// The Markdown holds, in order, the headline, how the question was understood (and any unknown
// names), the figures and table, the prose, then these sections (docs/agents.md); the answer card
// and the sections below show all but the prose from the report's own fields.
const SECTIONS = /^## (Recommendations|Action plan|Spend by model)\b/;
const ANSWERED_PREAMBLE = [/^\*Understood as\b/, /^\*\*Not found in your data\b/, /^\|/];

/** Recommendations, largest monthly saving first. */
export function rankRecommendations(recommendations) {
  return [...(recommendations || [])].sort(
    (a, b) => (Number(b.monthly_savings_usd) || 0) - (Number(a.monthly_savings_usd) || 0));
}

/** Markdown split at blank lines into blocks, a fenced code block kept whole. */
function markdownBlocks(markdown) {
  const blocks = [];
  let lines = [];
  let fence = null;
  for (const line of markdown.split("\n")) {
    const marker = line.match(/^\s*(```|~~~)/)?.[1];
    if (fence || marker) {
      lines.push(line);
      if (fence && marker === fence) fence = null;
      else if (!fence) fence = marker;
    } else if (line.trim()) {
      lines.push(line);
    } else if (lines.length) {
      blocks.push(lines.join("\n"));
      lines = [];
    }
  }
  if (lines.length) blocks.push(lines.join("\n"));
  return blocks;
}

/**
 * The part of the report's Markdown nothing else shows: up to the first section, after the
 * headline, the understood question and the figure tables when the report has an answer card.
 */
function proseOf(markdown, headline) {
  const kept = [];
  let preamble = typeof headline === "string";
  const shownAbove = (block) => block.trim() === headline.trim()
    || ANSWERED_PREAMBLE.some((re) => re.test(block));
  for (const block of markdownBlocks(String(markdown || ""))) {
    if (SECTIONS.test(block)) break;
    if (preamble && shownAbove(block)) continue;
    preamble = false;
    kept.push(block);
  }
  return kept.join("\n\n");
}

function exportName(report, extension) {
  const day = isoDay(report?.period?.to) || new Date().toISOString().slice(0, 10);
  return `apex-report-${day}.${extension}`;
}

/** A part of the report, collapsed: `${name}-section`, opened by `${name}-toggle`. */
function collapsible(name, title, ...content) {
  return h("details", { class: "report-part", testid: `${name}-section` },
    h("summary", { testid: `${name}-toggle` }, h("h2", {}, title)), ...content);
}

function fact(label, value, attrs = {}) {
  return h("div", attrs, h("dt", {}, label), h("dd", {}, value));
}

function recommendationCard(r, index) {
  return h("li", {
    class: "recommendation", testid: "recommendation-row", id: r.id ? `rec-${r.id}` : undefined,
    dataset: { savings: Number(r.monthly_savings_usd) || 0, kind: r.kind },
  },
  h("div", { class: "rec-head" },
    h("span", { class: "rank", "aria-label": `Rank ${index + 1}` }, String(index + 1)),
    h("h4", {}, r.title ?? fieldLabel(r.kind ?? "recommendation")),
    h("span", { class: "saving" },
      h("span", { testid: "recommendation-savings" }, usd(Number(r.monthly_savings_usd))),
      " / month")),
  h("dl", { class: "facts rec-facts" },
    fact("Kind", fieldLabel(r.kind ?? "—")),
    fact("Of spend", pct(r.savings_pct)),
    fact("Confidence", level(r.confidence)),
    fact("Risk", level(r.risk)),
    fact("Traffic", rate(r.traffic_share))),
  renderEvidence(r.evidence));
}

function recommendationsSection(ranked) {
  if (!ranked.length) return null;
  const title = `Recommendations (${ranked.length}), by monthly savings`;
  return collapsible("recommendations", title,
    h("ol", { class: "recommendations", testid: "recommendations" },
      ranked.map(recommendationCard)));
}

function snippetBlock(snippet, format) {
  const button = h("button", { type: "button", class: "small", testid: "copy-snippet" }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await copyText(snippet);
      button.textContent = "Copied";
      announce("Config snippet copied to the clipboard.");
      window.setTimeout(() => { button.textContent = "Copy"; }, 2000);
    } catch {
      toast("The browser refused to copy; select the snippet and copy it by hand.", "error");
    }
  });
  return h("div", { class: "snippet" },
    h("pre", {
      testid: "config-snippet", tabindex: "0", "aria-label": `Config snippet (${format})`,
      dataset: { format },
    }, h("code", {}, snippet)),
    button);
}

function markdownList(value) {
  const items = Array.isArray(value) ? value : [value];
  const texts = items.filter((item) => item !== null && item !== undefined && item !== "")
    .map((item) => (typeof item === "string" ? item : JSON.stringify(item)));
  if (!texts.length) return null;
  if (texts.length === 1 && !Array.isArray(value)) return renderMarkdown(texts[0]);
  return h("ol", {}, texts.map((text) => h("li", {}, renderMarkdown(text))));
}

function actionsSection(actions, ranked) {
  if (!actions?.length) return null;
  const order = new Map(ranked.map((r, i) => [r.id, i]));
  const rank = (action) => order.get(action.recommendation_id) ?? Infinity;
  const sorted = [...actions].sort((a, b) => rank(a) - rank(b) || 0);
  return collapsible("action-plan", `Action plan (${sorted.length})`,
    h("ol", { class: "actions-plan", testid: "action-plan" }, sorted.map((a) => {
      const snippet = typeof a.config_snippet === "string" ? a.config_snippet
        : a.config_snippet ? JSON.stringify(a.config_snippet, null, 2) : "";
      const format = a.config_format || "text";
      const part = (label, content) => [h("div", { class: "label" }, label), content];
      return h("li", { class: "action", testid: "action" },
        h("h4", {}, a.title ?? "Action"),
        markdownList(a.steps),
        snippet ? part(`Config (${format})`, snippetBlock(snippet, format)) : null,
        a.validation ? part("Validation", markdownList(a.validation)) : null,
        a.rollback ? part("Rollback", markdownList(a.rollback)) : null);
    })));
}

function byModelSection(report) {
  const rows = report.by_model;
  if (!rows?.length) return null;
  const t = report.totals || {};
  const sorted = [...rows].sort((a, b) => (b.cost_usd || 0) - (a.cost_usd || 0));
  const columns = ["model", "provider", "requests", "cost_usd", "p50_latency_ms", "p95_latency_ms"];
  const labels = { cost_usd: "Spend", p50_latency_ms: "p50", p95_latency_ms: "p95" };
  const label = (name) => labels[name] || fieldLabel(name);
  const when = period(report.period);
  const title = ["Spend by model",
    when ? [", ", h("span", { class: "period", testid: "report-period" }, when)] : null];
  return collapsible("by-model", title,
    h("dl", { class: "stats", testid: "report-totals" },
      fact("Spend", usd(t.cost_usd), { testid: "total-cost" }),
      fact("Requests", integer(t.requests), { testid: "total-requests" }),
      fact("Input tokens", integer(t.input_tokens), { testid: "total-input-tokens" }),
      fact("Output tokens", integer(t.output_tokens), { testid: "total-output-tokens" }),
      fact("Errors", integer(t.errors), { testid: "total-errors" })),
    dataTable(sorted, { columns, label, rowHeader: "model", testid: "report-by-model" }));
}

function exportsBar(report) {
  const button = (testid, label, save) => {
    const element = h("button", { type: "button", class: "small", testid }, label);
    element.addEventListener("click", save);
    return element;
  };
  return h("div", { class: "exports" },
    button("export-markdown", "Export Markdown", () => downloadText(exportName(report, "md"),
      report.markdown || "", "text/markdown;charset=utf-8")),
    button("export-json", "Export JSON", () => downloadText(exportName(report, "json"),
      `${JSON.stringify(report, null, 2)}\n`, "application/json")));
}

/** The report view. */
export function renderReport(report) {
  const ranked = rankRecommendations(report.recommendations);
  const answered = Boolean(report.answer && typeof report.answer === "object");
  const prose = proseOf(report.markdown, answered ? String(report.answer.headline ?? "") : null);
  return h("section", {
    class: "report", testid: "report", "aria-label": "Report",
    dataset: {
      recommendations: ranked.length, guidance: !report.by_model?.length && !ranked.length,
    },
  },
  answered ? renderAnswer(report) : null,
  prose ? renderMarkdown(prose, { class: "prose", testid: "answer-prose" }) : null,
  recommendationsSection(ranked),
  actionsSection(report.actions, ranked),
  byModelSection(report),
  exportsBar(report));
}
