// The alerts bell of the top bar: the unread count, and a panel of the latest alerts. Alerts
// arrive live over the WebSocket (`alert` frames) and are read from GET /api/alerts on load;
// opening an alert in the panel marks it read.

import { announce, h, icon, toast } from "../dom.js";
import { relativeTime } from "../format.js";

const SHOWN = 20;
// alerts arriving within this long of each other are told in one toast
const TOAST_GATHER_MS = 400;
const KIND_LABELS = { budget_threshold: "Budget", budget_projected: "Projection", anomaly: "Anomaly" };

export class AlertBell {
  constructor({ api }) {
    this.api = api;
    this.alerts = [];
    this.unread = 0;
    this.arrived = [];
    this.telling = 0;
    this.count = h("span", { class: "bell-count", testid: "alerts-unread", hidden: true }, "0");
    this.button = h("button", {
      type: "button", class: "icon bell", testid: "alerts-bell", "aria-haspopup": "true",
      "aria-expanded": "false", "aria-label": "Alerts",
    }, icon("bell"), this.count);
    this.button.addEventListener("click", () => this.toggle());
    this.list = h("ul", { class: "alert-list", testid: "alerts-list" });
    this.panel = h("div", {
      class: "alerts-panel", testid: "alerts-panel", role: "region", "aria-label": "Alerts",
      hidden: true,
    }, h("div", { class: "panel-head" }, h("h2", {}, "Alerts"),
      h("a", { href: "#/budgets", testid: "alerts-budgets-link" }, "Budgets")), this.list);
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        this.toggle(false);
        this.button.focus();
      }
    });
    this.element = h("div", { class: "alerts" }, this.button, this.panel);
  }

  async load() {
    try {
      const page = await this.api.alerts();
      this.alerts = page.items || [];
      this.setUnread(page.unread_count ?? this.alerts.filter((a) => !a.read_at).length);
      this.render();
    } catch (error) {
      if (error.status !== 401) toast(`Could not load alerts: ${error.message}`, "error");
    }
  }

  /** A live `alert` frame: first in the panel, counted unread, and told in one toast with the
   * others that arrive with it (one commit can raise several). */
  add(alert) {
    if (!alert || typeof alert.id !== "string" || this.alerts.some((a) => a.id === alert.id)) return;
    this.alerts = [alert, ...this.alerts].slice(0, SHOWN);
    if (!alert.read_at) this.setUnread(this.unread + 1);
    this.render();
    this.arrived.push(alert);
    window.clearTimeout(this.telling);
    this.telling = window.setTimeout(() => this.tell(), TOAST_GATHER_MS);
  }

  tell() {
    const arrived = this.arrived.splice(0);
    const message = arrived.length === 1 ? String(arrived[0].message || "New alert")
      : `${arrived.length} new alerts: open the bell to read them.`;
    toast(message, "info");
    announce(message);
  }

  setUnread(count) {
    this.unread = Math.max(0, count);
    this.count.textContent = String(this.unread);
    this.count.hidden = this.unread === 0;
    this.button.setAttribute("aria-label", this.unread ? `Alerts, ${this.unread} unread` : "Alerts");
  }

  toggle(open = this.panel.hidden) {
    this.panel.hidden = !open;
    this.button.setAttribute("aria-expanded", String(open));
  }

  render() {
    if (!this.alerts.length) {
      this.list.replaceChildren(h("li", { class: "hint" }, "No alerts yet. Budgets and unusual spend raise them."));
      return;
    }
    this.list.replaceChildren(...this.alerts.map((alert) => this.item(alert)));
  }

  item(alert) {
    const read = Boolean(alert.read_at);
    const button = h("button", {
      type: "button", class: "alert-item", testid: "alert-item",
      dataset: { kind: alert.kind, read: String(read) },
    },
    h("span", { class: `badge ${alert.kind === "anomaly" ? "warn" : "error"}` }, KIND_LABELS[alert.kind] || "Alert"),
    h("span", { class: "alert-message" }, String(alert.message || "")),
    h("time", { class: "hint", datetime: alert.created_at }, relativeTime(alert.created_at)));
    button.addEventListener("click", () => this.markRead(alert));
    return h("li", {}, button);
  }

  async markRead(alert) {
    if (alert.read_at) return;
    try {
      await this.api.readAlert(alert.id);
      alert.read_at = new Date().toISOString();
      this.setUnread(this.unread - 1);
      this.render();
    } catch (error) {
      toast(`Could not mark the alert read: ${error.message}`, "error");
    }
  }
}
