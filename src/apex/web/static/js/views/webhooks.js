// The Webhooks page (PROTOCOL section 6): the URLs every alert of the user is POSTed to, signed
// with HMAC-SHA256 of the body under the webhook's secret. The server never shows a secret
// again, so the page proposes a random one, sends it, and shows it once with the way to check a
// signature. Each webhook lists its latest delivery attempts, failed ones and retries included.

import { scrollingTable } from "../charts.js";
import { announce, h, icon } from "../dom.js";
import { dateTime } from "../format.js";
import { copyBlock, field, formError, loadItems, onSubmit, removeItem } from "./manage.js";

const SECRET_BYTES = 24;

/** A fresh signing secret from the browser's cryptographic generator: whsec_ and 48 hex digits. */
export function newSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(SECRET_BYTES));
  return `whsec_${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

function outcome(delivery) {
  if (delivery.delivered) return h("span", { class: "badge ok" }, `Delivered (${delivery.status_code})`);
  const why = delivery.status_code ? `HTTP ${delivery.status_code}` : delivery.error || "no answer";
  return h("span", { class: "badge error" }, `Failed: ${why}`);
}

export class WebhooksView {
  constructor({ api }) {
    this.api = api;
    this.list = h("div", { class: "budget-list", testid: "webhooks", "aria-live": "polite" });
    this.issued = h("section", { class: "panel", testid: "new-webhook", hidden: true, "aria-label": "New webhook" });
    this.error = formError("webhook-error");
    this.element = h("div", { class: "usage webhooks", testid: "webhooks-page" },
      h("section", { class: "panel" },
        h("div", { class: "panel-head" }, h("h1", {}, "Webhooks")),
        h("p", { class: "hint" },
          "Every alert (budget thresholds, projected overruns, spend anomalies) is POSTed as JSON to each URL here, "
          + "with the header X-Apex-Signature: sha256=<hex HMAC-SHA256 of the body with the secret>. "
          + "A receiver that does not answer 2xx is retried with exponential backoff."),
        this.form()),
      this.issued,
      h("section", { class: "panel" }, h("h2", {}, "Your webhooks"), this.list));
  }

  form() {
    this.url = h("input", { type: "url", required: true, maxlength: 2048, testid: "webhook-url", autocomplete: "off", placeholder: "your receiver's https:// address" });
    this.secret = h("input", { type: "text", required: true, minlength: 8, maxlength: 256, testid: "webhook-secret", autocomplete: "off", spellcheck: "false", value: newSecret() });
    const submit = h("button", { type: "submit", class: "primary", testid: "webhook-create" }, icon("plus"), "Add webhook");
    return onSubmit(h("form", { testid: "webhook-form", "aria-label": "New webhook" },
      field("URL", this.url, "An http:// or https:// address; redirects are not followed."),
      field("Signing secret", this.secret, "Proposed at random; keep it or paste your own (8 characters or more). It is shown once."),
      this.error, submit), this.error, () => this.create());
  }

  load() {
    return loadItems({
      fetchPage: () => this.api.webhooks(), host: this.list, what: "webhooks",
      render: (webhooks) => webhooks.map((webhook) => this.card(webhook)),
      empty: { testid: "webhooks-empty", text: "No webhooks yet: alerts are shown in the app only." },
    });
  }

  card(webhook) {
    const remove = h("button", { type: "button", class: "small", testid: "webhook-delete", "aria-label": `Delete webhook ${webhook.url}` }, icon("trash"));
    remove.addEventListener("click", () => this.remove(webhook));
    const attempts = h("div", { testid: "webhook-deliveries" });
    const refresh = h("button", { type: "button", class: "small", testid: "webhook-deliveries-refresh" }, "Refresh");
    refresh.addEventListener("click", () => this.deliveries(webhook, attempts));
    const details = h("details", { testid: "webhook-attempts" },
      h("summary", {}, "Delivery attempts"), refresh, attempts);
    details.addEventListener("toggle", () => {
      if (details.open) this.deliveries(webhook, attempts);
    });
    return h("article", { class: "budget", testid: "webhook", dataset: { id: webhook.id } },
      h("div", { class: "panel-head" },
        h("h3", { class: "budget-name webhook-url", testid: "webhook-url-shown" }, String(webhook.url)),
        remove),
      h("p", { class: "hint" }, "Added ", h("time", { datetime: webhook.created_at }, dateTime(webhook.created_at))),
      details);
  }

  /** The webhook's latest attempts, newest first, into `host`. */
  deliveries(webhook, host) {
    return loadItems({
      fetchPage: () => this.api.webhookDeliveries(webhook.id), host, what: "delivery attempts",
      render: (items) => this.attemptsTable(webhook, items),
      empty: { testid: "webhook-deliveries-empty", text: "No alert has been sent here yet." },
    });
  }

  attemptsTable(webhook, items) {
    const rows = items.map((delivery) => h("tr", { testid: "webhook-delivery", dataset: { delivered: delivery.delivered, status: delivery.status_code ?? "" } },
      h("td", {}, h("time", { datetime: delivery.created_at }, dateTime(delivery.created_at))),
      h("td", {}, h("code", {}, delivery.alert_id)),
      h("td", { class: "num" }, String(delivery.attempt)),
      h("td", {}, outcome(delivery))));
    return scrollingTable(h("table", { testid: "webhook-delivery-table" },
      h("caption", { class: "visually-hidden" }, `Delivery attempts to ${webhook.url}`),
      h("thead", {}, h("tr", {}, ["Time", "Alert", "Attempt", "Outcome"].map((label) => h("th", { scope: "col" }, label)))),
      h("tbody", {}, rows)), "Delivery attempts");
  }

  async create() {
    const secret = this.secret.value;
    const created = await this.api.createWebhook(this.url.value.trim(), secret);
    this.url.value = "";
    this.secret.value = newSecret();
    this.show(created, secret);
    announce("Webhook added. Copy its signing secret now: it is shown only once.");
    await this.load();
  }

  /** The secret of the webhook just added, once: leaving the page forgets it. */
  show(created, secret) {
    this.issued.replaceChildren(
      h("h2", {}, "Webhook added"),
      h("p", { class: "hint", testid: "new-webhook-warning" },
        `Alerts go to ${created.url}. Copy the signing secret now: it is shown only once. `
        + "Check each delivery by computing the HMAC-SHA256 of the request body with it and comparing to X-Apex-Signature."),
      copyBlock(secret, "new-webhook-secret", "Webhook signing secret"));
    this.issued.hidden = false;
  }

  remove(webhook) {
    return removeItem({
      remove: () => this.api.deleteWebhook(webhook.id), reload: () => this.load(), label: `webhook ${webhook.url}`,
      question: `Delete the webhook ${webhook.url}? Alerts stop being sent there at once.`,
    });
  }
}
