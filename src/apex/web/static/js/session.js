// The signed-in session: the token pair and the user, kept in localStorage so every tab shares it.
//
// Refresh tokens are single use and presenting a used one revokes the whole family, so a refresh
// must never run twice with the same token: one refresh at a time per tab (a shared promise) and
// across tabs (a Web Lock, re-reading storage once the lock is held).

const STORAGE_KEY = "apex.session";
const LOCK_NAME = "apex.refresh";

/** Decodes a JWT's claims without verifying it: only to know when it expires. */
export function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return {};
  }
}

export class Session {
  constructor(storage = window.localStorage) {
    this.storage = storage;
    this.listeners = new Set();
    this.refreshing = null;
    window.addEventListener("storage", (event) => {
      if (event.key === STORAGE_KEY) this.emit();
    });
  }

  read() {
    try {
      const value = JSON.parse(this.storage.getItem(STORAGE_KEY) || "null");
      return value && typeof value.access_token === "string" ? value : null;
    } catch {
      return null;
    }
  }

  get signedIn() { return this.read() !== null; }
  get accessToken() { return this.read()?.access_token ?? null; }
  get refreshToken() { return this.read()?.refresh_token ?? null; }
  get user() { return this.read()?.user ?? null; }

  /** Stores an auth answer ({user?, access_token, refresh_token, expires_in}). */
  store(answer) {
    const previous = this.read();
    const value = {
      access_token: answer.access_token,
      refresh_token: answer.refresh_token ?? previous?.refresh_token ?? null,
      user: answer.user ?? previous?.user ?? null,
    };
    this.storage.setItem(STORAGE_KEY, JSON.stringify(value));
    if (!previous) this.emit();
  }

  setUser(user) {
    const current = this.read();
    if (!current) return;
    this.storage.setItem(STORAGE_KEY, JSON.stringify({ ...current, user }));
  }

  clear() {
    const had = this.read() !== null;
    this.storage.removeItem(STORAGE_KEY);
    if (had) this.emit();
  }

  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit() {
    for (const listener of this.listeners) listener(this.read());
  }

  /** Seconds until the access token expires by this browser's clock (negative when past). */
  secondsLeft() {
    const exp = tokenClaims(this.accessToken || "").exp;
    return typeof exp === "number" ? exp - Date.now() / 1000 : Infinity;
  }

  /**
   * Trades the refresh token for a new pair. Resolves true on success; false when the server
   * refused (the session is then cleared); throws on a network failure (the session is kept).
   */
  refresh() {
    if (!this.refreshing) {
      const used = this.refreshToken;
      const run = () => this.refreshWith(used);
      const locked = navigator.locks ? navigator.locks.request(LOCK_NAME, run) : run();
      this.refreshing = locked.finally(() => { this.refreshing = null; });
    }
    return this.refreshing;
  }

  async refreshWith(used) {
    const current = this.read();
    if (!current?.refresh_token) return false;
    if (used && current.refresh_token !== used) return true;
    const response = await fetch("/api/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ refresh_token: current.refresh_token }),
    });
    if (response.ok) {
      this.store(await response.json());
      return true;
    }
    if (response.status === 401 || response.status === 400 || response.status === 403) {
      this.clear();
      return false;
    }
    throw new Error(`refresh failed with status ${response.status}`);
  }

  /** A current access token, refreshed first when this browser's clock says it has expired. */
  async freshAccessToken(marginSeconds = 5) {
    if (this.secondsLeft() < marginSeconds && this.refreshToken) await this.refresh();
    return this.accessToken;
  }
}
