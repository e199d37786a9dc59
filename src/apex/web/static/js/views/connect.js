// The Connect page: ingestion keys for the OTLP/HTTP receiver (PROTOCOL section 6). A new key is
// shown once, with the exact OpenTelemetry environment variables that send an application's
// GenAI spans here; afterwards only its first characters are listed. Deleting a key stops it at
// once.

import { scrollingTable } from "../charts.js";
import { announce, h, icon } from "../dom.js";
import { dateTime, relativeTime } from "../format.js";
import { copyBlock, field, formError, loadItems, onSubmit, removeItem } from "./manage.js";

/**
 * The variables an OpenTelemetry SDK (or Collector's otlphttp exporter) reads. The endpoint is
 * the server's base URL (the SDK adds /v1/traces); header values are URL-encoded, as the
 * specification of OTEL_EXPORTER_OTLP_HEADERS says, so the space after "Bearer" is %20.
 */
export function otelEnvironment(origin, key) {
  return [
    `OTEL_EXPORTER_OTLP_ENDPOINT=${origin}`,
    `OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20${key}`,
    "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
  ].join("\n");
}

export class ConnectView {
  constructor({ api }) {
    this.api = api;
    this.list = h("div", { testid: "ingest-keys", "aria-live": "polite" });
    this.issued = h("section", { class: "panel", testid: "new-key", hidden: true, "aria-label": "New ingestion key" });
    this.error = formError("ingest-key-error");
    this.element = h("div", { class: "usage connect", testid: "connect" },
      h("section", { class: "panel" },
        h("div", { class: "panel-head" }, h("h1", {}, "Connect")),
        h("p", { class: "hint" },
          "Send your application's OpenTelemetry GenAI spans here as they happen: create an ingestion key, "
          + "then set the variables shown in the environment of your SDK or Collector. Calls appear in Usage "
          + "within seconds; spans that are not GenAI calls are ignored."),
        this.form()),
      this.issued,
      h("section", { class: "panel" }, h("h2", {}, "Ingestion keys"), this.list));
  }

  form() {
    this.name = h("input", { type: "text", required: true, maxlength: 200, testid: "ingest-key-name", autocomplete: "off", placeholder: "production collector" });
    const submit = h("button", { type: "submit", class: "primary", testid: "ingest-key-create" }, icon("plus"), "Create key");
    return onSubmit(h("form", { testid: "ingest-key-form", "aria-label": "New ingestion key" },
      field("Key name", this.name), this.error, submit), this.error, () => this.create());
  }

  load() {
    return loadItems({
      fetchPage: () => this.api.ingestionKeys(), host: this.list, what: "ingestion keys",
      render: (keys) => this.table(keys), empty: { testid: "ingest-keys-empty", text: "No ingestion keys yet." },
    });
  }

  table(keys) {
    const rows = keys.map((key) => {
      const remove = h("button", { type: "button", class: "small", testid: "ingest-key-delete", "aria-label": `Delete key ${key.name}` }, icon("trash"));
      remove.addEventListener("click", () => this.remove(key));
      const used = key.last_used_at
        ? h("time", { datetime: key.last_used_at, title: dateTime(key.last_used_at) }, relativeTime(key.last_used_at))
        : "never";
      return h("tr", { testid: "ingest-key", dataset: { id: key.id } },
        h("th", { scope: "row", class: "name" }, String(key.name)),
        h("td", {}, h("code", { testid: "ingest-key-prefix" }, `${key.prefix}…`)),
        h("td", {}, h("time", { datetime: key.created_at }, dateTime(key.created_at))),
        h("td", { testid: "ingest-key-used" }, used),
        h("td", {}, remove));
    });
    return scrollingTable(h("table", { testid: "ingest-key-table" },
      h("thead", {}, h("tr", {}, ["Name", "Key", "Created", "Last used", "Delete"].map((label) => h("th", { scope: "col" }, label)))),
      h("tbody", {}, rows)), "Ingestion keys");
  }

  async create() {
    const created = await this.api.createIngestionKey(this.name.value.trim());
    this.name.value = "";
    this.show(created);
    announce(`Ingestion key ${created.name} created. Copy it now: it is shown only once.`);
    await this.load();
  }

  /** The new key and its variables, once: leaving the page forgets them. */
  show(created) {
    this.issued.replaceChildren(
      h("h2", {}, `Key “${created.name}”`),
      h("p", { class: "hint", testid: "new-key-warning" }, "Copy this key now: it is shown only once and cannot be recovered. Delete it and create another if it is lost."),
      copyBlock(created.key, "new-key-value", "Ingestion key"),
      h("h3", {}, "Environment variables"),
      copyBlock(otelEnvironment(window.location.origin, created.key), "otel-env", "OpenTelemetry environment variables"));
    this.issued.hidden = false;
  }

  remove(key) {
    return removeItem({
      remove: () => this.api.deleteIngestionKey(key.id), reload: () => this.load(), label: `key ${key.name}`,
      question: `Delete the key “${key.name}”? Exporters using it are refused at once.`,
    });
  }
}
