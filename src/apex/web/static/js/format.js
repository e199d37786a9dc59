// Number, money and time formatting, in one place so every view shows the same figures the same way.

const usdCents = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 });
const usdSmall = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 4 });
const usdCompact = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", notation: "compact", maximumFractionDigits: 1 });
const integerFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const compactFormat = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
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
