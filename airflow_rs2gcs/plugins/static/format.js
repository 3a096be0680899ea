// Numbers, bytes, durations, times, state badges and sync-frequency labels as the page shows them.

import { h } from "./dom.js";
import { state } from "./state.js";

export const numberFmt = new Intl.NumberFormat();
export const dateFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});

export function fmtNumber(n) {
  return n === null || n === undefined ? "—" : numberFmt.format(n);
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 100 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${String(s).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

export function fmtRelative(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const diff = (t - Date.now()) / 1000;
  const abs = Math.abs(diff);
  let text;
  if (abs < 45) text = "just now";
  else if (abs < 3600) text = `${Math.round(abs / 60)} min`;
  else if (abs < 86400) text = `${Math.round(abs / 3600)} h`;
  else text = `${Math.round(abs / 86400)} d`;
  if (text === "just now") return text;
  return diff < 0 ? `${text} ago` : `in ${text}`;
}

export function timeEl(iso, relative = true) {
  if (!iso) return "—";
  const t = Date.parse(iso);
  const absolute = Number.isNaN(t) ? iso : dateFmt.format(new Date(t));
  return h("time", { datetime: iso, title: absolute }, relative ? fmtRelative(iso) : absolute);
}

export function badge(value) {
  const v = value || "unknown";
  return h("span", { class: `badge badge-${v.replace(/[^a-z_]/gi, "_")}` }, v.replace(/_/g, " "));
}

// The entry is the Variable's (key "syncFrequency"); accept the model's field name too.
export function entryFrequency(entry) {
  return entry ? entry.syncFrequency ?? entry.sync_frequency ?? null : null;
}

export function frequencyLabel(value) {
  if (!value) return "—";
  const found = (state.meta?.frequencies || []).find((f) => f.value === value);
  return found ? found.label : `Custom: ${value}`;
}
