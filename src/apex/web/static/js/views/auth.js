// Sign in and register with email and password; OIDC providers and the development login when
// the server announces them (GET /api/auth/providers).

import { h, logo, uniqueId } from "../dom.js";

const MIN_PASSWORD = 10;

function field({ label, type, name, autocomplete, hint, required = true, minlength }) {
  const id = uniqueId(name);
  const hintId = hint ? `${id}-hint` : undefined;
  const input = h("input", {
    id, name, type, autocomplete, required, minlength, "aria-describedby": hintId, testid: `auth-${name}`,
    spellcheck: type === "email" ? "false" : undefined, autocapitalize: type === "email" ? "off" : undefined,
  });
  return { input, element: h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("small", { id: hintId }, hint) : null) };
}

function validate(mode, email, password) {
  if (!email.value.trim()) return [email, "Enter your email address."];
  if (!email.validity.valid) return [email, "Enter a valid email address, like name@example.com."];
  if (!password.value) return [password, "Enter your password."];
  if (mode === "register" && password.value.length < MIN_PASSWORD) {
    return [password, `Choose a password of at least ${MIN_PASSWORD} characters.`];
  }
  return null;
}

function providerButtons(api, session, host, showError) {
  api.providers().then((answer) => {
    const providers = Array.isArray(answer?.providers) ? answer.providers : [];
    const buttons = providers
      .filter((p) => typeof p.login_url === "string" && /^(\/(?!\/)|https?:\/\/)/.test(p.login_url))
      .map((p) => h("a", { class: "button", href: p.login_url, testid: `oidc-${p.name}` }, `Continue with ${p.label || p.name}`));
    if (answer?.dev_login) {
      const dev = h("button", { type: "button", testid: "dev-login" }, "Development login");
      dev.addEventListener("click", async () => {
        dev.disabled = true;
        try {
          session.store(await api.devLogin());
        } catch (error) {
          showError(error.message);
          dev.disabled = false;
        }
      });
      buttons.push(dev);
    }
    if (buttons.length) host.replaceChildren(h("div", { class: "separator" }, "or"), h("div", { class: "providers", testid: "providers" }, buttons));
  }, () => {
    // a server without OIDC providers or without the discovery endpoint: email and password only
  });
}

/** The sign-in page; mode is "login" or "register". */
export function renderAuth({ api, session, mode, params }) {
  const registering = mode === "register";
  const email = field({ label: "Email", type: "email", name: "email", autocomplete: "email" });
  const password = field({
    label: "Password", type: "password", name: "password",
    autocomplete: registering ? "new-password" : "current-password",
    hint: registering ? `At least ${MIN_PASSWORD} characters.` : undefined,
    minlength: registering ? MIN_PASSWORD : undefined,
  });
  const name = registering ? field({ label: "Name (optional)", type: "text", name: "name", autocomplete: "name", required: false }) : null;
  const alert = h("div", { class: "alert", role: "alert", testid: "auth-error" });
  const submit = h("button", { type: "submit", class: "primary", testid: "auth-submit" }, registering ? "Create account" : "Sign in");
  const showError = (message) => { alert.textContent = message; };
  const headingId = uniqueId("auth-title");

  const form = h("form", { novalidate: true, "aria-labelledby": headingId, testid: registering ? "register-form" : "login-form" },
    name?.element, email.element, password.element, alert, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const input of [email.input, password.input]) input.removeAttribute("aria-invalid");
    const problem = validate(mode, email.input, password.input);
    if (problem) {
      problem[0].setAttribute("aria-invalid", "true");
      problem[0].focus();
      showError(problem[1]);
      return;
    }
    showError("");
    submit.disabled = true;
    submit.textContent = registering ? "Creating account…" : "Signing in…";
    try {
      const answer = registering
        ? await api.register(email.input.value.trim(), password.input.value, name.input.value.trim())
        : await api.login(email.input.value.trim(), password.input.value);
      session.store(answer);
    } catch (error) {
      showError(error.code === "conflict" || error.status === 409
        ? "An account with this email already exists. Sign in instead."
        : error.message);
      submit.disabled = false;
      submit.textContent = registering ? "Create account" : "Sign in";
      (error.status === 401 ? password.input : email.input).focus();
    }
  });

  const providers = h("div", {});
  providerButtons(api, session, providers, showError);
  if (params?.get("error")) showError(`Sign-in with your provider did not complete: ${params.get("error")}.`);

  const card = h("div", { class: "auth-card" },
    h("div", { class: "brand" }, logo(), h("strong", {}, "Apex")),
    h("h1", { id: headingId }, registering ? "Create your account" : "Sign in"),
    h("p", { class: "hint" }, "Your AI-spend optimization co-pilot."),
    form,
    providers,
    h("p", { class: "switch" }, registering ? "Already have an account? " : "New to Apex? ",
      h("a", { href: registering ? "#/login" : "#/register", testid: registering ? "to-login" : "to-register" },
        registering ? "Sign in" : "Create an account")));
  const main = h("main", { class: "auth", id: "main-content", testid: "auth-page" }, card);
  queueMicrotask(() => (registering ? name.input : email.input).focus());
  return main;
}
