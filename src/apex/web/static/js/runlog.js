// Exactly-once, in-order delivery of a run's events to the view.
//
// Events carry a per-run `seq` that starts at 1 and grows by exactly 1 (PROTOCOL.md section 3).
// After a reconnect the server replays from the `after_seq` we ask for and may also push the live
// tail, so the same event can arrive twice and events can arrive ahead of a gap. A RunLog releases
// each seq once and in order, holds early arrivals until the gap is filled, and says when there is
// a gap so the socket can ask for a replay.

export class RunLog {
  constructor(runId, threadId = null) {
    this.runId = runId;
    this.threadId = threadId;
    this.lastSeq = 0;
    this.pending = new Map();
    this.final = false;
  }

  /** Accepts one event; returns {ready: events to apply now, in order; gap: a seq is missing}. */
  accept(event) {
    const seq = event.seq;
    if (!Number.isInteger(seq) || seq <= this.lastSeq || this.pending.has(seq) || this.final) {
      return { ready: [], gap: this.pending.size > 0 };
    }
    if (!this.threadId && event.thread_id) this.threadId = event.thread_id;
    this.pending.set(seq, event);
    const ready = [];
    while (this.pending.has(this.lastSeq + 1)) {
      const next = this.pending.get(this.lastSeq + 1);
      this.pending.delete(this.lastSeq + 1);
      this.lastSeq += 1;
      ready.push(next);
      if (next.payload && next.payload.final === true) {
        this.final = true;
        this.pending.clear();
        break;
      }
    }
    return { ready, gap: this.pending.size > 0 };
  }
}

/** Every run this tab follows, by run id. */
export class RunRegistry {
  constructor() {
    this.logs = new Map();
  }

  get(runId) {
    return this.logs.get(runId) || null;
  }

  ensure(runId, threadId = null) {
    let log = this.logs.get(runId);
    if (!log) {
      log = new RunLog(runId, threadId);
      this.logs.set(runId, log);
    }
    return log;
  }

  /** Runs still in flight: what to resume after a reconnect, with the last seq seen. */
  live() {
    return [...this.logs.values()].filter((log) => !log.final);
  }
}
