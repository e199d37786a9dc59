// The usage page: drag-and-drop upload with progress and the rejected lines, "load demo data",
// and the spend dashboard for a date range (spend by day, by model, latency, top features).

import { barChart, lineChart, responsiveChart } from "../charts.js";
import { announce, h, uniqueId } from "../dom.js";
import { integer, isoDay, milliseconds, period, share, shortDay, usd, usdShort } from "../format.js";

const FORMATS = [
  ["", "Detect automatically"],
  ["csv", "CSV"],
  ["jsonl", "JSONL"],
  ["otlp", "OTLP/JSON spans"],
  ["litellm", "LiteLLM spend logs"],
];

/** The first of several field names a row carries (servers may name a column slightly differently). */
function pick(row, ...names) {
  for (const name of names) {
    if (row && row[name] !== undefined && row[name] !== null) return row[name];
  }
  return undefined;
}

function num(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

function table({ testid, caption, headers, rows }) {
  return h("div", { class: "table-wrap" },
    h("table", { testid },
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map(([label, numeric]) => h("th", { scope: "col", class: numeric ? "num" : "" }, label)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map(([value, numeric], i) => (i === 0
        ? h("th", { scope: "row" }, value)
        : h("td", { class: numeric ? "num" : "" }, value))))))));
}

function stat(label, value, testid) {
  return h("div", { testid }, h("dt", {}, label), h("dd", {}, value));
}

function modelLabel(row, duplicates) {
  const model = String(pick(row, "model") ?? "unknown");
  const provider = pick(row, "provider");
  return duplicates.has(model) && provider ? `${model} (${provider})` : model;
}

export class UsageView {
  constructor({ api }) {
    this.api = api;
    this.disposers = [];
    this.element = h("div", { class: "usage", testid: "usage" },
      h("h1", {}, "Usage"),
      this.uploadPanel(),
      this.demoPanel(),
      this.dashboardPanel());
    const guard = (event) => {
      if (!event.target.closest?.(".dropzone")) event.preventDefault();
    };
    window.addEventListener("dragover", guard);
    window.addEventListener("drop", guard);
    this.disposers.push(() => {
      window.removeEventListener("dragover", guard);
      window.removeEventListener("drop", guard);
    });
  }

  destroy() {
    for (const dispose of [...this.disposers.splice(0), ...(this.chartDisposers || []).splice(0)]) dispose();
  }

  // ---------- upload ----------

  uploadPanel() {
    const inputId = uniqueId("usage-file");
    const formatId = uniqueId("usage-format");
    this.fileInput = h("input", { type: "file", id: inputId, testid: "file-input", accept: ".csv,.jsonl,.json,.ndjson,.txt,.gz" });
    this.formatSelect = h("select", { id: formatId, testid: "upload-format" }, FORMATS.map(([value, label]) => h("option", { value }, label)));
    this.dropzone = h("div", { class: "dropzone", testid: "dropzone" },
      h("p", {}, h("strong", {}, "Drop a usage file here")),
      h("p", { class: "hint" }, "CSV, JSONL, OTLP/JSON trace exports with gen_ai attributes, or a LiteLLM spend-log export."),
      h("div", { class: "choose" }, this.fileInput, h("label", { for: inputId, class: "button" }, "Choose a file")));
    this.progress = h("progress", { max: 100, value: 0, testid: "upload-progress", "aria-label": "Upload progress" });
    this.progressText = h("span", { class: "hint", testid: "upload-progress-text" });
    this.progressBox = h("div", { class: "progress", hidden: true }, this.progressText, this.progress);
    this.uploadResult = h("div", { testid: "upload-result", "aria-live": "polite" });

    this.fileInput.addEventListener("change", () => {
      const file = this.fileInput.files?.[0];
      if (file) this.upload(file);
      this.fileInput.value = "";
    });
    const over = (value) => { this.dropzone.dataset.over = String(value); };
    this.dropzone.addEventListener("dragenter", (event) => { event.preventDefault(); over(true); });
    this.dropzone.addEventListener("dragover", (event) => { event.preventDefault(); event.dataTransfer.dropEffect = "copy"; over(true); });
    this.dropzone.addEventListener("dragleave", (event) => {
      if (!this.dropzone.contains(event.relatedTarget)) over(false);
    });
    this.dropzone.addEventListener("drop", (event) => {
      event.preventDefault();
      over(false);
      const file = event.dataTransfer?.files?.[0];
      if (file) this.upload(file);
    });
    return h("section", { class: "panel", testid: "upload-panel", "aria-labelledby": "upload-heading" },
      h("div", { class: "panel-head" }, h("h2", { id: "upload-heading" }, "Upload usage data")),
      this.dropzone,
      h("div", { class: "upload-row" },
        h("div", { class: "field" }, h("label", { for: formatId }, "Format"), this.formatSelect)),
      this.progressBox,
      this.uploadResult);
  }

  async upload(file) {
    this.progressBox.hidden = false;
    this.progress.value = 0;
    this.progressText.textContent = `Uploading ${file.name}… 0%`;
    this.uploadResult.replaceChildren();
    try {
      const answer = await this.api.upload(file, this.formatSelect.value, (fraction) => {
        const pct = Math.round(fraction * 100);
        this.progress.value = pct;
        this.progressText.textContent = `Uploading ${file.name}… ${pct}%`;
      });
      this.progressText.textContent = `Uploaded ${file.name}.`;
      this.showUploadResult(answer);
      this.loadSummary();
    } catch (error) {
      this.progressBox.hidden = true;
      this.uploadResult.replaceChildren(h("p", { class: "alert", role: "alert", testid: "upload-error" }, `${file.name}: ${error.message}`));
    }
  }

  showUploadResult(answer) {
    const accepted = num(answer?.rows_accepted);
    const rejected = num(answer?.rows_rejected);
    const errors = Array.isArray(answer?.errors) ? answer.errors : [];
    const parts = [
      h("div", { class: "result-counts" },
        h("span", { class: "badge ok", testid: "upload-accepted", dataset: { count: accepted } }, `${integer(accepted)} rows accepted`),
        h("span", { class: `badge ${rejected ? "error" : ""}`, testid: "upload-rejected", dataset: { count: rejected } }, `${integer(rejected)} rows rejected`),
        answer?.period ? h("span", { class: "hint" }, period(answer.period)) : null),
    ];
    if (errors.length) {
      parts.push(table({
        testid: "upload-errors",
        caption: rejected > errors.length ? `Rejected lines (first ${errors.length} of ${integer(rejected)})` : "Rejected lines",
        headers: [["Line", true], ["Problem"]],
        rows: errors.map((e) => [[String(e.line ?? "?"), true], [String(e.message ?? "")]]),
      }));
    }
    this.uploadResult.replaceChildren(...parts);
    announce(`${accepted} rows accepted, ${rejected} rejected.`);
  }

  // ---------- demo ----------

  demoPanel() {
    const button = h("button", { type: "button", class: "primary", testid: "load-demo" }, "Load demo data");
    const status = h("p", { class: "hint", testid: "demo-status", role: "status" });
    button.addEventListener("click", async () => {
      button.disabled = true;
      status.textContent = "Generating a realistic demo workload…";
      try {
        const answer = await this.api.loadDemo();
        const rows = pick(answer || {}, "rows_accepted", "rows", "rows_loaded", "inserted");
        status.textContent = rows !== undefined ? `Demo data loaded: ${integer(num(rows))} rows.` : "Demo data loaded.";
        status.dataset.done = "true";
        this.loadSummary();
      } catch (error) {
        status.textContent = `Could not load demo data: ${error.message}`;
      } finally {
        button.disabled = false;
      }
    });
    return h("section", { class: "panel", testid: "demo-panel", "aria-labelledby": "demo-heading" },
      h("div", { class: "panel-head" }, h("h2", { id: "demo-heading" }, "No data at hand?"), button),
      h("p", {}, "Load a generated month of realistic LLM traffic — several providers and models, retries, duplicate prompts, a nightly batch job — to try Apex."),
      status);
  }

  // ---------- dashboard ----------

  dashboardPanel() {
    const fromId = uniqueId("from");
    const toId = uniqueId("to");
    this.fromInput = h("input", { type: "date", id: fromId, testid: "range-from" });
    this.toInput = h("input", { type: "date", id: toId, testid: "range-to" });
    this.rangeError = h("p", { class: "alert", role: "alert", testid: "range-error" });
    const reset = h("button", { type: "button", testid: "range-reset" }, "All time");
    const form = h("form", { class: "range", testid: "range-form", "aria-label": "Date range" },
      h("div", { class: "field" }, h("label", { for: fromId }, "From"), this.fromInput),
      h("div", { class: "field" }, h("label", { for: toId }, "To"), this.toInput),
      h("button", { type: "submit", class: "primary", testid: "range-apply" }, "Apply"),
      reset);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (this.fromInput.value && this.toInput.value && this.fromInput.value > this.toInput.value) {
        this.rangeError.textContent = "The start date must be on or before the end date.";
        this.fromInput.setAttribute("aria-invalid", "true");
        this.fromInput.focus();
        return;
      }
      this.fromInput.removeAttribute("aria-invalid");
      this.rangeError.textContent = "";
      this.loadSummary();
    });
    reset.addEventListener("click", () => {
      this.fromInput.value = "";
      this.toInput.value = "";
      this.rangeError.textContent = "";
      this.loadSummary();
    });
    this.periodLabel = h("p", { class: "hint", testid: "dashboard-period" });
    this.dashboard = h("div", { testid: "dashboard-body", "aria-live": "polite" });
    return h("section", { class: "panel", testid: "dashboard", "aria-labelledby": "dashboard-heading" },
      h("div", { class: "panel-head" }, h("h2", { id: "dashboard-heading" }, "Spend dashboard"), form),
      this.rangeError, this.periodLabel, this.dashboard);
  }

  async loadSummary() {
    this.dashboard.setAttribute("aria-busy", "true");
    try {
      const summary = await this.api.summary(this.fromInput.value, this.toInput.value);
      this.drawSummary(summary || {});
    } catch (error) {
      if (error.status !== 401) {
        this.dashboard.replaceChildren(h("p", { class: "alert", role: "alert", testid: "dashboard-error" }, `Could not load the summary: ${error.message}`));
      }
    } finally {
      this.dashboard.removeAttribute("aria-busy");
    }
  }

  drawSummary(summary) {
    for (const dispose of this.chartDisposers || []) dispose();
    this.chartDisposers = [];
    const totals = summary.totals || {};
    this.periodLabel.textContent = summary.period ? `Showing ${period(summary.period)} (UTC)` : "";
    this.dashboard.dataset.requests = num(totals.requests);
    if (!num(totals.requests)) {
      this.dashboard.replaceChildren(h("p", { class: "empty-state", testid: "dashboard-empty" },
        "No usage in this period. Upload a file or load demo data."));
      return;
    }
    const byDay = (summary.by_day || [])
      .map((row) => ({ label: isoDay(String(pick(row, "day", "date", "bucket") ?? "")), value: num(pick(row, "cost_usd", "cost")) }))
      .filter((p) => p.label)
      .sort((a, b) => a.label.localeCompare(b.label));
    const models = summary.by_model || [];
    const names = models.map((m) => String(pick(m, "model") ?? "unknown"));
    const duplicates = new Set(names.filter((n, i) => names.indexOf(n) !== i));
    const byModel = models.map((m) => ({ label: modelLabel(m, duplicates), value: num(pick(m, "cost_usd", "cost")) }));

    const dayBox = h("div", { testid: "chart-spend-by-day-box" });
    const modelBox = h("div", { testid: "chart-by-model-box" });
    this.dashboard.replaceChildren(
      h("dl", { class: "stats", testid: "dashboard-totals" },
        stat("Spend", usd(num(totals.cost_usd)), "dashboard-cost"),
        stat("Requests", integer(num(totals.requests)), "dashboard-requests"),
        stat("Input tokens", integer(num(totals.input_tokens)), "dashboard-input-tokens"),
        stat("Output tokens", integer(num(totals.output_tokens)), "dashboard-output-tokens"),
        stat("Errors", integer(num(totals.errors)), "dashboard-errors")),
      h("div", { class: "dash-grid" },
        h("section", { class: "wide", "aria-label": "Spend by day" }, h("h3", {}, "Spend by day"), dayBox),
        h("section", { "aria-label": "Spend by model" }, h("h3", {}, "Spend by model"), modelBox),
        h("section", { "aria-label": "Latency percentiles" }, h("h3", {}, "Latency percentiles"), this.latencyTable(summary, duplicates)),
        h("section", { class: "wide", "aria-label": "Top features" }, h("h3", {}, "Top features"), this.featuresTable(summary, num(totals.cost_usd)))));
    this.chartDisposers.push(
      responsiveChart(dayBox, (width) => lineChart({ points: byDay, width, title: "Spend by day (USD)", valueFormat: usdShort, tickFormat: shortDay, testid: "chart-spend-by-day" })),
      responsiveChart(modelBox, (width) => barChart({ items: byModel, width, title: "Spend by model (USD)", valueFormat: usdShort, testid: "chart-by-model" })));
  }

  latencyTable(summary, duplicates) {
    const overall = pick(summary, "latency", "latency_ms", "latency_percentiles");
    const rows = [];
    if (overall && typeof overall === "object") {
      rows.push([["All traffic"],
        [milliseconds(pick(overall, "p50_ms", "p50", "p50_latency_ms")), true],
        [milliseconds(pick(overall, "p95_ms", "p95", "p95_latency_ms")), true],
        [milliseconds(pick(overall, "p99_ms", "p99", "p99_latency_ms")), true]]);
    }
    for (const m of summary.by_model || []) {
      rows.push([[modelLabel(m, duplicates)],
        [milliseconds(pick(m, "p50_latency_ms", "p50_ms")), true],
        [milliseconds(pick(m, "p95_latency_ms", "p95_ms")), true],
        [milliseconds(pick(m, "p99_latency_ms", "p99_ms")), true]]);
    }
    if (!rows.length) return h("p", { class: "empty-state" }, "No latency figures in this period.");
    return table({ testid: "latency-table", headers: [["Scope"], ["p50", true], ["p95", true], ["p99", true]], rows });
  }

  featuresTable(summary, totalCost) {
    const features = [...(summary.by_feature || [])]
      .sort((a, b) => num(pick(b, "cost_usd", "cost")) - num(pick(a, "cost_usd", "cost")))
      .slice(0, 10);
    if (!features.length) return h("p", { class: "empty-state" }, "No feature tags in this period.");
    return table({
      testid: "top-features",
      headers: [["Feature"], ["Requests", true], ["Spend", true], ["Share of spend", true]],
      rows: features.map((f) => {
        const cost = num(pick(f, "cost_usd", "cost"));
        return [[String(pick(f, "feature", "tag", "name") ?? "untagged")], [integer(num(f.requests)), true], [usd(cost), true],
          [totalCost ? share(cost / totalCost) : "—", true]];
      }),
    });
  }
}
