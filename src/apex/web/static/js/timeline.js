// The live run timeline: one card per agent with its thinking lines and tool chips, a stop button,
// and, when the final event arrives, the answer and the report. It applies events exactly as a
// RunLog releases them (each seq once, in order), so it never draws a line twice.

import { h, uniqueId } from "./dom.js";
import { milliseconds } from "./format.js";
import { renderMarkdown } from "./markdown.js";
import { renderReport } from "./report.js";

const STATE_LABELS = {
  pending: "Waiting to start…",
  starting: "Starting…",
  running: "Working…",
  completing: "Finishing…",
  completed: "Completed",
  cancelled: "Stopped",
  failed: "Failed",
  timeout: "Timed out",
};
const TERMINAL = new Set(["completed", "cancelled", "failed", "timeout"]);
const STATE_BADGE = { completed: "ok", cancelled: "warn", failed: "error", timeout: "error" };
const TOOL_MARK = { running: "…", ok: "✓", error: "✕", timeout: "!" };

export function isTerminal(state) {
  return TERMINAL.has(state);
}

function compactJson(value, limit = 1200) {
  let text;
  try {
    text = JSON.stringify(value ?? {}, null, 2);
  } catch {
    text = String(value);
  }
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}

export class RunView {
  /** onStop(runId) asks the server to stop; onChange() after every drawn change (for scrolling). */
  constructor({ runId, threadId = null, onStop, onChange, onFinal }) {
    this.runId = runId;
    this.threadId = threadId;
    this.onStop = onStop;
    this.onChange = onChange || (() => {});
    this.onFinal = onFinal || (() => {});
    this.state = "pending";
    this.cards = [];
    this.chips = new Map();
    this.types = new Set();
    this.count = 0;
    this.statusText = h("span", { class: "status" }, STATE_LABELS.pending);
    this.spinner = h("span", { class: "spinner", "aria-hidden": "true" });
    this.badge = h("span", { class: "badge live", testid: "run-status", role: "status" }, this.spinner, " ", this.statusText);
    this.stopButton = h("button", { type: "button", class: "small danger", testid: "stop-run" }, "Stop");
    this.stopButton.addEventListener("click", () => this.requestStop());
    this.agents = h("div", { class: "agents", testid: "agents" });
    this.outcome = h("div", { class: "outcome" });
    this.element = h("section", {
      class: "run", testid: "run", "aria-label": "Agent run",
      dataset: { runId, state: this.state, lastSeq: 0, eventCount: 0, eventTypes: "" },
    },
    h("div", { class: "run-head" }, this.badge, h("span", { class: "spacer" }), this.stopButton),
    this.agents, this.outcome);
  }

  get finished() {
    return isTerminal(this.state);
  }

  requestStop() {
    if (this.finished) return;
    this.stopButton.disabled = true;
    this.stopButton.textContent = "Stopping…";
    this.onStop?.(this.runId);
  }

  /** The stop request could not be delivered: let the user try again. */
  stopFailed() {
    if (this.finished) return;
    this.stopButton.disabled = false;
    this.stopButton.textContent = "Stop";
  }

  setState(state) {
    this.state = state;
    this.element.dataset.state = state;
    this.statusText.textContent = STATE_LABELS[state] || state;
    if (isTerminal(state)) {
      this.spinner.remove();
      this.badge.className = `badge ${STATE_BADGE[state] || ""}`;
      this.stopButton.remove();
    }
  }

  /** Applies one event; events must come in seq order, each once (see RunLog). */
  apply(event) {
    if (this.finished) return;
    this.count += 1;
    this.types.add(event.type);
    Object.assign(this.element.dataset, {
      lastSeq: event.seq, eventCount: this.count, eventTypes: [...this.types].sort().join(" "),
    });
    if (!this.threadId && event.thread_id) this.threadId = event.thread_id;
    if (this.state === "pending" || this.state === "starting") this.setState("running");
    const payload = event.payload || {};
    const agent = event.agent_name || "agent";
    switch (event.type) {
      case "agent_started":
        this.newCard(agent, payload.task, event.seq);
        break;
      case "agent_thinking":
        this.thought(this.cardFor(agent), payload, event.seq);
        break;
      case "tool_executing":
        this.toolStarted(this.cardFor(agent), payload, event.seq);
        break;
      case "tool_completed":
        this.toolFinished(this.cardFor(agent), payload, event.seq);
        break;
      case "agent_completed":
        this.agentDone(this.cardFor(agent), "completed", event.seq, payload.result_summary);
        if (payload.final) this.finish(payload.state || "completed", payload);
        break;
      case "agent_error":
        this.agentDone(this.cardFor(agent), "error", event.seq, null, payload.error);
        if (payload.final) this.finish(payload.state || "failed", payload);
        break;
      case "agent_stopped":
        this.finish("cancelled", payload);
        break;
      default:
        break;
    }
    this.onChange();
  }

  newCard(agent, task, seq) {
    const card = {
      agent,
      thoughts: h("ol", { class: "thoughts", testid: "thinking-lines" }),
      tools: h("div", { class: "tools", testid: "tool-chips" }),
      status: h("span", { class: "badge live" }, "running"),
    };
    card.element = h("article", {
      class: "agent", testid: "agent-card", "aria-label": `Agent ${agent}`,
      dataset: { agent, status: "running", startedSeq: seq ?? undefined },
    },
    h("header", {}, h("h2", {}, agent), card.status),
    task ? h("div", { class: "task", testid: "agent-task" }, typeof task === "string" ? task : compactJson(task)) : null,
    card.thoughts, card.tools);
    this.cards.push(card);
    this.agents.append(card.element);
    return card;
  }

  cardFor(agent) {
    for (let i = this.cards.length - 1; i >= 0; i -= 1) {
      if (this.cards[i].agent === agent) return this.cards[i];
    }
    return this.newCard(agent, null, null);
  }

  thought(card, payload, seq) {
    const step = Number.isInteger(payload.step)
      ? h("span", { class: "step" }, payload.total_steps ? `${payload.step}/${payload.total_steps}` : `${payload.step}.`)
      : null;
    card.thoughts.append(h("li", { testid: "thinking-line", dataset: { seq } }, step, String(payload.thought ?? "")));
  }

  toolStarted(card, payload, seq) {
    const name = String(payload.tool_name ?? "tool");
    const args = compactJson(payload.arguments);
    const tipId = uniqueId("tool-tip");
    const chip = {
      mark: h("span", { class: "mark", "aria-hidden": "true" }, TOOL_MARK.running),
      duration: h("span", { class: "dur" }, "running"),
      tip: h("span", { class: "tip", role: "tooltip", id: tipId }, `arguments: ${args}`),
      args,
      name,
    };
    chip.element = h("button", {
      type: "button", class: "chip", testid: "tool-chip", title: `${name} ${args}`,
      "aria-expanded": "false", "aria-describedby": tipId,
      dataset: { tool: name, status: "running", toolCallId: payload.tool_call_id, executingSeq: seq },
    }, chip.mark, h("span", { class: "name" }, name), chip.duration, chip.tip);
    chip.element.addEventListener("click", () => {
      const open = chip.element.getAttribute("aria-expanded") !== "true";
      chip.element.setAttribute("aria-expanded", String(open));
    });
    if (payload.tool_call_id) this.chips.set(payload.tool_call_id, chip);
    card.tools.append(chip.element);
    return chip;
  }

  toolFinished(card, payload, seq) {
    const chip = this.chips.get(payload.tool_call_id) || this.toolStarted(card, payload, null);
    const status = ["ok", "error", "timeout"].includes(payload.status) ? payload.status : "error";
    chip.element.dataset.status = status;
    chip.element.dataset.completedSeq = seq;
    if (Number.isFinite(payload.duration_ms)) chip.element.dataset.durationMs = payload.duration_ms;
    chip.mark.textContent = TOOL_MARK[status];
    chip.duration.textContent = Number.isFinite(payload.duration_ms) ? milliseconds(payload.duration_ms) : status;
    const summary = payload.result_summary ? `\nresult: ${payload.result_summary}` : "";
    chip.tip.textContent = `arguments: ${chip.args}\nstatus: ${status}${summary}`;
    chip.element.title = `${chip.name} ${chip.args}\n${status}${Number.isFinite(payload.duration_ms) ? `, ${milliseconds(payload.duration_ms)}` : ""}${summary}`;
  }

  agentDone(card, status, seq, summary, error) {
    card.element.dataset.status = status;
    card.element.dataset.completedSeq = seq;
    card.status.className = `badge ${status === "completed" ? "ok" : "error"}`;
    card.status.textContent = status === "completed" ? "done" : "error";
    if (summary) card.element.append(h("div", { class: "result", testid: "agent-result" }, String(summary)));
    if (error) card.element.append(h("div", { class: "error-text", testid: "agent-error" }, `${error.message || "Error"}${error.code ? ` (${error.code})` : ""}`));
  }

  /** Ends the run: the answer and the report, or why it ended without one. */
  finish(state, payload = {}) {
    for (const card of this.cards) {
      if (card.element.dataset.status === "running") {
        card.element.dataset.status = state === "cancelled" ? "stopped" : "error";
        card.status.className = "badge warn";
        card.status.textContent = state === "cancelled" ? "stopped" : "ended";
      }
    }
    this.setState(state);
    const report = payload.report && typeof payload.report === "object" ? payload.report : null;
    if (payload.final_response && !report) {
      this.outcome.append(renderMarkdown(String(payload.final_response),
        { class: "prose", testid: "final-response" }));
    }
    if (payload.error && state !== "completed") {
      const message = typeof payload.error === "string" ? payload.error : payload.error.message;
      this.outcome.append(h("p", { class: "alert", role: "alert", testid: "run-error" }, message || "The run failed."));
    }
    if (report) this.outcome.append(renderReport(report));
    this.onFinal(this);
  }

  /** Ends the view from GET /api/runs/{id} when its events can no longer be replayed. */
  finishFromRun(run) {
    if (this.finished || !isTerminal(run.state)) return;
    this.finish(run.state, { final_response: run.final_response, report: run.report, error: run.error });
    this.onChange();
  }
}
