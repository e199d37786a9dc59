// What the pages that manage a user's own things (budgets, ingestion keys, webhooks) share: a
// labelled field, a form whose failure is shown beside its button, a list loaded from the API,
// deleting an item, and a value shown once with a Copy button. One home, so every such page
// reports errors, announces changes and treats a 401 (the session ends) the same way.

import { announce, copyText, h, toast, uniqueId } from "../dom.js";

/** A label wired to its input, with an optional hint under it. */
export function field(label, input, hint) {
  input.id = uniqueId("field");
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, hint ? h("small", {}, hint) : null);
}

/** The paragraph a form shows its server-side failure in; hidden until there is one. */
export function formError(testid) {
  return h("p", { class: "form-error", testid, role: "alert", hidden: true });
}

/**
 * Runs `action` when `form` is submitted (the browser has checked its constraints by then). A
 * failure is shown in `error` rather than a toast, next to the fields it is about.
 */
export function onSubmit(form, error, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    try {
      await action();
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    }
  });
  return form;
}

/**
 * Fetches a `{items: [...]}` page into `host`: what `render(items)` builds, or a hint saying
 * there is nothing yet (`empty`: its test id and text). A 401 is not reported: the session has
 * ended and the sign-in page replaces this one.
 */
export async function loadItems({ fetchPage, host, render, empty, what }) {
  try {
    const items = (await fetchPage())?.items || [];
    host.replaceChildren(...(items.length ? [render(items)].flat() : [h("p", { class: "hint", testid: empty.testid }, empty.text)]));
  } catch (error) {
    if (error.status !== 401) toast(`Could not load ${what}: ${error.message}`, "error");
  }
}

/**
 * Deletes one item after an optional confirmation, announces it and reloads the list.
 * `label` names the item in messages ("budget Team"), `question` is asked first when given.
 */
export async function removeItem({ remove, reload, label, question }) {
  if (question && !window.confirm(question)) return;
  try {
    await remove();
    announce(`${label[0].toUpperCase()}${label.slice(1)} deleted.`);
    await reload();
  } catch (error) {
    toast(`Could not delete the ${label}: ${error.message}`, "error");
  }
}

/** Preformatted text with a Copy button: a secret shown once, or the settings that use it. */
export function copyBlock(text, testid, label) {
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
