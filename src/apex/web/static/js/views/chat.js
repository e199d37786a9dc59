// One thread: its history (user and assistant messages with their reports), the live timeline of
// runs in flight, and the composer (Enter sends, Shift+Enter adds a newline). A new chat starts
// with example questions once the user has usage data, and with a way to get some before that.

import { h, uniqueId } from "../dom.js";
import { dateTime, integer, relativeTime } from "../format.js";
import { renderMarkdown } from "../markdown.js";
import { renderReport } from "../report.js";
import { isTerminal } from "../timeline.js";

const EXAMPLES = [
  "How can I cut my AI costs by 30%?",
  "Why is my p95 latency so high?",
  "What would moving summarization to a cheaper model save?",
];

function stamp(iso) {
  return iso ? h("time", { datetime: iso, title: dateTime(iso) }, relativeTime(iso)) : null;
}

function userBubble(message) {
  return h("div", { class: "msg user", testid: "user-message", dataset: { messageId: message.id } },
    h("div", { class: "text" }, message.text ?? ""), stamp(message.created_at));
}

/** An answer: its report, which holds the text too; a message without one shows its Markdown. */
function assistantBubble(message) {
  const report = message.report && typeof message.report === "object" ? message.report : null;
  return h("div", { class: "msg assistant", testid: "assistant-message", dataset: { messageId: message.id, runId: message.run_id } },
    report ? renderReport(report) : null,
    !report && message.text
      ? renderMarkdown(message.text, { class: "prose", testid: "final-response" }) : null,
    stamp(message.created_at));
}

export class ChatView {
  /**
   * runs: the shell's run hub ({view(runId, threadId), follow(runId, threadId), fetchRun(runId)}).
   * onThreadCreated(threadId) when the server created the thread for this chat's first message.
   */
  constructor({ api, socket, runs, threadId, scroller, onThreadCreated }) {
    this.api = api;
    this.socket = socket;
    this.runs = runs;
    this.threadId = threadId;
    this.scroller = scroller;
    this.onThreadCreated = onThreadCreated;
    this.pending = new Map();
    this.messages = h("div", { class: "messages", testid: "messages", role: "region", "aria-label": "Conversation" });
    this.element = h("div", { class: "chat", testid: "chat", dataset: { threadId: threadId || "" } },
      h("h1", { class: "visually-hidden" }, "Chat"), this.messages, this.composer());
    this.reloadTimer = null;
  }

  composer() {
    const id = uniqueId("composer");
    const hintId = `${id}-hint`;
    this.input = h("textarea", {
      id, rows: 1, testid: "composer-input", placeholder: "Ask about your AI spend…",
      "aria-describedby": hintId, autocomplete: "off",
    });
    this.sendButton = h("button", { type: "submit", class: "primary", testid: "composer-send", disabled: true }, "Send");
    const form = h("form", { testid: "composer", "aria-label": "Message composer" },
      h("label", { for: id, class: "visually-hidden" }, "Message"), this.input, this.sendButton);
    const resize = () => {
      this.input.style.height = "auto";
      this.input.style.height = `${Math.min(this.input.scrollHeight, window.innerHeight * 0.4)}px`;
      this.sendButton.disabled = !this.input.value.trim();
    };
    this.input.addEventListener("input", resize);
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = this.input.value.trim();
      if (!text) return;
      this.send(text);
      this.input.value = "";
      resize();
    });
    this.resizeComposer = resize;
    return h("div", { class: "composer" }, form,
      h("p", { class: "hint", id: hintId }, "Enter to send · Shift+Enter for a new line"));
  }

  focus() {
    this.input.focus();
  }

  nearBottom() {
    const el = this.scroller;
    return el.scrollHeight - el.scrollTop - el.clientHeight < 160;
  }

  scrollToEnd(force = false) {
    if (force || this.nearBottom()) this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  /** A new chat: example questions when there is data to ask about, else how to get some. */
  welcome() {
    const start = h("div", { class: "start", "aria-busy": "true" });
    this.api.summary().then(
      (summary) => start.replaceWith(
        summary?.totals?.requests > 0 ? this.examples() : this.noData()),
      (error) => { if (error.status !== 401) start.replaceWith(this.noData()); });
    return h("div", { class: "welcome", testid: "welcome" },
      h("h2", {}, "Ask about your AI spend"),
      h("p", { class: "hint" }, "Apex analyses your usage data and answers with a quantified plan."),
      start);
  }

  examples() {
    return h("div", { class: "examples", testid: "examples" }, EXAMPLES.map((text) => {
      const button = h("button", { type: "button", class: "small", testid: "example-question" },
        text);
      button.addEventListener("click", () => {
        this.input.value = text;
        this.resizeComposer();
        this.input.focus();
      });
      return button;
    }));
  }

  noData() {
    const status = h("p", { class: "hint", testid: "chat-demo-status", role: "status" });
    const demo = h("button", { type: "button", testid: "chat-load-demo" }, "Load demo data");
    const card = h("div", { class: "no-data", testid: "no-data" },
      h("h3", {}, "No usage data yet"),
      h("p", {}, "Apex answers from your own LLM usage: upload a CSV, JSON Lines, OpenTelemetry or "
        + "LiteLLM export, or try it on a realistic demo workload."),
      h("div", { class: "buttons" },
        h("a", { href: "#/usage", class: "button primary", testid: "chat-upload" },
          "Upload usage"),
        demo),
      status);
    demo.addEventListener("click", async () => {
      demo.disabled = true;
      status.textContent = "Loading demo data…";
      try {
        const upload = await this.api.loadDemo();
        const rows = upload?.rows_accepted ?? upload?.rows;
        const loaded = Number.isFinite(rows) ? `Loaded ${integer(rows)} demo rows.`
          : "Demo data loaded.";
        card.replaceWith(h("p", { class: "notice", testid: "chat-demo-loaded", role: "status" },
          `${loaded} Try a question:`), this.examples());
      } catch (error) {
        demo.disabled = false;
        status.textContent = `Could not load the demo data: ${error.message}`;
      }
    });
    return card;
  }

  async load() {
    if (!this.threadId) {
      this.messages.replaceChildren(this.welcome());
      return;
    }
    this.messages.setAttribute("aria-busy", "true");
    try {
      const messages = await this.api.messages(this.threadId);
      this.renderHistory(messages);
      this.scrollToEnd(true);
    } catch (error) {
      if (error.status === 404) {
        this.messages.replaceChildren(h("div", { class: "empty-state", testid: "thread-missing", role: "alert" },
          "This thread does not exist or is not yours.", h("br"), h("a", { href: "#/chat" }, "Start a new chat")));
      } else if (error.status !== 401) {
        this.messages.replaceChildren(h("p", { class: "alert", role: "alert" }, `Could not load this thread: ${error.message}`));
      }
    } finally {
      this.messages.removeAttribute("aria-busy");
    }
  }

  renderHistory(messages) {
    const assistantByRun = new Map();
    const startedRuns = new Set();
    for (const m of messages) {
      if (m.role === "assistant" && m.run_id) assistantByRun.set(m.run_id, m);
      if (m.role === "user" && m.run_id) startedRuns.add(m.run_id);
    }
    const nodes = [];
    for (const m of messages) {
      if (m.role === "user") {
        nodes.push(userBubble(m));
        if (m.run_id) nodes.push(this.runBlock(m.run_id, assistantByRun.get(m.run_id)));
      } else if (m.role === "assistant" && !(m.run_id && startedRuns.has(m.run_id))) {
        nodes.push(assistantBubble(m));
      }
    }
    this.messages.replaceChildren(...(nodes.length ? nodes : [this.welcome()]));
  }

  /** A run of the history: its live view when this tab follows it, else the stored answer. */
  runBlock(runId, answer) {
    const live = this.runs.existing(runId);
    if (live) return live.element;
    if (answer) return assistantBubble(answer);
    const slot = h("div", { testid: "run-placeholder" });
    this.runs.fetchRun(runId).then((run) => {
      const view = this.runs.view(runId, this.threadId);
      if (isTerminal(run.state)) view.finishFromRun(run);
      else this.runs.follow(runId, this.threadId);
      slot.replaceWith(view.element);
    }, () => slot.remove());
    return slot;
  }

  send(text) {
    const bubble = userBubble({ text, created_at: new Date().toISOString() });
    bubble.dataset.pending = "true";
    this.messages.querySelector("[data-testid=welcome]")?.remove();
    this.messages.append(bubble);
    const clientMessageId = this.socket.sendUserMessage(text, this.threadId);
    this.pending.set(clientMessageId, bubble);
    this.scrollToEnd(true);
  }

  /** message_accepted: place the run's timeline under the message that started it. */
  accepted(frame) {
    const bubble = this.pending.get(frame.client_message_id);
    if (!bubble) return false;
    this.pending.delete(frame.client_message_id);
    delete bubble.dataset.pending;
    const view = this.runs.view(frame.run_id, frame.thread_id);
    bubble.after(view.element);
    if (!this.threadId && frame.thread_id) {
      this.threadId = frame.thread_id;
      this.element.dataset.threadId = frame.thread_id;
      this.onThreadCreated?.(frame.thread_id);
    }
    this.scrollToEnd(true);
    return true;
  }

  /** The server refused a message (error frame with ref) or never confirmed it. */
  failed(clientMessageId, message) {
    const bubble = this.pending.get(clientMessageId);
    if (!bubble) return false;
    this.pending.delete(clientMessageId);
    bubble.dataset.pending = "failed";
    bubble.after(h("p", { class: "alert", role: "alert", testid: "send-error" }, message));
    return true;
  }

  /** A run of this thread that this tab did not start (another tab): show it with its message. */
  showForeignRun(view) {
    if (view.element.isConnected) return;
    window.clearTimeout(this.reloadTimer);
    this.reloadTimer = window.setTimeout(() => this.load(), 200);
  }
}
