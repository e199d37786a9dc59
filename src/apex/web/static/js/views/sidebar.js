// The threads sidebar: the caller's threads newest first, with relative time and message count;
// rename (PATCH) and delete (DELETE, after a confirmation dialog).

import { announce, h, icon, toast } from "../dom.js";
import { dateTime, relativeTime } from "../format.js";
import { chatHref, navigate } from "../router.js";

const UNTITLED = "Untitled chat";

function confirmDialog(message, confirmLabel) {
  return new Promise((resolve) => {
    const cancel = h("button", { type: "button", value: "cancel", testid: "confirm-cancel" }, "Cancel");
    const confirm = h("button", { type: "button", class: "primary", testid: "confirm-ok" }, confirmLabel);
    const dialog = h("dialog", { testid: "confirm-dialog", "aria-label": confirmLabel },
      h("p", {}, message), h("div", { class: "buttons" }, cancel, confirm));
    const close = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener("click", () => close(false));
    confirm.addEventListener("click", () => close(true));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      close(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

export class ThreadsSidebar {
  constructor({ api }) {
    this.api = api;
    this.threads = [];
    this.nextCursor = null;
    this.activeId = null;
    this.list = h("ul", { class: "thread-list", testid: "thread-list", "aria-labelledby": "threads-heading" });
    this.empty = h("p", { class: "empty", testid: "threads-empty", hidden: true }, "No threads yet. Ask a question to start one.");
    this.more = h("button", { type: "button", class: "more small", hidden: true, testid: "threads-more" }, "Load more");
    this.more.addEventListener("click", () => this.loadMore());
    this.element = h("aside", { class: "sidebar", id: "sidebar", testid: "sidebar", "aria-label": "Threads" },
      h("div", { class: "sidebar-head" }, h("a", { class: "button primary", href: "#/chat", testid: "new-chat" }, icon("plus"), "New chat")),
      h("h2", { id: "threads-heading", class: "visually-hidden" }, "Threads"),
      this.list, this.empty, this.more);
    this.renaming = false;
    this.clock = window.setInterval(() => this.tick(), 60000);
  }

  destroy() {
    window.clearInterval(this.clock);
  }

  async refresh() {
    try {
      const page = await this.api.threads();
      this.threads = page?.items || [];
      this.nextCursor = page?.next_cursor || null;
      this.draw();
    } catch (error) {
      if (error.status !== 401) toast(`Could not load your threads: ${error.message}`, "error");
    }
  }

  async loadMore() {
    if (!this.nextCursor) return;
    this.more.disabled = true;
    try {
      const page = await this.api.threads(this.nextCursor);
      const known = new Set(this.threads.map((t) => t.id));
      this.threads.push(...(page?.items || []).filter((t) => !known.has(t.id)));
      this.nextCursor = page?.next_cursor || null;
      this.draw();
    } catch (error) {
      toast(`Could not load more threads: ${error.message}`, "error");
    } finally {
      this.more.disabled = false;
    }
  }

  setActive(threadId) {
    this.activeId = threadId;
    for (const item of this.list.children) {
      const active = item.dataset.threadId === threadId;
      item.classList.toggle("active", active);
      const link = item.querySelector("a");
      if (link) {
        if (active) link.setAttribute("aria-current", "page");
        else link.removeAttribute("aria-current");
      }
    }
  }

  /** Keeps "3 min ago" true without redrawing (which would end a rename in progress). */
  tick() {
    for (const time of this.list.querySelectorAll("time")) time.textContent = relativeTime(time.getAttribute("datetime"));
  }

  draw() {
    if (this.renaming) return;
    const focusedId = document.activeElement?.closest?.(".thread")?.dataset.threadId;
    const focusedRole = document.activeElement?.dataset?.testid;
    this.list.replaceChildren(...this.threads.map((thread) => this.item(thread)));
    this.empty.hidden = this.threads.length > 0;
    this.more.hidden = !this.nextCursor;
    this.setActive(this.activeId);
    if (focusedId) {
      this.list.querySelector(`[data-thread-id="${CSS.escape(focusedId)}"] [data-testid="${focusedRole}"]`)?.focus();
    }
  }

  item(thread) {
    const title = thread.title || UNTITLED;
    const count = Number(thread.message_count) || 0;
    const when = thread.updated_at || thread.created_at;
    const rename = h("button", { type: "button", testid: "rename-thread", "aria-label": `Rename “${title}”`, title: "Rename" }, icon("pencil"));
    const remove = h("button", { type: "button", testid: "delete-thread", "aria-label": `Delete “${title}”`, title: "Delete" }, icon("trash"));
    const item = h("li", { class: "thread", testid: "thread-item", dataset: { threadId: thread.id } },
      h("a", { href: chatHref(thread.id), testid: "thread-link" },
        h("span", { class: "title", testid: "thread-title" }, title),
        " ",
        h("span", { class: "meta", testid: "thread-meta" },
          h("time", { datetime: when, title: dateTime(when) }, relativeTime(when)),
          ` · ${count} ${count === 1 ? "message" : "messages"}`)),
      h("div", { class: "actions" }, rename, remove));
    rename.addEventListener("click", () => this.startRename(item, thread));
    remove.addEventListener("click", () => this.remove(thread));
    return item;
  }

  startRename(item, thread) {
    const input = h("input", { type: "text", value: thread.title || "", "aria-label": "Thread title", maxlength: 200, testid: "rename-input", required: true });
    const save = h("button", { type: "submit", class: "small primary", testid: "rename-save" }, "Save");
    const cancel = h("button", { type: "button", class: "small", testid: "rename-cancel" }, "Cancel");
    const form = h("form", { testid: "rename-form" }, input, save, cancel);
    const restore = () => {
      if (!this.renaming) return;
      this.renaming = false;
      this.draw();
      this.list.querySelector(`[data-thread-id="${CSS.escape(thread.id)}"] [data-testid="rename-thread"]`)?.focus();
    };
    cancel.addEventListener("click", restore);
    form.addEventListener("focusout", (event) => {
      if (!form.contains(event.relatedTarget) && !save.disabled) restore();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        restore();
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const title = input.value.trim();
      if (!title || title === thread.title) {
        restore();
        return;
      }
      save.disabled = true;
      try {
        const updated = await this.api.renameThread(thread.id, title);
        thread.title = updated?.title ?? title;
        if (updated?.updated_at) thread.updated_at = updated.updated_at;
        announce(`Thread renamed to ${thread.title}.`);
        restore();
      } catch (error) {
        toast(`Could not rename the thread: ${error.message}`, "error");
        save.disabled = false;
      }
    });
    this.renaming = true;
    item.replaceChildren(form);
    input.focus();
    input.select();
  }

  async remove(thread) {
    const title = thread.title || UNTITLED;
    if (!(await confirmDialog(`Delete “${title}”? It disappears from your threads.`, "Delete"))) {
      this.list.querySelector(`[data-thread-id="${CSS.escape(thread.id)}"] [data-testid="delete-thread"]`)?.focus();
      return;
    }
    try {
      await this.api.deleteThread(thread.id);
      const index = this.threads.findIndex((t) => t.id === thread.id);
      this.threads = this.threads.filter((t) => t.id !== thread.id);
      this.draw();
      announce(`Deleted ${title}.`);
      const next = this.list.children[Math.min(index, this.list.children.length - 1)];
      (next?.querySelector("a") || this.element.querySelector("[data-testid=new-chat]")).focus();
      if (this.activeId === thread.id) navigate("#/chat", { replace: true });
    } catch (error) {
      toast(`Could not delete the thread: ${error.message}`, "error");
    }
  }
}
