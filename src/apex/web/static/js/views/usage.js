// The usage page. With data it opens on the figures: totals, spend by day stacked by model, cost
// by feature, latency percentiles per model; uploading a file or loading demo data sits behind
// "Add data". Someone with no data yet sees the upload and demo panels at once.

import { barChart, responsiveChart, scrollingTable, stackedBarChart } from "../charts.js";
import { announce, h, icon, uniqueId } from "../dom.js";
import { integer, isoDay, period, share, shortDay, usd, usdShort } from "../format.js";

const FORMATS = [
  ["", "Detect automatically"],
  ["csv", "CSV"],
  ["jsonl", "JSONL"],
  ["otlp", "OTLP/JSON spans"],
  ["litellm", "LiteLLM spend logs"],
];
// Spend by day stacks this many of the costliest models; the rest add up to "Other".
const STACKED_MODELS = 5;
const TOP_FEATURES = 10;
const PERCENTILES = [
  ["p50", "p50_latency_ms"], ["p95", "p95_latency_ms"], ["p99", "p99_latency_ms"],
];
const secondsFormat = new Intl.NumberFormat("en-US", {
  minimumFractionDigits: 1, maximumFractionDigits: 1,
});

/** The first of several names a field may have (servers may name a column slightly differently). */
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

function cost(row) {
  return num(pick(row, "cost_usd", "cost"));
}

/**
 * A row's spend as text. The server sends `cost_usd: null` when none of the row's requests could
 * be priced, and counts the requests a figure leaves out in `unpriced_requests`: neither may
 * read as $0.
 */
function spend(row) {
  const unpriced = num(row?.unpriced_requests);
  if (row?.cost_usd === null) return unpriced ? "unpriced" : "—";
  const priced = usd(cost(row));
  return unpriced ? `${priced} + ${integer(unpriced)} unpriced` : priced;
}

function latencyOf(row, field) {
  const value = row?.[field];
  return typeof value === "number" ? value : NaN;
}

/**
 * One unit for a whole latency column, from its largest value: milliseconds below 10 s, seconds
 * above, named in the header. (format.milliseconds picks a unit per value, which makes a column
 * hard to compare.)
 */
function latencyColumn([name, field], rows) {
  const largest = Math.max(0, ...rows.map((row) => latencyOf(row, field)).filter(Number.isFinite));
  const unit = largest >= 10000 ? "s" : "ms";
  const write = (value) => {
    if (!Number.isFinite(value)) return "—";
    return unit === "s" ? secondsFormat.format(value / 1000) : integer(Math.round(value));
  };
  return {
    heading: [`${name} (${unit})`, true],
    cell: (row) => [write(latencyOf(row, field)), true],
  };
}

/**
 * A table in its own horizontal scroll container (named `label` when it scrolls). headers:
 * [label, numeric?]; rows: cells [text, numeric?, title?], the first cell of a row being its
 * header, which carries its whole name as a title (so a wrapped or long name reads whole on
 * hover).
 */
function table({ testid, label, caption, headers, rows }) {
  const head = headers.map(([label, numeric]) => h("th", {
    scope: "col", class: numeric ? "num" : "",
  }, label));
  const cell = ([value, numeric, title], i) => (i === 0
    ? h("th", { scope: "row", class: "name", title: title || value }, value)
    : h("td", { class: numeric ? "num" : "" }, value));
  return scrollingTable(h("table", { testid },
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, head)),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map(cell))))), label);
}

function tile(label, value, testid) {
  return h("div", { testid }, h("dt", {}, label), h("dd", {}, value));
}

function card({ title, testid, wide = false }, ...content) {
  const id = uniqueId("usage-card");
  const classes = `panel usage-card${wide ? " wide" : ""}`;
  return h("section", { class: classes, testid, "aria-labelledby": id },
    h("h2", { id }, title), ...content);
}

function featureName(row) {
  return String(pick(row, "feature") || "untagged");
}

function modelName(row) {
  return String(pick(row, "model") ?? "unknown");
}

function modelKey(row) {
  return `${pick(row, "provider") ?? ""}\u0000${modelName(row)}`;
}

function fullModelName(row) {
  const provider = pick(row, "provider");
  return provider ? `${provider} / ${modelName(row)}` : modelName(row);
}

/** Model names, with the provider added where two providers serve a model of the same name. */
function modelLabeller(models) {
  const names = models.map(modelName);
  const repeated = new Set(names.filter((n, i) => names.indexOf(n) !== i));
  return (row) => {
    const model = modelName(row);
    const provider = pick(row, "provider");
    return repeated.has(model) && provider ? `${model} (${provider})` : model;
  };
}

function dayOf(row) {
  return isoDay(String(pick(row, "day", "date") ?? ""));
}

/**
 * Spend by day as stacks: the costliest models each get a series, the rest share "Other" (a lone
 * remaining model keeps its own). Without a per-model split every day is one "All models" bar.
 */
function dailyStacks(summary, label) {
  const byDay = (summary.by_day || [])
    .map((row) => ({ day: dayOf(row), cost: cost(row) }))
    .filter((row) => row.day)
    .sort((a, b) => a.day.localeCompare(b.day));
  const split = summary.by_day_model;
  if (!Array.isArray(split)) {
    return {
      series: [{ label: "All models", tone: 0 }],
      days: byDay.map((row) => ({ label: row.day, values: [row.cost] })),
    };
  }
  const models = [...(summary.by_model || [])].sort((a, b) => cost(b) - cost(a));
  const stacked = models.length > STACKED_MODELS + 1 ? models.slice(0, STACKED_MODELS) : models;
  const index = new Map(stacked.map((m, i) => [modelKey(m), i]));
  const series = stacked.map((m, i) => ({ label: label(m), title: fullModelName(m), tone: i }));
  const other = series.length;
  if (models.length > stacked.length) {
    const title = `${models.length - stacked.length} other models`;
    series.push({ label: "Other", title, tone: "other" });
  }
  const values = new Map(byDay.map((row) => [row.day, series.map(() => 0)]));
  for (const row of split) {
    const day = values.get(dayOf(row));
    if (day) day[index.get(modelKey(row)) ?? other] += cost(row);
  }
  return { series, days: byDay.map((row) => ({ label: row.day, values: values.get(row.day) })) };
}

export class UsageView {
  constructor({ api }) {
    this.api = api;
    this.disposers = [];
    this.chartDisposers = [];
    // unknown until the first summary answers; then whether the caller has any rows at all
    this.hasData = null;
    this.demoStatus = h("p", { class: "hint usage-status", testid: "demo-status", role: "status" });
    this.addData = h("div", {
      class: "add-data", id: uniqueId("add-data"), testid: "add-data", role: "region",
      "aria-label": "Add data", hidden: true,
    }, this.uploadPanel(), this.demoPanel());
    this.addDataToggle = h("button", {
      type: "button", class: "add-data-toggle", testid: "add-data-toggle", hidden: true,
      "aria-expanded": "false", "aria-controls": this.addData.id,
    }, icon("plus"), "Add data");
    this.addDataToggle.addEventListener("click", () => this.showAddData(this.addData.hidden));
    this.element = h("div", { class: "usage", testid: "usage" },
      this.header(),
      this.rangeError,
      this.demoStatus,
      this.addData,
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
    const disposers = [...this.disposers.splice(0), ...this.chartDisposers.splice(0)];
    for (const dispose of disposers) dispose();
  }

  showAddData(open) {
    this.addData.hidden = !open;
    this.addDataToggle.setAttribute("aria-expanded", String(open));
  }

  // ---------- header: title, period, date range, "Add data" ----------

  header() {
    const fromId = uniqueId("from");
    const toId = uniqueId("to");
    this.fromInput = h("input", { type: "date", id: fromId, testid: "range-from" });
    this.toInput = h("input", { type: "date", id: toId, testid: "range-to" });
    this.rangeError = h("p", { class: "alert", role: "alert", testid: "range-error" });
    const reset = h("button", { type: "button", testid: "range-reset" }, "All time");
    this.rangeForm = h("form", {
      class: "range", testid: "range-form", "aria-label": "Date range", hidden: true,
    },
      h("div", { class: "field" }, h("label", { for: fromId }, "From"), this.fromInput),
      h("div", { class: "field" }, h("label", { for: toId }, "To"), this.toInput),
      h("button", { type: "submit", class: "primary", testid: "range-apply" }, "Apply"),
      reset);
    this.rangeForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const { value: from } = this.fromInput;
      const { value: to } = this.toInput;
      if (from && to && from > to) {
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
    return h("header", { class: "usage-head" },
      h("div", { class: "usage-title" }, h("h1", {}, "Usage"), this.periodLabel),
      this.rangeForm,
      this.addDataToggle);
  }

  // ---------- upload ----------

  uploadPanel() {
    const inputId = uniqueId("usage-file");
    const formatId = uniqueId("usage-format");
    this.fileInput = h("input", {
      type: "file", id: inputId, testid: "file-input", accept: ".csv,.jsonl,.json,.ndjson,.txt,.gz",
    });
    this.formatSelect = h("select", { id: formatId, testid: "upload-format" },
      FORMATS.map(([value, label]) => h("option", { value }, label)));
    this.dropzone = h("div", { class: "dropzone", testid: "dropzone" },
      h("p", {}, h("strong", {}, "Drop a usage file here")),
      h("p", { class: "hint" }, "CSV, JSONL, OTLP/JSON trace exports with gen_ai attributes, "
        + "or a LiteLLM spend-log export."),
      h("div", { class: "choose" }, this.fileInput,
        h("label", { for: inputId, class: "button" }, "Choose a file")));
    this.progress = h("progress", {
      max: 100, value: 0, testid: "upload-progress", "aria-label": "Upload progress",
    });
    this.progressText = h("span", { class: "hint", testid: "upload-progress-text" });
    this.progressBox = h("div", { class: "progress", hidden: true },
      this.progressText, this.progress);
    this.uploadResult = h("div", { testid: "upload-result", "aria-live": "polite" });

    this.fileInput.addEventListener("change", () => {
      const file = this.fileInput.files?.[0];
      if (file) this.upload(file);
      this.fileInput.value = "";
    });
    const over = (value) => { this.dropzone.dataset.over = String(value); };
    this.dropzone.addEventListener("dragenter", (event) => { event.preventDefault(); over(true); });
    this.dropzone.addEventListener("dragover", (event) => {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      over(true);
    });
    this.dropzone.addEventListener("dragleave", (event) => {
      if (!this.dropzone.contains(event.relatedTarget)) over(false);
    });
    this.dropzone.addEventListener("drop", (event) => {
      event.preventDefault();
      over(false);
      const file = event.dataTransfer?.files?.[0];
      if (file) this.upload(file);
    });
    return h("section", {
      class: "panel", testid: "upload-panel", "aria-labelledby": "upload-heading",
    },
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
      this.uploadResult.replaceChildren(h("p", {
        class: "alert", role: "alert", testid: "upload-error",
      }, `${file.name}: ${error.message}`));
    }
  }

  showUploadResult(answer) {
    const accepted = num(answer?.rows_accepted);
    const rejected = num(answer?.rows_rejected);
    const errors = Array.isArray(answer?.errors) ? answer.errors : [];
    const parts = [
      h("div", { class: "result-counts" },
        h("span", { class: "badge ok", testid: "upload-accepted", dataset: { count: accepted } },
          `${integer(accepted)} rows accepted`),
        h("span", {
          class: `badge ${rejected ? "error" : ""}`, testid: "upload-rejected",
          dataset: { count: rejected },
        }, `${integer(rejected)} rows rejected`),
        answer?.period ? h("span", { class: "hint" }, period(answer.period)) : null),
    ];
    if (errors.length) {
      parts.push(table({
        testid: "upload-errors",
        label: "Rejected lines",
        caption: rejected > errors.length
          ? `Rejected lines (first ${errors.length} of ${integer(rejected)})` : "Rejected lines",
        headers: [["Line", true], ["Problem"]],
        rows: errors.map((e) => [[String(e.line ?? "?")], [String(e.message ?? "")]]),
      }));
    }
    this.uploadResult.replaceChildren(...parts);
    announce(`${accepted} rows accepted, ${rejected} rejected.`);
  }

  // ---------- demo ----------

  demoPanel() {
    const button = h("button", { type: "button", class: "primary", testid: "load-demo" },
      "Load demo data");
    button.addEventListener("click", async () => {
      button.disabled = true;
      delete this.demoStatus.dataset.done;
      this.demoStatus.textContent = "Generating a realistic demo workload…";
      try {
        const answer = await this.api.loadDemo();
        const rows = pick(answer || {}, "rows_accepted", "rows");
        await this.loadSummary();
        this.demoStatus.textContent = rows !== undefined
          ? `Demo data loaded: ${integer(num(rows))} rows.` : "Demo data loaded.";
        this.demoStatus.dataset.done = "true";
        if (this.hasData) {
          this.showAddData(false);
          this.addDataToggle.focus();
        }
      } catch (error) {
        this.demoStatus.textContent = `Could not load demo data: ${error.message}`;
      } finally {
        button.disabled = false;
      }
    });
    return h("section", { class: "panel", testid: "demo-panel", "aria-labelledby": "demo-heading" },
      h("div", { class: "panel-head" }, h("h2", { id: "demo-heading" }, "Try demo data"), button),
      h("p", {}, "Load a generated month of realistic LLM traffic — several providers and "
        + "models, retries, duplicate prompts, a nightly batch job — to try Apex."));
  }

  // ---------- dashboard ----------

  dashboardPanel() {
    this.dashboard = h("div", {
      class: "usage-body", testid: "dashboard-body", "aria-live": "polite",
    }, h("p", { class: "empty-state" }, "Loading usage…"));
    return h("div", { testid: "dashboard" }, this.dashboard);
  }

  async loadSummary() {
    this.dashboard.setAttribute("aria-busy", "true");
    try {
      const summary = await this.api.summary(this.fromInput.value, this.toInput.value);
      this.drawSummary(summary || {});
    } catch (error) {
      if (error.status !== 401) {
        this.addDataToggle.hidden = false;
        this.dashboard.replaceChildren(h("p", {
          class: "alert", role: "alert", testid: "dashboard-error",
        }, `Could not load the summary: ${error.message}`));
      }
    } finally {
      this.dashboard.removeAttribute("aria-busy");
    }
  }

  /** Whether the caller has rows at all: an empty date range says nothing about other days. */
  noteData(requests) {
    const ranged = Boolean(this.fromInput.value || this.toInput.value);
    this.hasData = ranged ? Boolean(this.hasData) || requests > 0 : requests > 0;
    this.addDataToggle.hidden = !this.hasData;
    this.rangeForm.hidden = !this.hasData;
    if (!this.hasData) this.showAddData(true);
  }

  drawSummary(summary) {
    for (const dispose of this.chartDisposers.splice(0)) dispose();
    const totals = summary.totals || {};
    const requests = num(totals.requests);
    this.noteData(requests);
    this.periodLabel.textContent = summary.period && requests
      ? `${period(summary.period)} (UTC)` : "";
    this.dashboard.dataset.requests = requests;
    if (!requests) {
      this.dashboard.replaceChildren(h("p", { class: "empty-state", testid: "dashboard-empty" },
        this.hasData ? "No usage in this period. Pick other dates, or All time."
          : "No usage data yet. Upload a file or load demo data: your spend, latency and features "
            + "appear here."));
      return;
    }
    const models = summary.by_model || [];
    const label = modelLabeller(models);
    const features = [...(summary.by_feature || [])].sort((a, b) => cost(b) - cost(a));
    const boxes = Object.fromEntries(["spend-by-day", "by-feature", "by-model"].map((name) => [
      name, h("div", { class: "chart-box", testid: `chart-${name}-box` })]));
    this.dashboard.replaceChildren(
      h("dl", { class: "usage-tiles", testid: "dashboard-totals" },
        tile("Spend", spend(totals), "dashboard-cost"),
        tile("Requests", integer(requests), "dashboard-requests"),
        tile("Input tokens", integer(num(totals.input_tokens)), "dashboard-input-tokens"),
        tile("Output tokens", integer(num(totals.output_tokens)), "dashboard-output-tokens"),
        tile("Errors", integer(num(totals.errors)), "dashboard-errors")),
      h("div", { class: "usage-grid" },
        card({ title: "Spend by day, by model", testid: "card-spend-by-day" },
          boxes["spend-by-day"]),
        card({ title: "Cost by feature", testid: "card-by-feature" }, boxes["by-feature"]),
        card({ title: "Latency by model", testid: "card-latency" },
          this.latencyTable(models, label)),
        card({ title: "Spend by model", testid: "card-by-model" }, boxes["by-model"]),
        card({ title: "Features", testid: "card-features", wide: true },
          this.featuresTable(features, num(totals.cost_usd)))));
    const stacks = dailyStacks(summary, label);
    const byFeature = features.slice(0, TOP_FEATURES)
      .map((f) => ({ label: featureName(f), value: cost(f) }));
    const byModel = models.map((m) => ({ label: label(m), value: cost(m) }));
    const money = { valueFormat: usdShort };
    this.chartDisposers.push(
      responsiveChart(boxes["spend-by-day"], (width) => stackedBarChart({
        ...stacks, ...money, width, title: "Spend by day, stacked by model (USD)",
        tickFormat: shortDay, testid: "chart-spend-by-day",
      })),
      responsiveChart(boxes["by-feature"], (width) => barChart({
        ...money, items: byFeature, width, title: "Cost by feature (USD)", labelHeader: "Feature",
        testid: "chart-by-feature",
      })),
      responsiveChart(boxes["by-model"], (width) => barChart({
        ...money, items: byModel, width, title: "Spend by model (USD)", testid: "chart-by-model",
      })));
  }

  latencyTable(models, label) {
    const timed = (m) => PERCENTILES.some(([, field]) => Number.isFinite(latencyOf(m, field)));
    const rows = models.filter(timed);
    if (!rows.length) return h("p", { class: "empty-state" }, "No latency figures in this period.");
    const columns = PERCENTILES.map((percentile) => latencyColumn(percentile, rows));
    return table({
      testid: "latency-table",
      label: "Latency by model",
      headers: [["Model"], ...columns.map((c) => c.heading)],
      rows: rows.map((m) => [
        [label(m), false, fullModelName(m)], ...columns.map((c) => c.cell(m))]),
    });
  }

  featuresTable(features, totalCost) {
    if (!features.length) {
      return h("p", { class: "empty-state" }, "No feature tags in this period.");
    }
    const shown = features.slice(0, TOP_FEATURES);
    const columns = PERCENTILES.slice(1).map((percentile) => latencyColumn(percentile, shown));
    return table({
      testid: "top-features",
      label: "Features",
      caption: features.length > shown.length
        ? `The ${shown.length} costliest of ${integer(features.length)} features` : null,
      headers: [["Feature"], ["Requests", true], ["Spend", true], ["Share", true],
        ...columns.map((c) => c.heading)],
      rows: shown.map((f) => [
        [featureName(f)], [integer(num(f.requests)), true], [spend(f), true],
        [totalCost ? share(cost(f) / totalCost) : "—", true], ...columns.map((c) => c.cell(f))]),
    });
  }
}
