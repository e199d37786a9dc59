// The WebSocket of PROTOCOL.md section 2: authenticated by subprotocols (browsers cannot set
// headers), reconnecting with backoff, and resuming every run in flight from the last seq seen so
// the timeline neither repeats nor misses a line after the network drops.

const CONTROL_FRAMES = new Set(["connection_ready", "message_accepted", "error", "heartbeat", "pong"]);
const PING_AFTER_MS = 30000;
const DEAD_AFTER_MS = 65000;
const REPLAY_THROTTLE_MS = 1500;
const MAX_BACKOFF_MS = 10000;

export function socketUrl(location = window.location) {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

let counter = 0;
function clientId(prefix) {
  counter += 1;
  const random = crypto.getRandomValues(new Uint32Array(2)).join("");
  return `${prefix}-${Date.now().toString(36)}-${counter}-${random}`;
}

export class RunSocket {
  /**
   * handlers: onEvent(event) once per seq in order; onAccepted(frame); onError(frame, context);
   * onStatus("connecting" | "online" | "offline"); onResumeFailed(runId, error);
   * onUnconfirmed(clientMessageId) when the socket dropped before the server accepted a message;
   * onAuthFailed() when the server refuses the credentials even after a refresh;
   * onAlert(alert) for each `alert` frame.
   */
  constructor({ session, registry, url = socketUrl(), ...handlers }) {
    this.session = session;
    this.registry = registry;
    this.url = url;
    this.handlers = handlers;
    this.ws = null;
    this.ready = false;
    this.stopped = true;
    this.queue = [];
    this.attempts = 0;
    this.authRetried = false;
    this.reconnectTimer = null;
    this.lastFrameAt = 0;
    this.unconfirmed = new Set();
    this.resumeRefs = new Map();
    this.replayAskedAt = new Map();
    this.onOnline = () => this.reconnectNow();
    this.watchdog = null;
  }

  status(value) {
    this.state = value;
    this.handlers.onStatus?.(value);
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    this.watchdog = window.setInterval(() => this.checkAlive(), 5000);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    window.clearInterval(this.watchdog);
    window.clearTimeout(this.reconnectTimer);
    if (this.ws) this.ws.close(1000, "signed out");
    this.ws = null;
    this.ready = false;
  }

  async connect() {
    if (this.stopped) return;
    this.status("connecting");
    let token;
    try {
      token = await this.session.freshAccessToken();
    } catch {
      this.scheduleReconnect();
      return;
    }
    if (!token) {
      this.handlers.onAuthFailed?.();
      return;
    }
    if (this.stopped) return;
    const ws = new WebSocket(this.url, ["apex.v1", `bearer.${token}`]);
    this.ws = ws;
    ws.addEventListener("message", (message) => {
      if (this.ws === ws) this.receive(message.data);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws === ws) this.closed(event);
    });
  }

  receive(data) {
    this.lastFrameAt = Date.now();
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== "string") return;
    if (frame.type === "connection_ready") {
      this.ready = true;
      this.attempts = 0;
      this.authRetried = false;
      this.status("online");
      for (const log of this.registry.live()) this.resume(log.runId);
      const queued = this.queue.splice(0);
      for (const item of queued) this.transmit(item);
      return;
    }
    if (frame.type === "message_accepted") {
      this.unconfirmed.delete(frame.client_message_id);
      if (frame.run_id) this.registry.ensure(frame.run_id, frame.thread_id);
      this.handlers.onAccepted?.(frame);
      return;
    }
    if (frame.type === "error") {
      this.unconfirmed.delete(frame.ref);
      const runId = this.resumeRefs.get(frame.ref);
      if (runId) {
        this.resumeRefs.delete(frame.ref);
        this.handlers.onResumeFailed?.(runId, frame.error || {});
      } else {
        this.handlers.onError?.(frame);
      }
      return;
    }
    if (frame.type === "alert") {
      this.handlers.onAlert?.(frame.alert);
      return;
    }
    if (CONTROL_FRAMES.has(frame.type)) return;
    if (typeof frame.run_id === "string" && Number.isInteger(frame.seq)) this.event(frame);
  }

  event(frame) {
    const log = this.registry.ensure(frame.run_id, frame.thread_id);
    const { ready, gap } = log.accept(frame);
    for (const event of ready) this.handlers.onEvent?.(event);
    if (gap) {
      const asked = this.replayAskedAt.get(log.runId) || 0;
      if (Date.now() - asked > REPLAY_THROTTLE_MS) this.resume(log.runId);
    }
  }

  closed(event) {
    this.ws = null;
    this.ready = false;
    for (const id of this.unconfirmed) this.handlers.onUnconfirmed?.(id);
    this.unconfirmed.clear();
    this.resumeRefs.clear();
    if (this.stopped) return;
    this.status("offline");
    if (event.code === 1008) {
      if (this.authRetried) {
        this.handlers.onAuthFailed?.();
        return;
      }
      this.authRetried = true;
      this.session.refresh().then(
        (ok) => (ok ? this.connect() : this.handlers.onAuthFailed?.()),
        () => this.scheduleReconnect(),
      );
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (this.stopped) return;
    window.clearTimeout(this.reconnectTimer);
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempts);
    this.attempts += 1;
    const delay = base * (0.75 + Math.random() * 0.5);
    this.reconnectTimer = window.setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.stopped || this.ws) return;
    window.clearTimeout(this.reconnectTimer);
    this.attempts = 0;
    this.connect();
  }

  /** Pings a quiet connection and drops a dead one, so a half-open socket is noticed. */
  checkAlive() {
    if (!this.ws || !this.ready) return;
    const quiet = Date.now() - this.lastFrameAt;
    if (quiet > DEAD_AFTER_MS) this.ws.close(4000, "no heartbeat");
    else if (quiet > PING_AFTER_MS) this.ws.send(JSON.stringify({ type: "ping" }));
  }

  transmit(frame) {
    if (frame.type === "user_message") this.unconfirmed.add(frame.client_message_id);
    this.ws.send(JSON.stringify(frame));
  }

  send(frame) {
    if (this.ready && this.ws && this.ws.readyState === WebSocket.OPEN) this.transmit(frame);
    else this.queue.push(frame);
  }

  /** Starts a run; returns the client_message_id that message_accepted will echo. */
  sendUserMessage(text, threadId) {
    const id = clientId("msg");
    this.send({ type: "user_message", text, client_message_id: id, ...(threadId ? { thread_id: threadId } : {}) });
    return id;
  }

  stopRun(runId) {
    if (!this.ready) return false;
    this.send({ type: "stop_run", run_id: runId });
    return true;
  }

  /** Follows a run this tab did not start (a reload, another tab): replays it from the start. */
  follow(runId, threadId) {
    this.registry.ensure(runId, threadId);
    if (this.ready) this.resume(runId);
  }

  resume(runId) {
    const log = this.registry.get(runId);
    if (!log || log.final) return;
    const ref = clientId("resume");
    this.resumeRefs.set(ref, runId);
    this.replayAskedAt.set(runId, Date.now());
    this.send({ type: "resume", run_id: runId, after_seq: log.lastSeq, client_message_id: ref });
  }
}
