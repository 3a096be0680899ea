// Routing in the location hash (#/, #/tenants/<id>, #/tenants/<id>/configure ...).

import { clear } from "./dom.js";
import { renderList } from "./list.js";
import { state } from "./state.js";
import { focusTitle, openPanelFor, renderTenant } from "./tenant.js";

export function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [pathPart, queryPart = ""] = raw.split("?");
  const segments = pathPart.split("/").filter(Boolean).map(decodeURIComponent);
  return { segments, params: new URLSearchParams(queryPart) };
}

export function tenantHash(tenantId, sub) {
  return `#/tenants/${encodeURIComponent(tenantId)}${sub ? `/${sub}` : ""}`;
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

export function route() {
  const { segments, params } = parseHash();
  const current = state.tenantCtx;
  if (segments[0] === "tenants" && segments[1] && current && current.alive() && current.tenantId === segments[1]) {
    // same tenant, another panel: keep the view (and a run being followed in its status area)
    if (current.tenant) openPanelFor(current, segments[2] || null);
    else current.panelName = segments[2] || null;
    return;
  }
  state.view += 1;
  state.tenantCtx = null;
  const main = document.getElementById("main");
  clear(main);
  if (segments[0] === "tenants" && segments[1]) {
    document.title = `${segments[1]} · Redshift → GCS`;
    renderTenant(main, segments[1], segments[2] || null);
  } else {
    state.list.q = params.get("q") || "";
    state.list.offset = Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0);
    document.title = "Tenants · Redshift → GCS";
    renderList(main);
    if (state.routed) focusTitle();
  }
  state.routed = true;
}
