// The signed-in application: top bar, threads sidebar, and the main area showing a chat or the
// usage page. It owns the one WebSocket of this tab and the views of the runs it follows.

import { h, icon, logo, toast } from "../dom.js";
import { RunRegistry } from "../runlog.js";
import { RunSocket } from "../socket.js";
import { RunView } from "../timeline.js";
import { ChatView } from "./chat.js";
import { ConnectView } from "./connect.js";
import { AlertBell } from "./alerts.js";
import { BudgetsView } from "./budgets.js";
import { ThreadsSidebar } from "./sidebar.js";
import { UsageView } from "./usage.js";
import { WebhooksView } from "./webhooks.js";

const STATUS_LABELS = { connecting: "Connecting…", online: "Live", offline: "Offline, reconnecting…" };

/** The pages other than the chat: route name → its view, the call that fills it, its title. */
const PAGES = {
  usage: { View: UsageView, load: (view) => view.loadSummary(), title: "Usage" },
  budgets: { View: BudgetsView, load: (view) => view.load(), title: "Budgets" },
  webhooks: { View: WebhooksView, load: (view) => view.load(), title: "Webhooks" },
  connect: { View: ConnectView, load: (view) => view.load(), title: "Connect" },
};

export class Shell {
  constructor({ api, session }) {
    this.api = api;
    this.session = session;
    this.registry = new RunRegistry();
    this.runViews = new Map();
    this.view = null;
    this.sidebar = new ThreadsSidebar({ api });
    this.bell = new AlertBell({ api });
    this.socket = new RunSocket({
      session,
      registry: this.registry,
      onStatus: (state) => this.connectionStatus(state),
      onEvent: (event) => this.event(event),
      onAccepted: (frame) => this.chat()?.accepted(frame),
      onError: (frame) => this.socketError(frame),
      onResumeFailed: (runId) => this.resumeFailed(runId),
      onUnconfirmed: (id) => this.chat()?.failed(id, "The connection dropped before the server confirmed this message; reload the thread to see whether it was received."),
      onAuthFailed: () => session.clear(),
      onAlert: (alert) => this.bell.add(alert),
    });
    this.runs = {
      existing: (runId) => this.runViews.get(runId) || null,
      view: (runId, threadId) => this.runView(runId, threadId),
      follow: (runId, threadId) => this.socket.follow(runId, threadId),
      fetchRun: (runId) => this.api.run(runId),
    };
    this.element = this.layout();
    this.socket.start();
    this.sidebar.refresh();
    this.loadUser();
    this.bell.load();
  }

  layout() {
    this.conn = h("span", { class: "conn", testid: "connection-status", dataset: { state: "connecting" }, role: "status" },
      h("span", { class: "label" }, STATUS_LABELS.connecting));
    this.userLabel = h("span", { class: "user", testid: "user-email" }, this.session.user?.email || "");
    this.menuToggle = h("button", {
      type: "button", class: "icon menu-toggle", testid: "menu-toggle",
      "aria-controls": "sidebar", "aria-expanded": "false", "aria-label": "Show threads",
    }, icon("menu"));
    this.menuToggle.addEventListener("click", () => this.toggleSidebar());
    const logout = h("button", { type: "button", class: "small", testid: "logout" }, "Sign out");
    logout.addEventListener("click", () => this.api.logout());
    this.nav = new Map([["chat", "Chat"], ...Object.entries(PAGES).map(([name, page]) => [name, page.title])]
      .map(([name, label]) => [name, h("a", { href: `#/${name}`, testid: `nav-${name}` }, label)]));
    this.main = h("main", { class: "main", id: "main-content", tabindex: "-1", testid: "main" });
    const skip = h("a", { class: "skip-link", href: "#main-content" }, "Skip to content");
    skip.addEventListener("click", (event) => {
      event.preventDefault();
      this.main.focus();
    });
    this.root = h("div", { class: "shell", testid: "shell", dataset: { sidebar: "closed" } },
      skip,
      h("header", { class: "topbar" },
        this.menuToggle,
        h("a", { class: "brand", href: "#/chat", "aria-label": "Apex home", style: "color:inherit;text-decoration:none" }, logo(), h("span", {}, "Apex")),
        h("nav", { "aria-label": "Main" }, [...this.nav.values()]),
        h("span", { class: "spacer" }),
        this.conn, this.bell.element, this.userLabel, logout),
      this.sidebar.element,
      this.main);
    this.root.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.root.dataset.sidebar === "open") {
        this.toggleSidebar(false);
        this.menuToggle.focus();
      }
    });
    return this.root;
  }

  toggleSidebar(open = this.root.dataset.sidebar !== "open") {
    this.root.dataset.sidebar = open ? "open" : "closed";
    this.menuToggle.setAttribute("aria-expanded", String(open));
    this.menuToggle.setAttribute("aria-label", open ? "Hide threads" : "Show threads");
    if (open) this.sidebar.element.querySelector("a")?.focus();
  }

  async loadUser() {
    try {
      const me = await this.api.me();
      if (me) {
        this.session.setUser(me);
        this.userLabel.textContent = me.email || "";
      }
    } catch (error) {
      if (error.status !== 401) toast(`Could not load your profile: ${error.message}`, "error");
    }
  }

  connectionStatus(state) {
    this.conn.dataset.state = state;
    this.conn.firstChild.textContent = STATUS_LABELS[state] || state;
    this.conn.title = STATUS_LABELS[state] || state;
  }

  chat() {
    return this.view instanceof ChatView ? this.view : null;
  }

  /** Shows a route: {name: "chat", threadId} or one of PAGES ({name: "usage"}, …). */
  show(route) {
    this.toggleSidebar(false);
    for (const [name, link] of this.nav) {
      if (route.name === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const current = this.chat();
    if (route.name === "chat" && current && current.threadId && current.threadId === route.threadId) return;
    this.view?.destroy?.();
    const page = PAGES[route.name];
    if (page) {
      this.view = new page.View({ api: this.api });
      this.sidebar.setActive(null);
      this.main.replaceChildren(this.view.element);
      page.load(this.view);
      document.title = `${page.title} · Apex`;
    } else {
      this.view = new ChatView({
        api: this.api, socket: this.socket, runs: this.runs, threadId: route.threadId, scroller: this.main,
        onThreadCreated: (threadId) => this.threadCreated(threadId),
      });
      this.sidebar.setActive(route.threadId);
      this.main.replaceChildren(this.view.element);
      this.view.load();
      this.view.focus();
      document.title = "Chat · Apex";
    }
    this.main.scrollTop = 0;
  }

  /** The first message of a new chat created its thread: point the address at it, quietly. */
  threadCreated(threadId) {
    window.history.replaceState(null, "", `#/chat/${encodeURIComponent(threadId)}`);
    this.sidebar.setActive(threadId);
    this.sidebar.refresh();
  }

  runView(runId, threadId) {
    let view = this.runViews.get(runId);
    if (!view) {
      view = new RunView({
        runId, threadId,
        onStop: (id) => this.stop(id),
        onChange: () => this.chat()?.scrollToEnd(),
        onFinal: () => this.sidebar.refresh(),
      });
      this.runViews.set(runId, view);
    }
    return view;
  }

  event(event) {
    const view = this.runView(event.run_id, event.thread_id);
    view.apply(event);
    const chat = this.chat();
    if (chat && chat.threadId && chat.threadId === event.thread_id) chat.showForeignRun(view);
  }

  /** Stop over the socket when it is up, else over HTTP: either way the server cancels the run. */
  async stop(runId) {
    if (this.socket.stopRun(runId)) return;
    try {
      await this.api.cancelRun(runId);
    } catch (error) {
      this.runViews.get(runId)?.stopFailed();
      toast(`Could not stop the run: ${error.message}`, "error");
    }
  }

  async resumeFailed(runId) {
    try {
      const run = await this.api.run(runId);
      this.runViews.get(runId)?.finishFromRun(run);
    } catch (error) {
      if (error.status !== 401) toast(`Lost track of a run: ${error.message}`, "error");
    }
  }

  socketError(frame) {
    const message = frame.error?.message || "The server refused a message.";
    if (frame.ref && this.chat()?.failed(frame.ref, message)) return;
    toast(message, "error");
  }

  destroy() {
    this.socket.stop();
    this.sidebar.destroy();
    this.view?.destroy?.();
  }
}
