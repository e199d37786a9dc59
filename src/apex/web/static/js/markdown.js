// Markdown to DOM, safely: the one place the app turns Markdown into elements. The text can hold
// names from uploaded rows and words from questions, so raw HTML in it is shown as text, images as
// their alt text (nothing is loaded from elsewhere), and marked's output always goes through
// DOMPurify, restricted to the elements Markdown produces, before it becomes DOM.

import DOMPurify from "../vendor/dompurify/purify.es.mjs";
import { Marked } from "../vendor/marked/marked.esm.js";
import { h } from "./dom.js";

const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" };

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

const markdown = new Marked({
  gfm: true,
  async: false,
  renderer: {
    html: ({ text, block }) => (block ? `<p>${escapeHtml(text)}</p>` : escapeHtml(text)),
    image: ({ text }) => escapeHtml(text),
  },
});

const purifier = DOMPurify(window);
purifier.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("rel", "noopener noreferrer");
    node.setAttribute("target", "_blank");
  }
});

const SANITIZE = {
  ALLOWED_TAGS: ["p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del",
    "code", "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th",
    "td"],
  ALLOWED_ATTR: ["href", "title", "align", "start", "class", "target", "rel"],
  RETURN_DOM_FRAGMENT: true,
};

/**
 * Markdown as a `div.markdown` of sanitized elements. Tables are wrapped in a scroll container
 * so a wide one scrolls inside its card instead of being clipped on a phone.
 */
export function renderMarkdown(text, attrs = {}) {
  const fragment = purifier.sanitize(markdown.parse(String(text ?? "")), SANITIZE);
  for (const table of fragment.querySelectorAll("table")) {
    const wrap = h("div", { class: "table-wrap" });
    table.replaceWith(wrap);
    wrap.append(table);
  }
  return h("div", { ...attrs, class: `markdown ${attrs.class || ""}`.trim() }, fragment);
}
