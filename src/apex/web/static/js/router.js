// Hash-based routes, so a deep link or a reload needs nothing from the server but index.html:
//   #/login  #/register  #/oidc?access_token=…  #/chat  #/chat/<thread id>  #/usage  #/budgets  #/webhooks  #/connect

const PAGES = new Set(["usage", "budgets", "webhooks", "connect"]);

/** The route a location hash names; unknown hashes are the chat. */
export function parseRoute(hash = window.location.hash) {
  const raw = hash.startsWith("#") ? hash.slice(1) : hash;
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  });
  const params = new URLSearchParams(query);
  const [name, id] = parts;
  if (name === "login" || name === "register" || name === "oidc") return { name, params };
  if (PAGES.has(name)) return { name, params };
  return { name: "chat", threadId: name === "chat" && id ? id : null, params };
}

export function chatHref(threadId) {
  return threadId ? `#/chat/${encodeURIComponent(threadId)}` : "#/chat";
}

/** Goes to a route; `replace` keeps the history entry (for redirects). */
export function navigate(hash, { replace = false } = {}) {
  if (window.location.hash === hash) return;
  if (replace) {
    window.history.replaceState(null, "", hash);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    window.location.hash = hash;
  }
}
