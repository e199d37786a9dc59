// Inline-SVG charts drawn in the browser: a line for spend by day, horizontal bars for spend by
// model. Each chart is drawn for the pixel width it gets (so text stays legible at 375 px) and
// comes with a data table for screen readers and for reading exact figures.

import { h, s, uniqueId } from "./dom.js";

/** A round axis maximum and its tick step, for 4 or 5 gridlines. */
export function niceScale(max, ticks = 4) {
  if (!(max > 0)) return { max: 1, step: 0.25 };
  const rough = max / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((candidate) => candidate * ticks >= max);
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

function dataTable(caption, headers, rows) {
  return h("details", { class: "chart-data" },
    h("summary", {}, "Show data"),
    h("div", { class: "table-wrap" },
      h("table", {},
        h("caption", {}, caption),
        h("thead", {}, h("tr", {}, headers.map((label, i) => h("th", { scope: "col", class: i ? "num" : "" }, label)))),
        h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell, i) => (i ? h("td", { class: "num" }, cell) : h("th", { scope: "row" }, cell)))))))));
}

/**
 * Line chart of points [{label, value}] in the given order.
 * Returns a figure holding the SVG (data-testid=testid) and its data table.
 */
export function lineChart({ points, width = 640, height = 240, title, valueFormat, tickFormat = (label) => label, testid }) {
  if (!points.length) return h("p", { class: "empty-state", testid: `${testid}-empty` }, "No data in this period.");
  const left = 64;
  const right = 16;
  const top = 14;
  const bottom = 30;
  const plotW = Math.max(10, width - left - right);
  const plotH = height - top - bottom;
  const { max, step } = niceScale(Math.max(...points.map((p) => p.value)));
  const x = (i) => left + (points.length === 1 ? plotW / 2 : (i * plotW) / (points.length - 1));
  const y = (v) => top + plotH - (v / max) * plotH;
  const total = points.reduce((sum, p) => sum + p.value, 0);
  const svg = frame(width, height, title,
    `${points.length} points from ${points[0].label} to ${points[points.length - 1].label}, total ${valueFormat(total)}, highest ${valueFormat(Math.max(...points.map((p) => p.value)))}.`,
    testid);
  for (let v = 0; v <= max + step / 2; v += step) {
    svg.append(s("line", { class: "grid", x1: left, x2: left + plotW, y1: y(v), y2: y(v) }));
    svg.append(s("text", { x: left - 8, y: y(v) + 4, "text-anchor": "end" }, valueFormat(v)));
  }
  const labelEvery = Math.max(1, Math.ceil(points.length / Math.max(2, Math.floor(plotW / 80))));
  const last = points.length - 1;
  points.forEach((p, i) => {
    const ticked = i === last || (i % labelEvery === 0 && last - i >= labelEvery * 0.75);
    if (ticked) {
      const anchor = points.length > 1 && i === 0 ? "start" : points.length > 1 && i === last ? "end" : "middle";
      svg.append(s("text", { x: x(i), y: height - 10, "text-anchor": anchor }, tickFormat(p.label)));
    }
  });
  const coords = points.map((p, i) => `${x(i).toFixed(1)},${y(p.value).toFixed(1)}`);
  svg.append(s("path", { class: "area", d: `M${x(0).toFixed(1)},${y(0)} L${coords.join(" L")} L${x(points.length - 1).toFixed(1)},${y(0)} Z` }));
  svg.append(s("path", { class: "line", testid: `${testid}-line`, d: `M${coords.join(" L")}` }));
  const radius = points.length > 60 ? 2 : 3.5;
  points.forEach((p, i) => {
    svg.append(s("circle", { class: "dot", cx: x(i), cy: y(p.value), r: radius, testid: `${testid}-point` },
      s("title", {}, `${p.label}: ${valueFormat(p.value)}`)));
  });
  return h("figure", { class: "chart-figure", style: "margin:0" }, svg,
    dataTable(title, ["Day", "Spend"], points.map((p) => [p.label, valueFormat(p.value)])));
}

/** Horizontal bar chart of items [{label, value}], largest first. */
export function barChart({ items, width = 640, title, valueFormat, testid }) {
  if (!items.length) return h("p", { class: "empty-state", testid: `${testid}-empty` }, "No data in this period.");
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
    `${sorted.length} bars; largest ${sorted[0].label} at ${valueFormat(sorted[0].value)}.`, testid);
  sorted.forEach((item, i) => {
    const yMid = top + i * rowH + rowH / 2;
    const label = item.label.length > maxChars ? `${item.label.slice(0, maxChars - 1)}…` : item.label;
    const barW = Math.max(2, (item.value / max) * barMax);
    svg.append(s("g", { testid: `${testid}-bar`, dataset: { label: item.label, value: item.value } },
      s("title", {}, `${item.label}: ${valueFormat(item.value)}`),
      s("text", { x: labelW - 8, y: yMid + 4, "text-anchor": "end" }, label),
      s("rect", { class: "bar", x: labelW, y: yMid - 9, width: barW, height: 18, rx: 3 }),
      s("text", { class: "value", x: labelW + barW + 6, y: yMid + 4 }, valueFormat(item.value))));
  });
  return h("figure", { class: "chart-figure", style: "margin:0" }, svg,
    dataTable(title, ["Model", "Spend"], sorted.map((item) => [item.label, valueFormat(item.value)])));
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
