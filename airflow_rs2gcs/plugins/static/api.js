// The JSON API (api/v1/) and its errors: the only way the page talks to the server.

import { clear, h } from "./dom.js";
import { AIRFLOW, API } from "./state.js";

export class ApiError extends Error {
  constructor(status, detail, errors = {}) {
    super(detail);
    this.status = status;
    this.errors = errors || {};
  }
}

export function detailText(data, fallback) {
  if (!data) return fallback;
  const detail = data.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    // FastAPI's own validation errors: [{loc, msg}]
    return detail.map((d) => (d.loc ? `${d.loc.filter((x) => x !== "body").join(".")}: ` : "") + d.msg).join("\n");
  }
  if (detail) return JSON.stringify(detail);
  return fallback;
}

export function fastapiErrors(data) {
  // {"errors": {...}} per the contract; FastAPI's own 422 lists loc/msg pairs.
  if (data && data.errors && typeof data.errors === "object") return data.errors;
  const out = {};
  if (data && Array.isArray(data.detail)) {
    for (const d of data.detail) {
      if (Array.isArray(d.loc)) out[d.loc.filter((x) => x !== "body").join(".")] = d.msg;
    }
  }
  return out;
}

export async function api(path, { method = "GET", body } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    init.headers["X-Rs2gcs-Request"] = "1";
    init.body = JSON.stringify(body ?? {});
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (err) {
    throw new ApiError(0, `The server could not be reached (${err.message}).`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.status === 401) showSessionExpired();
  else document.getElementById("session").hidden = true; // logged in again (e.g. in another tab)
  if (!response.ok) {
    throw new ApiError(response.status, detailText(data, `${response.status} ${response.statusText}`), fastapiErrors(data));
  }
  return data;
}

export const tenantPath = (tenantId, ...rest) =>
  ["tenants", encodeURIComponent(tenantId), ...rest.map((p) => encodeURIComponent(p))].join("/");

export function query(params) {
  const usp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) usp.set(k, String(v));
  return usp.toString();
}

export function showSessionExpired() {
  const banner = document.getElementById("session");
  clear(banner).append(
    "Your Airflow session has expired: ",
    h("a", { href: AIRFLOW, target: "_top", "data-outside": "" }, "log in again"),
  );
  banner.hidden = false;
}

// A user-facing message for an API error: 401 and 403 in the page's own words.
export function errorMessage(err, verb = "view") {
  if (err.status === 401) return "Your Airflow session has expired: log in again.";
  if (err.status === 403) return `You may not ${verb} this tenant. (${err.message})`;
  return err.message;
}

export function errorAlert(err, verb) {
  const box = h("div", { class: "alert alert-error", role: "alert" });
  if (err.status === 401) {
    // the banner at the top says it (with the link); here only what could not be done
    box.removeAttribute("role");
    box.append(`This could not be loaded: you are not logged in (${err.message}).`);
  } else if (err.status === 403) {
    box.append(`You may not ${verb} this tenant.`, h("pre", {}, err.message));
  } else {
    const fields = Object.entries(err.errors || {}).map(([k, v]) => `${k}: ${v}`);
    box.append(h("pre", {}, [err.message, ...fields].join("\n")));
  }
  return box;
}
