// A recommendation's evidence as labelled values: each field named in words and formatted by its
// name (money, rates, latencies, token counts), lists of rows as tables, nested objects as nested
// lists. It stays collapsed until asked for.

import { dataTable } from "./datatable.js";
import { h } from "./dom.js";
import { fieldLabel, fieldValue } from "./format.js";

function isObject(value) {
  return Boolean(value) && typeof value === "object";
}

function shown(name, value) {
  if (Array.isArray(value)) {
    const rows = value.filter(isObject);
    if (rows.length) return dataTable(rows);
    return value.map((item) => fieldValue(name, item)).join(", ") || "—";
  }
  if (isObject(value)) return labelledValues(value);
  return fieldValue(name, value);
}

function labelledValues(object) {
  return h("dl", { class: "facts" }, Object.entries(object).map(([name, value]) =>
    h("div", { class: isObject(value) ? "wide" : undefined },
      h("dt", {}, fieldLabel(name)), h("dd", {}, shown(name, value)))));
}

/** The evidence of a recommendation, or nothing when it has none. */
export function renderEvidence(evidence) {
  if (!evidence || typeof evidence !== "object" || !Object.keys(evidence).length) return null;
  return h("details", { class: "evidence", testid: "evidence" },
    h("summary", {}, "Evidence"), labelledValues(evidence));
}
