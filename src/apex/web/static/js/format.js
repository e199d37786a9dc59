// Number, money and time formatting, in one place so every view shows the same figures the same way.

const usdCents = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 });
const usdSmall = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 4 });
const usdCompact = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", notation: "compact", maximumFractionDigits: 1 });
const integerFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const compactFormat = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
const numberFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const secondsFormat = new Intl.NumberFormat("en-US",
  { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const rateFormat = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 2 });
const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

/** Dollars to the cent; amounts under a dollar keep up to four decimals so they never read as $0.00. */
export function usd(value) {
  if (!isNumber(value)) return "—";
  return Math.abs(value) > 0 && Math.abs(value) < 1 ? usdSmall.format(value) : usdCents.format(value);
}

/** Short dollars for chart axes: $1.2K. */
export function usdShort(value) {
  if (!isNumber(value)) return "—";
  return Math.abs(value) < 1000 ? usd(value) : usdCompact.format(value);
}

export function integer(value) {
  return isNumber(value) ? integerFormat.format(value) : "—";
}

export function compact(value) {
  return isNumber(value) ? compactFormat.format(value) : "—";
}

/** A value already expressed in percent (e.g. savings_pct = 32.5). */
export function percent(value) {
  if (!isNumber(value)) return "—";
  return `${value.toFixed(Math.abs(value) < 10 ? 1 : 0)}%`;
}

/** A share between 0 and 1 (e.g. traffic_share = 0.42); values above 1 are taken as percent already. */
export function share(value) {
  if (!isNumber(value)) return "—";
  return percent(value <= 1 ? value * 100 : value);
}

/** Confidence or risk: a word stays a word, a number between 0 and 1 becomes a percentage. */
export function level(value) {
  if (isNumber(value)) return share(value);
  if (typeof value === "string" && value) return value.charAt(0).toUpperCase() + value.slice(1);
  return "—";
}

export function milliseconds(value) {
  if (!isNumber(value)) return "—";
  if (value >= 10000) return `${(value / 1000).toFixed(1)} s`;
  return `${integerFormat.format(Math.round(value))} ms`;
}

/** A number to at most two decimals, grouped: 7029.5 → "7,029.5". */
export function number(value) {
  return isNumber(value) ? numberFormat.format(value) : "—";
}

/** A rate or share from 0 to 1 as a percentage to two decimals: 0.164 → "16.4%". */
export function rate(value) {
  return isNumber(value) ? rateFormat.format(value) : "—";
}

/** A percentage already from 0 to 100, to two decimals: 39.1 → "39.1%". */
export function pct(value) {
  return isNumber(value) ? rateFormat.format(value / 100) : "—";
}

/**
 * The one unit a column of latencies is shown in, so the values compare at a glance: "ms" while
 * every value is under 10 s, else "s".
 */
export function latencyUnit(values) {
  return values.some((value) => isNumber(value) && value >= 10000) ? "s" : "ms";
}

/** A latency in milliseconds written in `unit` ("ms" or "s"), without the unit. */
export function inLatencyUnit(value, unit) {
  if (!isNumber(value)) return "—";
  if (unit === "s") return secondsFormat.format(value / 1000);
  return integerFormat.format(Math.round(value));
}

/**
 * A value of the report formatted by its field name, as PROTOCOL.md names them: `*_usd` money,
 * `*_pct` a percentage, `share`/`*_rate` a fraction, `*_ms` a latency, `*_s` seconds,
 * `*_per_mtok` a price (its label says per million tokens); booleans Yes/No, missing "—".
 */
export function fieldValue(name, value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? "Yes" : "No";
  if (/_per_mtok$/.test(name)) return usd(Number(value));
  if (typeof value !== "number") return String(value);
  if (/_usd$/.test(name)) return usd(value);
  if (/_pct$/.test(name)) return pct(value);
  if (/(^|_)(share|rate)$/.test(name)) return rate(value);
  if (/_ms$/.test(name)) return milliseconds(value);
  if (/_s$/.test(name)) return `${number(value)} s`;
  return number(value);
}

const LABEL_WORDS = { usd: "", ms: "", s: "", pct: "", mtok: "M tokens", ttft: "TTFT", api: "API" };

/** A field name as a label: "current_cost_usd" → "Current cost", "p95_ttft_ms" → "p95 TTFT". */
export function fieldLabel(name) {
  const text = String(name).split("_").map((word) => LABEL_WORDS[word] ?? word)
    .filter(Boolean).join(" ");
  return /^p\d/.test(text) ? text : text.charAt(0).toUpperCase() + text.slice(1);
}

/** "3 min ago", "yesterday", "Nov 2": how long ago, relative to now. */
export function relativeTime(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  const seconds = Math.round((then - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return "just now";
  if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
  if (abs < 7 * 86400) return relative.format(Math.round(seconds / 86400), "day");
  return new Date(then).toLocaleDateString("en-US", { month: "short", day: "numeric", year: abs > 300 * 86400 ? "numeric" : undefined });
}

export function dateTime(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? "" : new Date(t).toLocaleString("en-US");
}

/** The UTC calendar day of an ISO timestamp: "2026-11-22". */
export function isoDay(iso) {
  if (typeof iso !== "string") return "";
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso.slice(0, 10) : new Date(t).toISOString().slice(0, 10);
}

/** A period {from, to} as "2026-10-23 → 2026-11-22". */
export function period(value) {
  if (!value || (!value.from && !value.to)) return "";
  return `${isoDay(value.from) || "…"} → ${isoDay(value.to) || "…"}`;
}

/** "2026-11-22" as "Nov 22", for chart axes. */
export function shortDay(day) {
  const t = Date.parse(`${day}T00:00:00Z`);
  return Number.isNaN(t) ? day : new Date(t).toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
}
