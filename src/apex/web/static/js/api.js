// The HTTP API of PROTOCOL.md section 1, as the UI uses it. Every call goes through request(),
// which adds the bearer token, turns the protocol's error shape into ApiError, and on a 401 with
// code token_expired refreshes the token pair once and retries the call.

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const error = body && typeof body === "object" ? body.error : null;
  if (error && typeof error === "object") {
    return new ApiError(response.status, error.code || "error", error.message || response.statusText, error.details);
  }
  return new ApiError(response.status, "http_error", `The server answered ${response.status} ${response.statusText}.`.trim());
}

function errorFromXhr(xhr) {
  try {
    const error = JSON.parse(xhr.responseText).error;
    if (error) return new ApiError(xhr.status, error.code || "error", error.message || xhr.statusText, error.details);
  } catch {
    // not JSON: described below from the status line
  }
  return new ApiError(xhr.status, "http_error", `The server answered ${xhr.status} ${xhr.statusText}.`.trim());
}

const NETWORK_ERROR = () => new ApiError(0, "network_error", "The server cannot be reached. Check your connection and try again.");

export class Api {
  constructor(session) {
    this.session = session;
  }

  /** One HTTP call. `auth: false` for the sign-in endpoints. */
  async request(method, path, { body, query, auth = true, retry = true } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
    }
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const token = auth ? this.session.accessToken : null;
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw NETWORK_ERROR();
    }
    if (response.ok) {
      if (response.status === 204) return null;
      const text = await response.text();
      return text ? JSON.parse(text) : null;
    }
    const error = await errorFrom(response);
    if (auth && error.status === 401) {
      if (retry && error.code === "token_expired" && (await this.renewed(token))) {
        return this.request(method, path, { body, query, auth, retry: false });
      }
      this.session.clear();
    }
    throw error;
  }

  /**
   * After a token_expired answer for `used`: true when a newer access token is there to retry
   * with, refreshing only if no other call has already done so.
   */
  async renewed(used) {
    const current = this.session.accessToken;
    if (current && current !== used) return true;
    try {
      return await this.session.refresh();
    } catch {
      return false;
    }
  }

  // ---- auth ----
  providers() { return this.request("GET", "/api/auth/providers", { auth: false }); }
  register(email, password, name) { return this.request("POST", "/api/auth/register", { auth: false, body: { email, password, ...(name ? { name } : {}) } }); }
  login(email, password) { return this.request("POST", "/api/auth/login", { auth: false, body: { email, password } }); }
  devLogin(email) { return this.request("POST", "/api/auth/dev-login", { auth: false, body: email ? { email } : {} }); }
  me() { return this.request("GET", "/api/auth/me"); }

  /** Ends the session on the server (best effort) and always locally. */
  async logout() {
    const token = this.session.accessToken;
    this.session.clear();
    if (!token) return;
    try {
      await fetch("/api/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } });
    } catch {
      // the local session is gone either way; the token expires on its own
    }
  }

  // ---- threads and runs ----
  threads(cursor) { return this.request("GET", "/api/threads", { query: { limit: 20, cursor } }); }
  thread(id) { return this.request("GET", `/api/threads/${encodeURIComponent(id)}`); }
  renameThread(id, title) { return this.request("PATCH", `/api/threads/${encodeURIComponent(id)}`, { body: { title } }); }
  deleteThread(id) { return this.request("DELETE", `/api/threads/${encodeURIComponent(id)}`); }

  /** Every message of a thread, following next_cursor, oldest first. */
  async messages(threadId, maxPages = 20) {
    const items = [];
    let cursor;
    for (let page = 0; page < maxPages; page += 1) {
      const answer = await this.request("GET", `/api/threads/${encodeURIComponent(threadId)}/messages`, { query: { limit: 50, cursor } });
      items.push(...(answer?.items || []));
      cursor = answer?.next_cursor;
      if (!cursor) break;
    }
    const seen = new Set();
    return items
      .filter((m) => (seen.has(m.id) ? false : seen.add(m.id)))
      .sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
  }

  run(id) { return this.request("GET", `/api/runs/${encodeURIComponent(id)}`); }
  cancelRun(id) { return this.request("POST", `/api/runs/${encodeURIComponent(id)}/cancel`); }

  // ---- usage ----
  loadDemo() { return this.request("POST", "/api/usage/demo", { body: {} }); }
  summary(from, to) { return this.request("GET", "/api/usage/summary", { query: { from, to } }); }
  ingestionKeys() { return this.request("GET", "/api/ingest/keys"); }
  createIngestionKey(name) { return this.request("POST", "/api/ingest/keys", { body: { name } }); }
  deleteIngestionKey(id) { return this.request("DELETE", `/api/ingest/keys/${encodeURIComponent(id)}`); }
  budgets() { return this.request("GET", "/api/budgets"); }
  createBudget(body) { return this.request("POST", "/api/budgets", { body }); }
  updateBudget(id, body) { return this.request("PATCH", `/api/budgets/${encodeURIComponent(id)}`, { body }); }
  deleteBudget(id) { return this.request("DELETE", `/api/budgets/${encodeURIComponent(id)}`); }
  webhooks() { return this.request("GET", "/api/webhooks"); }
  createWebhook(url, secret) { return this.request("POST", "/api/webhooks", { body: { url, secret } }); }
  deleteWebhook(id) { return this.request("DELETE", `/api/webhooks/${encodeURIComponent(id)}`); }
  webhookDeliveries(id) { return this.request("GET", `/api/webhooks/${encodeURIComponent(id)}/deliveries`); }
  alerts(cursor) { return this.request("GET", "/api/alerts", { query: { limit: 20, cursor } }); }
  readAlert(id) { return this.request("POST", `/api/alerts/${encodeURIComponent(id)}/read`); }

  /**
   * Multipart upload through XMLHttpRequest, the one browser API that reports upload progress.
   * onProgress receives a fraction between 0 and 1.
   */
  upload(file, format, onProgress, retry = true) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const token = this.session.accessToken;
      xhr.open("POST", "/api/usage/uploads");
      xhr.setRequestHeader("Accept", "application/json");
      if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener("error", () => reject(NETWORK_ERROR()));
      xhr.addEventListener("load", async () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          onProgress(1);
          try {
            resolve(JSON.parse(xhr.responseText));
          } catch {
            reject(new ApiError(xhr.status, "invalid_answer", "The server's answer could not be read."));
          }
          return;
        }
        const error = errorFromXhr(xhr);
        if (xhr.status === 401) {
          if (retry && error.code === "token_expired" && (await this.renewed(token))) {
            this.upload(file, format, onProgress, false).then(resolve, reject);
            return;
          }
          this.session.clear();
        }
        reject(error);
      });
      const form = new FormData();
      form.append("file", file, file.name);
      if (format) form.append("format", format);
      xhr.send(form);
    });
  }
}
