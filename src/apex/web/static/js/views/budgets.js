// The budgets page: each budget's spend and projection for its current period (UTC) against its
// amount, its state, and one form that creates a budget or, after "Edit" on a card, changes that
// budget. Creating, changing and deleting budgets happens here (or over the API), never from the
// chat.

import { announce, h, icon } from "../dom.js";
import { usd } from "../format.js";
import { field, formError, loadItems, onSubmit, removeItem } from "./manage.js";

const STATE_BADGES = { ok: ["ok", "On track"], warning: ["warn", "Warning"], exceeded: ["error", "Exceeded"] };
const PERIOD_LABELS = { day: "Today", month: "This month" };
const DEFAULT_THRESHOLDS = "50, 80, 100";

/** "gpt-4o, claude-sonnet-4" → ["gpt-4o", "claude-sonnet-4"]. */
function names(text) {
  return [...new Set(String(text).split(",").map((name) => name.trim()).filter(Boolean))];
}

function scopeText(scope) {
  const parts = [];
  for (const [key, label] of [["models", "models"], ["providers", "providers"], ["features", "features"]]) {
    if (scope?.[key]?.length) parts.push(`${label}: ${scope[key].join(", ")}`);
  }
  return parts.length ? parts.join("; ") : "all usage";
}

export class BudgetsView {
  constructor({ api }) {
    this.api = api;
    this.editing = null;
    this.list = h("div", { class: "budget-list", testid: "budget-list", "aria-live": "polite" });
    this.error = formError("budget-error");
    this.element = h("div", { class: "usage budgets", testid: "budgets" },
      h("section", { class: "panel" },
        h("div", { class: "panel-head" }, h("h1", {}, "Budgets")),
        h("p", { class: "hint" }, "Spend and projection are for the current day or month in UTC. The projection carries the spend so far at the same rate to the end of the period."),
        this.list),
      this.form());
  }

  form() {
    this.name = h("input", { type: "text", required: true, maxlength: 200, testid: "budget-name", autocomplete: "off" });
    this.amount = h("input", { type: "number", required: true, min: "0.01", step: "0.01", testid: "budget-amount", inputmode: "decimal" });
    this.period = h("select", { testid: "budget-period" },
      h("option", { value: "month" }, "Month"), h("option", { value: "day" }, "Day"));
    this.models = h("input", { type: "text", testid: "budget-models", autocomplete: "off" });
    this.providers = h("input", { type: "text", testid: "budget-providers", autocomplete: "off" });
    this.features = h("input", { type: "text", testid: "budget-features", autocomplete: "off" });
    this.thresholds = h("input", { type: "text", value: DEFAULT_THRESHOLDS, testid: "budget-thresholds", autocomplete: "off" });
    this.heading = h("h2", { testid: "budget-form-title" }, "New budget");
    this.submit = h("button", { type: "submit", class: "primary", testid: "budget-create" }, icon("plus"), "Create budget");
    this.cancel = h("button", { type: "button", testid: "budget-edit-cancel", hidden: true }, "Cancel");
    this.cancel.addEventListener("click", () => this.stopEditing());
    this.formElement = h("form", { class: "panel", testid: "budget-form", "aria-label": "New budget" },
      this.heading,
      h("div", { class: "budget-grid" },
        field("Name", this.name),
        field("Amount (USD)", this.amount),
        field("Period", this.period),
        field("Models", this.models, "Comma-separated; empty means every model."),
        field("Providers", this.providers, "Comma-separated; empty means every provider."),
        field("Features", this.features, "Comma-separated; empty means every feature."),
        field("Alert at (% of the amount)", this.thresholds)),
      this.error, h("div", { class: "form-actions" }, this.submit, this.cancel));
    return onSubmit(this.formElement, this.error, () => this.save());
  }

  load() {
    return loadItems({
      fetchPage: () => this.api.budgets(), host: this.list, what: "budgets",
      render: (budgets) => budgets.map((budget) => this.card(budget)),
      empty: { testid: "budgets-empty", text: "No budgets yet. Create one below to be alerted as spend approaches it." },
    });
  }

  card(budget) {
    const [badge, label] = STATE_BADGES[budget.state] || ["", budget.state];
    const share = budget.amount_usd > 0 ? Math.min(budget.spent_usd / budget.amount_usd, 1) : 0;
    const edit = h("button", { type: "button", class: "small", testid: "budget-edit", "aria-label": `Edit budget ${budget.name}` }, icon("pencil"));
    edit.addEventListener("click", () => this.startEditing(budget));
    const remove = h("button", { type: "button", class: "small", testid: "budget-delete", "aria-label": `Delete budget ${budget.name}` }, icon("trash"));
    remove.addEventListener("click", () => this.remove(budget));
    return h("article", { class: "budget", testid: "budget", dataset: { id: budget.id, state: budget.state } },
      h("div", { class: "panel-head" },
        h("h3", { class: "budget-name" }, String(budget.name)),
        h("span", { class: `badge ${badge}`, testid: "budget-state" }, label),
        edit, remove),
      h("p", { class: "hint", testid: "budget-terms" }, `${PERIOD_LABELS[budget.period] || budget.period} · ${scopeText(budget.scope)} · alerts at ${budget.thresholds_pct.join("%, ")}%`),
      h("progress", { max: 1, value: share, "aria-label": `${Math.round(share * 100)}% of the budget spent` }),
      h("dl", { class: "budget-figures" },
        h("div", {}, h("dt", {}, "Spent"), h("dd", { testid: "budget-spent" }, usd(budget.spent_usd))),
        h("div", {}, h("dt", {}, "Projected"), h("dd", { testid: "budget-projected" }, usd(budget.projected_usd))),
        h("div", {}, h("dt", {}, "Budget"), h("dd", { testid: "budget-amount-shown" }, usd(budget.amount_usd)))));
  }

  /** What the form says, in the API's shape (the same for creating and for changing). */
  body() {
    return {
      name: this.name.value.trim(),
      amount_usd: Number(this.amount.value),
      period: this.period.value,
      scope: { models: names(this.models.value), providers: names(this.providers.value), features: names(this.features.value) },
      thresholds_pct: names(this.thresholds.value).map(Number),
    };
  }

  async save() {
    const body = this.body();
    if (this.editing) {
      await this.api.updateBudget(this.editing.id, body);
      announce(`Budget ${body.name} saved.`);
      this.stopEditing();
    } else {
      await this.api.createBudget(body);
      announce(`Budget ${body.name} created.`);
      this.name.value = "";
      this.amount.value = "";
    }
    await this.load();
  }

  /** Fills the form with a budget's terms; saving it then changes that budget. */
  startEditing(budget) {
    this.editing = budget;
    this.error.hidden = true;
    this.name.value = budget.name;
    this.amount.value = String(budget.amount_usd);
    this.period.value = budget.period;
    this.models.value = (budget.scope?.models || []).join(", ");
    this.providers.value = (budget.scope?.providers || []).join(", ");
    this.features.value = (budget.scope?.features || []).join(", ");
    this.thresholds.value = budget.thresholds_pct.join(", ");
    this.heading.textContent = `Edit budget “${budget.name}”`;
    this.formElement.setAttribute("aria-label", "Edit budget");
    this.submit.replaceChildren(icon("pencil"), "Save changes");
    this.cancel.hidden = false;
    this.name.focus();
  }

  /** Back to an empty form that creates a new budget. */
  stopEditing() {
    this.editing = null;
    this.error.hidden = true;
    this.formElement.reset();
    this.thresholds.value = DEFAULT_THRESHOLDS;
    this.heading.textContent = "New budget";
    this.formElement.setAttribute("aria-label", "New budget");
    this.submit.replaceChildren(icon("plus"), "Create budget");
    this.cancel.hidden = true;
  }

  remove(budget) {
    if (this.editing?.id === budget.id) this.stopEditing();
    return removeItem({ remove: () => this.api.deleteBudget(budget.id), reload: () => this.load(), label: `budget ${budget.name}` });
  }
}
