// Entry point: picks the sign-in page or the signed-in shell from the session and the hash route.

import { Api } from "./api.js";
import { parseRoute } from "./router.js";
import { Session } from "./session.js";
import { renderAuth } from "./views/auth.js";
import { Shell } from "./views/shell.js";

const session = new Session();
const api = new Api(session);
const app = document.getElementById("app");
let shell = null;

function go(hash) {
  window.history.replaceState(null, "", hash);
  render();
}

/**
 * The OIDC callback lands on #/oidc?access_token=…&refresh_token=… (or ?error=…): keep the
 * tokens, then take them out of the address bar and the history at once.
 */
function oidcCallback(params) {
  const access = params.get("access_token");
  window.history.replaceState(null, "", access ? "#/chat" : `#/login?error=${encodeURIComponent(params.get("error") || "no_token")}`);
  if (access) session.store({ access_token: access, refresh_token: params.get("refresh_token") });
  render();
}

function render() {
  const route = parseRoute();
  if (route.name === "oidc") {
    oidcCallback(route.params);
    return;
  }
  if (!session.signedIn) {
    if (shell) {
      shell.destroy();
      shell = null;
    }
    if (route.name !== "login" && route.name !== "register") {
      go("#/login");
      return;
    }
    app.replaceChildren(renderAuth({ api, session, mode: route.name, params: route.params }));
    document.title = route.name === "register" ? "Create your account · Apex" : "Sign in · Apex";
    return;
  }
  if (route.name === "login" || route.name === "register") {
    go("#/chat");
    return;
  }
  if (!shell) {
    shell = new Shell({ api, session });
    app.replaceChildren(shell.element);
  }
  shell.show(route);
}

window.addEventListener("hashchange", render);
session.onChange(() => {
  if (Boolean(shell) !== session.signedIn) render();
});
render();
