// One thread: its history (user and assistant messages with their reports), the live timeline of
// runs in flight, and the composer (Enter sends, Shift+Enter adds a newline).

import { h, uniqueId } from "../dom.js";
import { dateTime, relativeTime } from "../format.js";
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

function assistantBubble(message) {
  return h("div", { class: "msg assistant", testid: "assistant-message", dataset: { messageId: message.id, runId: message.run_id } },
    message.text ? h("div", { class: "answer", testid: "final-response" }, message.text) : null,
    message.report && typeof message.report === "object" ? renderReport(message.report) : null,
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

  welcome() {
    return h("div", { class: "welcome", testid: "welcome" },
      h("h2", {}, "Ask about your AI spend"),
      h("p", { class: "hint" }, "Apex analyses your usage data and answers with a quantified plan."),
      h("div", { class: "examples" }, EXAMPLES.map((text) => {
        const button = h("button", { type: "button", class: "small" }, text);
        button.addEventListener("click", () => {
          this.input.value = text;
          this.resizeComposer();
          this.input.focus();
        });
        return button;
      })));
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
