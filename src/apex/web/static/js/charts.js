// Inline-SVG charts drawn in the browser: a line or stacked bars over days, horizontal bars per
// name. Each chart is drawn for the pixel width it gets (so text stays legible at 375 px) and
// carries its text alternative: an SVG <title> and <desc>, and a data table for screen readers
// and for reading exact figures.

import { h, s, uniqueId } from "./dom.js";

/** A round axis maximum and its tick step, for 4 or 5 gridlines. */
export function niceScale(max, ticks = 4) {
  if (!(max > 0)) return { max: 1, step: 0.25 };
  const rough = max / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude)
    .find((candidate) => candidate * ticks >= max);
  return { max: step * ticks, step };
}

function frame(width, height, title, description, testid) {
  const titleId = uniqueId("chart-title");
  const descId = uniqueId("chart-desc");
  return s("svg", {
    class: "chart", testid, role: "img", viewBox: `0 0 ${width} ${height}`, width, height,
    "aria-labelledby": titleId, "aria-describedby": descId, preserveAspectRatio: "xMinYMin meet",
  }, s("title", { id: titleId }, title), s("desc", { id: descId }, description));
}

/**
 * A table inside its own horizontal scroll container. While the table is wider than the
 * container, the container is a labelled region in the tab order, so the keyboard can scroll
 * what a narrow screen hides; while it fits, it is a plain box and no extra tab stop.
 */
export function scrollingTable(table, label) {
  const box = h("div", { class: "table-wrap" }, table);
  const update = () => {
    if (box.scrollWidth > box.clientWidth) {
      box.tabIndex = 0;
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", label);
      return;
    }
    for (const name of ["tabindex", "role", "aria-label"]) box.removeAttribute(name);
  };
  const observer = new ResizeObserver(update);
  observer.observe(box);
  observer.observe(table);
  return box;
}

function dataTable(caption, headers, rows) {
  const head = headers.map((label, i) => h("th", { scope: "col", class: i ? "num" : "" }, label));
  const cell = (value, i) => (i
    ? h("td", { class: "num" }, value)
    : h("th", { scope: "row" }, value));
  return h("details", { class: "chart-data" },
    h("summary", {}, "Show data"),
    scrollingTable(h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, head)),
      h("tbody", {}, rows.map((row) => h("tr", {}, row.map(cell))))), caption));
}

function figure(...content) {
  return h("figure", { class: "chart-figure", style: "margin:0" }, ...content);
}

function empty(testid) {
  return h("p", { class: "empty-state", testid: `${testid}-empty` }, "No data in this period.");
}

// The plot area of the charts over days: value axis on the left, day labels underneath.
const PLOT = { left: 64, right: 16, top: 14, bottom: 30 };

/** The plot's size and its value scale (0 at the bottom, `highest` within reach). */
function dayPlot(width, height, highest) {
  const plotW = Math.max(10, width - PLOT.left - PLOT.right);
  const plotH = height - PLOT.top - PLOT.bottom;
  const scale = niceScale(highest);
  return { plotW, plotH, scale, y: (v) => PLOT.top + plotH - (v / scale.max) * plotH };
}

/** Horizontal gridlines with their value labels, from 0 to the scale's maximum. */
function valueAxis(svg, { scale, y, plotW }, valueFormat) {
  for (let v = 0; v <= scale.max + scale.step / 2; v += scale.step) {
    svg.append(s("line", {
      class: "grid", x1: PLOT.left, x2: PLOT.left + plotW, y1: y(v), y2: y(v),
    }));
    svg.append(s("text", { x: PLOT.left - 8, y: y(v) + 4, "text-anchor": "end" }, valueFormat(v)));
  }
}

/** Day labels under the plot, spaced so they never overlap; the last day is always labelled. */
function dayAxis(svg, labels, x, { plotW, height, tickFormat }) {
  const last = labels.length - 1;
  const every = Math.max(1, Math.ceil(labels.length / Math.max(2, Math.floor(plotW / 80))));
  labels.forEach((label, i) => {
    if (i !== last && (i % every !== 0 || last - i < every * 0.75)) return;
    let anchor = "middle";
    if (labels.length > 1 && i === 0) anchor = "start";
    else if (labels.length > 1 && i === last) anchor = "end";
    svg.append(s("text", { x: x(i), y: height - 10, "text-anchor": anchor }, tickFormat(label)));
  });
}

function sum(values) {
  return values.reduce((total, v) => total + v, 0);
}

/**
 * Line chart of points [{label, value}] in the given order.
 * Returns a figure holding the SVG (data-testid=testid) and its data table.
 */
export function lineChart({
  points, width = 640, height = 240, title, valueFormat, tickFormat = (label) => label, testid,
}) {
  if (!points.length) return empty(testid);
  const highest = Math.max(...points.map((p) => p.value));
  const plot = dayPlot(width, height, highest);
  const { plotW, y } = plot;
  const step = points.length === 1 ? 0 : plotW / (points.length - 1);
  const x = (i) => PLOT.left + (points.length === 1 ? plotW / 2 : i * step);
  const first = points[0].label;
  const lastLabel = points[points.length - 1].label;
  const svg = frame(width, height, title,
    `${points.length} points from ${first} to ${lastLabel}, `
    + `total ${valueFormat(sum(points.map((p) => p.value)))}, highest ${valueFormat(highest)}.`,
    testid);
  valueAxis(svg, plot, valueFormat);
  dayAxis(svg, points.map((p) => p.label), x, { plotW, height, tickFormat });
  const coords = points.map((p, i) => `${x(i).toFixed(1)},${y(p.value).toFixed(1)}`);
  const start = x(0).toFixed(1);
  const end = x(points.length - 1).toFixed(1);
  svg.append(s("path", {
    class: "area", d: `M${start},${y(0)} L${coords.join(" L")} L${end},${y(0)} Z`,
  }));
  svg.append(s("path", { class: "line", testid: `${testid}-line`, d: `M${coords.join(" L")}` }));
  const radius = points.length > 60 ? 2 : 3.5;
  points.forEach((p, i) => {
    svg.append(s("circle", {
      class: "dot", cx: x(i), cy: y(p.value), r: radius, testid: `${testid}-point`,
    }, s("title", {}, `${p.label}: ${valueFormat(p.value)}`)));
  });
  return figure(svg,
    dataTable(title, ["Day", "Spend"], points.map((p) => [p.label, valueFormat(p.value)])));
}

/**
 * Bars per day, each stacked from its series' values, bottom to top in series order.
 * days: [{label, values}] with values[i] belonging to series[i] = {label, title?, tone}, where
 * tone picks the colour (class `series-${tone}`). Each day is a group (data-testid
 * `${testid}-point`) of segments (`${testid}-segment`); a legend names the series.
 */
export function stackedBarChart({
  days, series, width = 640, height = 240, title, valueFormat, tickFormat = (label) => label,
  testid,
}) {
  if (!days.length) return empty(testid);
  const totals = days.map((day) => sum(day.values));
  const seriesTotals = series.map((_, k) => sum(days.map((day) => day.values[k])));
  const highest = Math.max(...totals);
  const plot = dayPlot(width, height, highest);
  const { plotW, y } = plot;
  const slot = plotW / days.length;
  const barW = Math.max(1, Math.min(48, slot * 0.72));
  const x = (i) => PLOT.left + slot * (i + 0.5);
  const named = (values) => series.map((item, k) => `${item.label} ${valueFormat(values[k])}`)
    .filter((_, k) => values[k] > 0);
  const svg = frame(width, height, title,
    `${days.length} days from ${days[0].label} to ${days[days.length - 1].label}, stacked by `
    + `${named(seriesTotals).join(", ")}; total ${valueFormat(sum(totals))}, highest `
    + `${days[totals.indexOf(highest)].label} at ${valueFormat(highest)}.`,
    testid);
  valueAxis(svg, plot, valueFormat);
  dayAxis(svg, days.map((day) => day.label), x, { plotW, height, tickFormat });
  days.forEach((day, i) => {
    const parts = named(day.values);
    const detail = parts.length ? ` (${parts.join(", ")})` : "";
    const group = s("g", {
      testid: `${testid}-point`, dataset: { day: day.label, total: totals[i] },
    }, s("title", {}, `${day.label}: ${valueFormat(totals[i])}${detail}`));
    let base = 0;
    day.values.forEach((value, k) => {
      if (!(value > 0)) return;
      group.append(s("rect", {
        class: `segment series-${series[k].tone}`, testid: `${testid}-segment`,
        x: x(i) - barW / 2, y: y(base + value), width: barW, height: y(base) - y(base + value),
        dataset: { series: series[k].label, value },
      }));
      base += value;
    });
    svg.append(group);
  });
  const legend = h("ul", { class: "chart-legend", testid: `${testid}-legend` },
    series.map((item, k) => h("li", { title: item.title || item.label },
      h("span", { class: `swatch series-${item.tone}`, "aria-hidden": "true" }),
      h("span", { class: "name" }, item.label), " ",
      h("span", { class: "hint" }, valueFormat(seriesTotals[k])))));
  const rows = days.map((day, i) => [
    day.label, ...day.values.map(valueFormat), valueFormat(totals[i])]);
  return figure(svg, legend,
    dataTable(title, ["Day", ...series.map((item) => item.label), "Total"], rows));
}

/**
 * Horizontal bar chart of items [{label, value}], largest first; labelHeader names the items in
 * its data table.
 */
export function barChart({
  items, width = 640, title, valueFormat, labelHeader = "Model", testid,
}) {
  if (!items.length) return empty(testid);
  const sorted = [...items].sort((a, b) => b.value - a.value);
  const rowH = 30;
  const labelW = Math.min(200, Math.max(90, width * 0.34));
  const valueW = 78;
  const top = 6;
  const height = top + sorted.length * rowH + 6;
  const barMax = Math.max(10, width - labelW - valueW - 12);
  const max = Math.max(...sorted.map((i) => i.value)) || 1;
  const maxChars = Math.max(8, Math.floor((labelW - 10) / 6.6));
  const svg = frame(width, height, title,
    `${sorted.length} bars; largest ${sorted[0].label} at ${valueFormat(sorted[0].value)}.`,
    testid);
  sorted.forEach((item, i) => {
    const yMid = top + i * rowH + rowH / 2;
    const label = item.label.length > maxChars
      ? `${item.label.slice(0, maxChars - 1)}…` : item.label;
    const barW = Math.max(2, (item.value / max) * barMax);
    svg.append(s("g", {
      testid: `${testid}-bar`, dataset: { label: item.label, value: item.value },
    },
      s("title", {}, `${item.label}: ${valueFormat(item.value)}`),
      s("text", { x: labelW - 8, y: yMid + 4, "text-anchor": "end" }, label),
      s("rect", { class: "bar", x: labelW, y: yMid - 9, width: barW, height: 18, rx: 3 }),
      s("text", { class: "value", x: labelW + barW + 6, y: yMid + 4 }, valueFormat(item.value))));
  });
  return figure(svg, dataTable(title, [labelHeader, "Spend"],
    sorted.map((item) => [item.label, valueFormat(item.value)])));
}

/**
 * Keeps a chart drawn at its container's width: draw(width) is called now and whenever the
 * container's width changes noticeably.
 */
export function responsiveChart(container, draw) {
  let drawnWidth = 0;
  const render = () => {
    const width = Math.floor(container.clientWidth);
    if (width <= 0 || Math.abs(width - drawnWidth) < 24) return;
    drawnWidth = width;
    container.replaceChildren(draw(width));
  };
  const observer = new ResizeObserver(render);
  observer.observe(container);
  container.replaceChildren(draw(Math.max(300, Math.floor(container.clientWidth) || 640)));
  return () => observer.disconnect();
}
