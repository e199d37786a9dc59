// Small DOM helpers. Text is always inserted as text nodes, never parsed as HTML, so data from
// the server or from uploaded files can never inject markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function setAttributes(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "testid") el.setAttribute("data-testid", value);
    else if (key === "dataset") {
      for (const [name, v] of Object.entries(value)) {
        if (v !== undefined && v !== null) el.dataset[name] = String(v);
      }
    } else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "value" && "value" in el) el.value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
}

function appendChildren(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Builds an HTML element: h("button", {class: "primary", onclick}, "Send"). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttributes(el, attrs);
  appendChildren(el, children);
  return el;
}

/** Builds an SVG element, for the charts. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttributes(el, attrs);
  appendChildren(el, children);
  return el;
}

let uid = 0;

/** A document-unique id, for label/aria wiring. */
export function uniqueId(prefix = "id") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** Tells screen-reader users what just happened (copied, deleted, saved). */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  window.setTimeout(() => { region.textContent = message; }, 30);
}

/** A dismissible message in the corner; errors stay until dismissed or replaced. */
export function toast(message, kind = "info") {
  const host = document.querySelector(".toasts");
  if (!host) return;
  const close = h("button", { type: "button", class: "small", "aria-label": "Dismiss" }, "✕");
  const item = h("div", { class: "toast", testid: "toast", role: kind === "error" ? "alert" : "status", dataset: { kind } },
    h("span", {}, message), close);
  close.addEventListener("click", () => item.remove());
  host.append(item);
  while (host.children.length > 3) host.firstElementChild.remove();
  window.setTimeout(() => item.remove(), kind === "error" ? 12000 : 5000);
}

/** Saves text as a file through the browser's download mechanism. */
export function downloadText(filename, text, mime) {
  const url = URL.createObjectURL(new Blob([text], { type: mime }));
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Copies text; falls back to a hidden textarea where the Clipboard API is unavailable. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = h("textarea", { class: "visually-hidden", readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("copy refused");
}

const ICONS = {
  plus: "M12 5v14M5 12h14",
  pencil: "M4 20h4L19 9l-4-4L4 16v4zM13.5 6.5l4 4",
  trash: "M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3",
  menu: "M4 6h16M4 12h16M4 18h16",
  bell: "M6 16V11a6 6 0 0 1 12 0v5l2 2H4zM10 20a2 2 0 0 0 4 0",
};

/** A stroke icon drawn inline (no icon font, so it renders on every system). */
export function icon(name) {
  return s("svg", { class: "icon", viewBox: "0 0 24 24", width: 18, height: 18, "aria-hidden": "true", focusable: "false" },
    s("path", { d: ICONS[name], fill: "none", stroke: "currentColor", "stroke-width": 2, "stroke-linecap": "round", "stroke-linejoin": "round" }));
}

/** The Apex mark, inline so the UI needs no extra request to draw it. */
export function logo() {
  return s("svg", { class: "logo", viewBox: "0 0 32 32", "aria-hidden": "true", focusable: "false" },
    s("rect", { width: 32, height: 32, rx: 7, fill: "#1f4fc7" }),
    s("path", { d: "M8 24 16 7l8 17h-4.2L16 15.6 12.2 24z", fill: "#fff" }),
    s("path", { d: "M13.2 20.5h5.6", stroke: "#fff", "stroke-width": 2 }));
}
