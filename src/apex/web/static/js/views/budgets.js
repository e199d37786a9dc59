// The budgets page: each budget's spend and projection for its current period (UTC) against its
// amount, its state, and a form to create one. Creating, changing and deleting budgets happens
// here (or over the API), never from the chat.

import { announce, h, icon, toast, uniqueId } from "../dom.js";
import { usd } from "../format.js";

const STATE_BADGES = { ok: ["ok", "On track"], warning: ["warn", "Warning"], exceeded: ["error", "Exceeded"] };
const PERIOD_LABELS = { day: "Today", month: "This month" };

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

function field(label, input, hint) {
  const id = uniqueId("budget-field");
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("small", {}, hint) : null);
}

export class BudgetsView {
  constructor({ api }) {
    this.api = api;
    this.list = h("div", { class: "budget-list", testid: "budget-list", "aria-live": "polite" });
    this.error = h("p", { class: "form-error", testid: "budget-error", role: "alert", hidden: true });
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
    this.thresholds = h("input", { type: "text", value: "50, 80, 100", testid: "budget-thresholds", autocomplete: "off" });
    const submit = h("button", { type: "submit", class: "primary", testid: "budget-create" }, icon("plus"), "Create budget");
    const form = h("form", { class: "panel", testid: "budget-form", "aria-label": "New budget" },
      h("h2", {}, "New budget"),
      h("div", { class: "budget-grid" },
        field("Name", this.name),
        field("Amount (USD)", this.amount),
        field("Period", this.period),
        field("Models", this.models, "Comma-separated; empty means every model."),
        field("Providers", this.providers, "Comma-separated; empty means every provider."),
        field("Features", this.features, "Comma-separated; empty means every feature."),
        field("Alert at (% of the amount)", this.thresholds)),
      this.error, submit);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    return form;
  }

  async load() {
    try {
      const page = await this.api.budgets();
      this.render(page.items || []);
    } catch (error) {
      if (error.status !== 401) toast(`Could not load budgets: ${error.message}`, "error");
    }
  }

  render(budgets) {
    if (!budgets.length) {
      this.list.replaceChildren(h("p", { class: "hint", testid: "budgets-empty" }, "No budgets yet. Create one below to be alerted as spend approaches it."));
      return;
    }
    this.list.replaceChildren(...budgets.map((budget) => this.card(budget)));
  }

  card(budget) {
    const [badge, label] = STATE_BADGES[budget.state] || ["", budget.state];
    const share = budget.amount_usd > 0 ? Math.min(budget.spent_usd / budget.amount_usd, 1) : 0;
    const remove = h("button", { type: "button", class: "small", testid: "budget-delete", "aria-label": `Delete budget ${budget.name}` }, icon("trash"));
    remove.addEventListener("click", () => this.remove(budget));
    return h("article", { class: "budget", testid: "budget", dataset: { id: budget.id, state: budget.state } },
      h("div", { class: "panel-head" },
        h("h3", { class: "budget-name" }, String(budget.name)),
        h("span", { class: `badge ${badge}`, testid: "budget-state" }, label),
        remove),
      h("p", { class: "hint" }, `${PERIOD_LABELS[budget.period] || budget.period} · ${scopeText(budget.scope)} · alerts at ${budget.thresholds_pct.join("%, ")}%`),
      h("progress", { max: 1, value: share, "aria-label": `${Math.round(share * 100)}% of the budget spent` }),
      h("dl", { class: "budget-figures" },
        h("div", {}, h("dt", {}, "Spent"), h("dd", { testid: "budget-spent" }, usd(budget.spent_usd))),
        h("div", {}, h("dt", {}, "Projected"), h("dd", { testid: "budget-projected" }, usd(budget.projected_usd))),
        h("div", {}, h("dt", {}, "Budget"), h("dd", { testid: "budget-amount-shown" }, usd(budget.amount_usd)))));
  }

  async create() {
    this.error.hidden = true;
    const body = {
      name: this.name.value.trim(),
      amount_usd: Number(this.amount.value),
      period: this.period.value,
      scope: { models: names(this.models.value), providers: names(this.providers.value), features: names(this.features.value) },
      thresholds_pct: names(this.thresholds.value).map(Number),
    };
    try {
      await this.api.createBudget(body);
      announce(`Budget ${body.name} created.`);
      this.name.value = "";
      this.amount.value = "";
      await this.load();
    } catch (error) {
      this.error.textContent = error.message;
      this.error.hidden = false;
    }
  }

  async remove(budget) {
    try {
      await this.api.deleteBudget(budget.id);
      announce(`Budget ${budget.name} deleted.`);
      await this.load();
    } catch (error) {
      toast(`Could not delete the budget: ${error.message}`, "error");
    }
  }
}
