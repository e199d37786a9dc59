// The Connect page: ingestion keys for the OTLP/HTTP receiver (PROTOCOL section 6). A new key is
// shown once, with the exact OpenTelemetry environment variables that send an application's
// GenAI spans here; afterwards only its first characters are listed. Deleting a key stops it at
// once.

import { scrollingTable } from "../charts.js";
import { announce, copyText, h, icon, toast, uniqueId } from "../dom.js";
import { dateTime, relativeTime } from "../format.js";

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

function copyBlock(text, testid, label) {
  const button = h("button", { type: "button", class: "small", testid: `${testid}-copy` }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await copyText(text);
      button.textContent = "Copied";
      announce(`${label} copied to the clipboard.`);
      window.setTimeout(() => { button.textContent = "Copy"; }, 2000);
    } catch {
      toast("The browser refused to copy; select the text and copy it by hand.", "error");
    }
  });
  return h("div", { class: "snippet" },
    h("pre", { testid, tabindex: "0", "aria-label": label }, h("code", {}, text)),
    button);
}

export class ConnectView {
  constructor({ api }) {
    this.api = api;
    this.list = h("div", { testid: "ingest-keys", "aria-live": "polite" });
    this.issued = h("section", { class: "panel", testid: "new-key", hidden: true, "aria-label": "New ingestion key" });
    this.error = h("p", { class: "form-error", testid: "ingest-key-error", role: "alert", hidden: true });
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
    const id = uniqueId("key-name");
    this.name = h("input", { id, type: "text", required: true, maxlength: 200, testid: "ingest-key-name", autocomplete: "off", placeholder: "production collector" });
    const submit = h("button", { type: "submit", class: "primary", testid: "ingest-key-create" }, icon("plus"), "Create key");
    const form = h("form", { testid: "ingest-key-form", "aria-label": "New ingestion key" },
      h("div", { class: "field" }, h("label", { for: id }, "Key name"), this.name),
      this.error, submit);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    return form;
  }

  async load() {
    try {
      const page = await this.api.ingestionKeys();
      this.render(page.items || []);
    } catch (error) {
      if (error.status !== 401) toast(`Could not load ingestion keys: ${error.message}`, "error");
    }
  }

  render(keys) {
    if (!keys.length) {
      this.list.replaceChildren(h("p", { class: "hint", testid: "ingest-keys-empty" }, "No ingestion keys yet."));
      return;
    }
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
    this.list.replaceChildren(scrollingTable(h("table", { testid: "ingest-key-table" },
      h("thead", {}, h("tr", {}, ["Name", "Key", "Created", "Last used", "Delete"].map((label) => h("th", { scope: "col" }, label)))),
      h("tbody", {}, rows)), "Ingestion keys"));
  }

  async create() {
    this.error.hidden = true;
    const name = this.name.value.trim();
    try {
      const created = await this.api.createIngestionKey(name);
      this.name.value = "";
      this.show(created);
      announce(`Ingestion key ${created.name} created. Copy it now: it is shown only once.`);
      await this.load();
    } catch (error) {
      this.error.textContent = error.message;
      this.error.hidden = false;
    }
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

  async remove(key) {
    if (!window.confirm(`Delete the key “${key.name}”? Exporters using it are refused at once.`)) return;
    try {
      await this.api.deleteIngestionKey(key.id);
      announce(`Key ${key.name} deleted.`);
      await this.load();
    } catch (error) {
      toast(`Could not delete the key: ${error.message}`, "error");
    }
  }
}
