// One way to draw rows of the report as a table: every value formatted by its field name, each
// latency column in one unit named in its header, numbers aligned right, and the table inside a
// scroll container so a wide one scrolls within its card instead of being clipped. Each cell
// carries its column's name (data-label), so on a phone a row reflows as a labelled card.

import { h } from "./dom.js";
import { fieldLabel, fieldValue, inLatencyUnit, latencyUnit } from "./format.js";

function cellText(name, value, unit) {
  if (unit) return inLatencyUnit(value, unit);
  if (value && typeof value === "object") {
    return Object.entries(value)
      .map(([key, item]) => `${fieldLabel(key)}: ${fieldValue(key, item)}`).join("; ");
  }
  return fieldValue(name, value);
}

/**
 * rows: objects sharing field names. columns: the fields in order (default: every field, in
 * first-seen order); label(name): a column's header; rowHeader: the field that names a row
 * (default: the first column when it holds text).
 */
export function dataTable(rows, { columns, label = fieldLabel, rowHeader, testid } = {}) {
  const names = columns || [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const units = new Map(names.filter((name) => /_ms$/.test(name))
    .map((name) => [name, latencyUnit(rows.map((row) => row[name]))]));
  const numeric = new Set(names.filter(
    (name) => rows.some((row) => typeof row[name] === "number")));
  const header = rowHeader ?? (numeric.has(names[0]) ? null : names[0]);
  const heading = (name) => (units.has(name) ? `${label(name)} (${units.get(name)})` : label(name));
  const cell = (row, name) => h(name === header ? "th" : "td", {
    scope: name === header ? "row" : undefined,
    class: numeric.has(name) ? "num" : "text",
    dataset: { label: heading(name) },
  }, cellText(name, row[name], units.get(name)));
  return h("div", { class: "table-wrap" },
    h("table", { class: "data-table", testid },
      h("thead", {}, h("tr", {}, names.map((name) => h("th", {
        scope: "col", class: numeric.has(name) ? "num" : undefined,
      }, heading(name))))),
      h("tbody", {}, rows.map((row) => h("tr", {}, names.map((name) => cell(row, name)))))));
}
