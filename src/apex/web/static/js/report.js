// The final report of PROTOCOL.md section 4: totals, spend by model, recommendations ranked by
// monthly savings, the action plan with copyable config snippets, and Markdown / JSON export.

import { announce, copyText, downloadText, h, toast } from "./dom.js";
import { integer, isoDay, level, milliseconds, percent, period, share, usd } from "./format.js";

/** Recommendations, largest monthly saving first. */
export function rankRecommendations(recommendations) {
  return [...(recommendations || [])].sort(
    (a, b) => (Number(b.monthly_savings_usd) || 0) - (Number(a.monthly_savings_usd) || 0));
}

function exportName(report, extension) {
  const day = isoDay(report?.period?.to) || new Date().toISOString().slice(0, 10);
  return `apex-report-${day}.${extension}`;
}

function stat(label, value, testid, highlight = false) {
  return h("div", { class: highlight ? "highlight" : "", testid }, h("dt", {}, label), h("dd", {}, value));
}

function totalsSection(report, ranked) {
  const t = report.totals || {};
  return h("dl", { class: "stats", testid: "report-totals" },
    stat("Spend", usd(t.cost_usd), "total-cost"),
    stat("Requests", integer(t.requests), "total-requests"),
    stat("Input tokens", integer(t.input_tokens), "total-input-tokens"),
    stat("Output tokens", integer(t.output_tokens), "total-output-tokens"),
    stat("Errors", integer(t.errors), "total-errors"),
    stat("Top saving / month", ranked.length ? usd(Number(ranked[0].monthly_savings_usd)) : "—", "top-saving", true));
}

function byModelSection(rows) {
  if (!rows?.length) return null;
  const sorted = [...rows].sort((a, b) => (b.cost_usd || 0) - (a.cost_usd || 0));
  return h("section", { "aria-label": "Spend by model" },
    h("h3", {}, "Spend by model"),
    h("div", { class: "table-wrap" },
      h("table", { testid: "report-by-model" },
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Model"), h("th", { scope: "col" }, "Provider"),
          h("th", { scope: "col", class: "num" }, "Requests"), h("th", { scope: "col", class: "num" }, "Spend"),
          h("th", { scope: "col", class: "num" }, "p50"), h("th", { scope: "col", class: "num" }, "p95"))),
        h("tbody", {}, sorted.map((m) => h("tr", {},
          h("th", { scope: "row" }, m.model ?? "—"), h("td", {}, m.provider ?? "—"),
          h("td", { class: "num" }, integer(m.requests)), h("td", { class: "num" }, usd(m.cost_usd)),
          h("td", { class: "num" }, milliseconds(m.p50_latency_ms)), h("td", { class: "num" }, milliseconds(m.p95_latency_ms))))))));
}

function evidenceCell(evidence) {
  if (!evidence || typeof evidence !== "object" || !Object.keys(evidence).length) return h("td", {}, "—");
  return h("td", {}, h("details", {}, h("summary", {}, "Evidence"), h("pre", {}, JSON.stringify(evidence, null, 2))));
}

function recommendationsSection(ranked) {
  if (!ranked.length) return null;
  return h("section", { "aria-label": "Recommendations" },
    h("h3", {}, "Recommendations"),
    h("div", { class: "table-wrap" },
      h("table", { testid: "recommendations" },
        h("caption", {}, "Ranked by projected monthly savings"),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col", class: "num" }, "#"), h("th", { scope: "col" }, "Recommendation"),
          h("th", { scope: "col", class: "num", "aria-sort": "descending" }, "Savings / month"),
          h("th", { scope: "col", class: "num" }, "Savings"), h("th", { scope: "col" }, "Confidence"),
          h("th", { scope: "col" }, "Risk"), h("th", { scope: "col", class: "num" }, "Traffic"),
          h("th", { scope: "col" }, "Evidence"))),
        h("tbody", {}, ranked.map((r, i) => h("tr", {
          testid: "recommendation-row", id: r.id ? `rec-${r.id}` : undefined,
          dataset: { savings: Number(r.monthly_savings_usd) || 0, kind: r.kind },
        },
        h("td", { class: "num" }, String(i + 1)),
        h("th", { scope: "row" }, h("div", {}, r.title ?? r.kind ?? "Recommendation"), h("span", { class: "badge" }, r.kind ?? "")),
        h("td", { class: "num", testid: "recommendation-savings" }, usd(Number(r.monthly_savings_usd))),
        h("td", { class: "num" }, percent(r.savings_pct)),
        h("td", {}, level(r.confidence)),
        h("td", {}, level(r.risk)),
        h("td", { class: "num" }, share(r.traffic_share)),
        evidenceCell(r.evidence)))))));
}

function snippetBlock(snippet) {
  const code = h("code", {}, snippet);
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
  return h("div", { class: "snippet" }, h("pre", { testid: "config-snippet", tabindex: "0", "aria-label": "Config snippet" }, code), button);
}

function textList(value) {
  if (Array.isArray(value)) return h("ol", {}, value.map((item) => h("li", {}, typeof item === "string" ? item : JSON.stringify(item))));
  if (typeof value === "string" && value) return h("p", {}, value);
  return null;
}

function actionsSection(actions, ranked) {
  if (!actions?.length) return null;
  const order = new Map(ranked.map((r, i) => [r.id, i]));
  const sorted = [...actions].sort((a, b) => (order.get(a.recommendation_id) ?? 1e9) - (order.get(b.recommendation_id) ?? 1e9));
  return h("section", { "aria-label": "Action plan" },
    h("h3", {}, "Action plan"),
    h("ol", { class: "actions-plan", testid: "action-plan" }, sorted.map((a) => {
      const snippet = typeof a.config_snippet === "string" ? a.config_snippet
        : a.config_snippet ? JSON.stringify(a.config_snippet, null, 2) : "";
      return h("li", { class: "action", testid: "action" },
        h("h4", {}, a.title ?? "Action"),
        textList(a.steps),
        snippet ? [h("div", { class: "label" }, "Config"), snippetBlock(snippet)] : null,
        a.validation ? [h("div", { class: "label" }, "Validation"), textList(a.validation)] : null,
        a.rollback ? [h("div", { class: "label" }, "Rollback"), textList(a.rollback)] : null);
    })));
}

/** The report view. */
export function renderReport(report) {
  const ranked = rankRecommendations(report.recommendations);
  const exportMarkdown = h("button", { type: "button", testid: "export-markdown" }, "Export Markdown");
  const exportJson = h("button", { type: "button", testid: "export-json" }, "Export JSON");
  exportMarkdown.addEventListener("click", () => downloadText(exportName(report, "md"), report.markdown || "", "text/markdown;charset=utf-8"));
  exportJson.addEventListener("click", () => downloadText(exportName(report, "json"), `${JSON.stringify(report, null, 2)}\n`, "application/json"));
  const guidance = !ranked.length;
  return h("section", { class: "report", testid: "report", "aria-label": "Report", dataset: { recommendations: ranked.length } },
    h("div", { class: "report-head" },
      h("div", {}, h("h2", {}, guidance ? "What Apex needs" : "Report"),
        report.period ? h("div", { class: "period", testid: "report-period" }, period(report.period)) : null),
      h("div", { class: "exports" }, exportMarkdown, exportJson)),
    guidance ? null : totalsSection(report, ranked),
    guidance && report.markdown ? h("div", { class: "markdown-text", testid: "report-guidance" }, report.markdown) : null,
    recommendationsSection(ranked),
    actionsSection(report.actions, ranked),
    byModelSection(report.by_model),
    !guidance && report.markdown ? h("details", {}, h("summary", {}, "Markdown"), h("div", { class: "markdown-text" }, report.markdown)) : null);
}
