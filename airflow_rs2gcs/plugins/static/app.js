// The rs2gcs widget page: tenant list, tenant view with the widget's buttons, and their forms.
//
// Vanilla ES module, no build step, no dependency. Every URL is relative to the page (/rs2gcs/): the JSON
// API is "api/v1/...", Airflow's own UI "../". Routing is in the location hash (#/, #/tenants/<id>,
// #/tenants/<id>/configure ...) so it works inside Airflow's iframe and behind any sub-path. No inline
// event handlers and no innerHTML with data: a strict CSP (script-src 'self') is enough.

const API = "api/v1/";
const AIRFLOW = "../"; // Airflow's UI, relative to /rs2gcs/
const GCS_CONSOLE = "https://console.cloud.google.com/storage/browser/_details/";
const POLL_MS = 1500;
const LIST_LIMIT = 50;
const CATALOG_PAGE_SIZE = 100;
const HISTORY_LIMIT = 30;
const TENANT_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const ACTION_ORDER = ["connect", "configure", "sync", "disconnect"];
const ACTION_LABEL = { connect: "Connect", configure: "Configure", sync: "Sync", disconnect: "Disconnect" };
const ACTION_VERB = { connect: "connect", configure: "configure", sync: "sync", disconnect: "disconnect" };
const DONE_STATES = new Set(["success", "failed", "skipped", "upstream_failed", "removed"]);

const state = {
  meta: null,
  view: 0, // incremented on every route change: stale async work checks it and stops
  list: { q: "", offset: 0 },
};

// ------------------------------------------------------------------------------------------- DOM helpers
function h(tag, attrs = {}, ...children) {
  const el = document.createElementNS(
    attrs && attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml",
    tag,
  );
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false || key === "svg") continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = value;
    else if (key === "value" && "value" in el) el.value = value;
    else if (key === "checked" || key === "selected" || key === "disabled") el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svg(tag, attrs = {}, ...children) {
  return h(tag, { ...attrs, svg: true }, ...children);
}

function clear(el) {
  el.replaceChildren();
  return el;
}

let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------------------------------- formatting
const numberFmt = new Intl.NumberFormat();
const dateFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});

function fmtNumber(n) {
  return n === null || n === undefined ? "—" : numberFmt.format(n);
}

function fmtBytes(n) {
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

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${String(s).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

function fmtRelative(iso) {
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

function timeEl(iso, relative = true) {
  if (!iso) return "—";
  const t = Date.parse(iso);
  const absolute = Number.isNaN(t) ? iso : dateFmt.format(new Date(t));
  return h("time", { datetime: iso, title: absolute }, relative ? fmtRelative(iso) : absolute);
}

function badge(value) {
  const v = value || "unknown";
  return h("span", { class: `badge badge-${v.replace(/[^a-z_]/gi, "_")}` }, v.replace(/_/g, " "));
}

// The entry is the Variable's (key "syncFrequency"); accept the model's field name too.
function entryFrequency(entry) {
  return entry ? entry.syncFrequency ?? entry.sync_frequency ?? null : null;
}

function frequencyLabel(value) {
  if (!value) return "—";
  const found = (state.meta?.frequencies || []).find((f) => f.value === value);
  return found ? found.label : `Custom: ${value}`;
}

// ------------------------------------------------------------------------------------------- API
class ApiError extends Error {
  constructor(status, detail, errors = {}) {
    super(detail);
    this.status = status;
    this.errors = errors || {};
  }
}

function detailText(data, fallback) {
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

function fastapiErrors(data) {
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

async function api(path, { method = "GET", body } = {}) {
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

const tenantPath = (tenantId, ...rest) =>
  ["tenants", encodeURIComponent(tenantId), ...rest.map((p) => encodeURIComponent(p))].join("/");

function query(params) {
  const usp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) usp.set(k, String(v));
  return usp.toString();
}

function showSessionExpired() {
  const banner = document.getElementById("session");
  clear(banner).append(
    "Your Airflow session has expired: ",
    h("a", { href: AIRFLOW, target: "_top", "data-outside": "" }, "log in again"),
  );
  banner.hidden = false;
}

// A user-facing message for an API error: 401 and 403 in the page's own words.
function errorMessage(err, verb = "view") {
  if (err.status === 401) return "Your Airflow session has expired: log in again.";
  if (err.status === 403) return `You may not ${verb} this tenant. (${err.message})`;
  return err.message;
}

function errorAlert(err, verb) {
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

// ------------------------------------------------------------------------------------------- routing
function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [pathPart, queryPart = ""] = raw.split("?");
  const segments = pathPart.split("/").filter(Boolean).map(decodeURIComponent);
  return { segments, params: new URLSearchParams(queryPart) };
}

function tenantHash(tenantId, sub) {
  return `#/tenants/${encodeURIComponent(tenantId)}${sub ? `/${sub}` : ""}`;
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function route() {
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

// ------------------------------------------------------------------------------------------- tenant list
function renderList(main) {
  const view = state.view;
  const canPost = Boolean(state.meta?.user?.can_post);
  const filterId = nextId("filter");
  const newId = nextId("new-tenant");
  const newError = h("div", { class: "field-error", id: nextId("err"), "aria-live": "polite" });
  const newInput = h("input", {
    type: "text",
    id: newId,
    name: "new_tenant",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "e.g. acme",
    "aria-describedby": newError.id,
  });
  const newForm = h(
    "form",
    {
      class: "row",
      onsubmit: (ev) => {
        ev.preventDefault();
        const id = newInput.value.trim();
        if (!TENANT_ID_RE.test(id)) {
          newError.textContent = "A tenant id is 1-63 letters, digits, '_' or '-', starting with a letter or digit.";
          newInput.setAttribute("aria-invalid", "true");
          newInput.focus();
          return;
        }
        go(tenantHash(id));
      },
    },
    h("div", { class: "field" }, h("label", { for: newId }, "New tenant id"), newInput, newError),
    h("button", { type: "submit", class: "btn btn-primary" }, "New tenant"),
  );

  const filter = h("input", {
    type: "search",
    id: filterId,
    value: state.list.q,
    placeholder: "Filter by tenant id",
    autocomplete: "off",
  });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "tenants-table" },
    h("caption", { class: "visually-hidden" }, "Tenants"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Tenant", "Status", "Sync frequency", "Tables", "Last sync", "When", "Rows", "Bytes", "Duration", "Next sync"].map(
          (t) => h("th", { scope: "col", class: ["Tables", "Rows", "Bytes", "Duration"].includes(t) ? "num" : null }, t),
        ),
      ),
    ),
    tbody,
  );
  const rangeText = h("span", { class: "muted", role: "status", "aria-live": "polite" });
  const prev = h("button", { type: "button", class: "btn btn-sm" }, "Previous");
  const next = h("button", { type: "button", class: "btn btn-sm" }, "Next");
  const errorBox = h("div");

  main.append(
    h(
      "div",
      { class: "stack" },
      h("div", { class: "row row-between" }, h("h2", { tabindex: "-1", id: "page-title" }, "Tenants"), canPost ? newForm : null),
      h(
        "div",
        { class: "row" },
        h("div", { class: "field field-grow" }, h("label", { for: filterId }, "Filter tenants"), filter),
      ),
      errorBox,
      h("div", { class: "table-wrap" }, table),
      h("div", { class: "pager" }, rangeText, prev, next),
    ),
  );

  let seq = 0;
  let total = 0;
  async function load() {
    const mine = ++seq;
    table.setAttribute("aria-busy", "true");
    const { q, offset } = state.list;
    history.replaceState(null, "", `#/${q || offset ? `?${query({ q: q || undefined, offset: offset || undefined })}` : ""}`);
    try {
      const data = await api(`tenants?${query({ q, offset, limit: LIST_LIMIT })}`);
      if (mine !== seq || view !== state.view) return;
      clear(errorBox);
      total = data.total ?? data.tenants.length;
      clear(tbody).append(...data.tenants.map(tenantRow));
      if (!data.tenants.length) {
        tbody.append(h("tr", {}, h("td", { colspan: "10", class: "empty" }, q ? `No tenant matches “${q}”.` : "No tenants yet.")));
      }
      const first = data.tenants.length ? offset + 1 : 0;
      const last = offset + data.tenants.length;
      rangeText.textContent = `${fmtNumber(first)}–${fmtNumber(last)} of ${fmtNumber(total)}`;
      prev.disabled = offset <= 0;
      next.disabled = last >= total;
    } catch (err) {
      if (mine !== seq || view !== state.view) return;
      clear(errorBox).append(errorAlert(err, "list"));
    } finally {
      if (mine === seq) table.removeAttribute("aria-busy");
    }
  }

  filter.addEventListener(
    "input",
    debounce(() => {
      state.list.q = filter.value.trim();
      state.list.offset = 0;
      load();
    }, 300),
  );
  prev.addEventListener("click", () => {
    state.list.offset = Math.max(0, state.list.offset - LIST_LIMIT);
    load();
  });
  next.addEventListener("click", () => {
    state.list.offset += LIST_LIMIT;
    load();
  });
  load();
}

function tenantRow(t) {
  const last = t.last_sync;
  return h(
    "tr",
    {},
    h("th", { scope: "row" }, h("a", { class: "tenant-link", href: tenantHash(t.tenant_id) }, t.tenant_id)),
    h("td", {}, badge(t.status)),
    h("td", {}, t.sync_frequency ? t.sync_frequency.label || frequencyLabel(t.sync_frequency.value) : "—"),
    h("td", { class: "num" }, fmtNumber(t.table_count)),
    h("td", {}, last ? badge(last.state) : h("span", { class: "muted" }, "never")),
    h("td", { class: "nowrap" }, last ? timeEl(last.when) : "—"),
    h("td", { class: "num" }, last ? fmtNumber(last.rows) : "—"),
    h("td", { class: "num" }, last ? fmtBytes(last.bytes) : "—"),
    h("td", { class: "num" }, last ? fmtDuration(last.duration_seconds) : "—"),
    h("td", { class: "nowrap" }, t.next_sync ? timeEl(t.next_sync) : "—"),
  );
}

// ------------------------------------------------------------------------------------------- tenant view
function renderTenant(main, tenantId, panel) {
  const view = state.view;
  const ctx = {
    tenantId,
    view,
    tenant: null,
    alive: () => view === state.view,
    title: h("h2", { tabindex: "-1", id: "page-title" }, tenantId),
    badgeSlot: h("span"),
    actions: h("div", { class: "actions", role: "group", "aria-label": "Actions" }),
    // the run being followed: its state line and outcome in a live region, its per-table progress beside it
    status: h("div", { class: "run-status stack", role: "status", "aria-live": "polite" }),
    runTables: h("div"),
    runCard: h("section", { class: "card stack", "aria-label": "Last action", hidden: true }),
    panel: h("div"),
    summary: h("div"),
    history: h("div"),
    error: h("div"),
    panelName: panel,
  };
  state.tenantCtx = ctx;
  ctx.runCard.append(ctx.status, ctx.runTables);
  main.append(
    h(
      "div",
      { class: "stack" },
      h("a", { class: "crumb", href: "#/" }, "← All tenants"),
      h("div", { class: "tenant-head" }, ctx.title, ctx.badgeSlot, h("span", { class: "spacer" }), ctx.actions),
      ctx.error,
      ctx.runCard,
      ctx.panel,
      h("div", { class: "grid-2" }, ctx.summary, ctx.history),
    ),
  );
  loadTenant(ctx, { openPanel: true });
  focusTitle();
}

// After a route change the heading takes the focus (after the browser's own fragment handling, which
// otherwise resets the Tab starting point to the top): keyboard and screen-reader users land on the view.
function focusTitle() {
  const view = state.view;
  setTimeout(() => {
    const title = document.getElementById("page-title");
    const active = document.activeElement;
    const busy = active && active !== document.body && document.getElementById("main").contains(active) && active !== title;
    if (view === state.view && title && !busy) title.focus({ preventScroll: true });
  }, 0);
}

async function loadTenant(ctx, { openPanel = false } = {}) {
  let tenant;
  try {
    tenant = await api(tenantPath(ctx.tenantId));
  } catch (err) {
    if (!ctx.alive()) return;
    clear(ctx.error).append(errorAlert(err, "view"));
    clear(ctx.actions);
    return;
  }
  if (!ctx.alive()) return;
  clear(ctx.error);
  ctx.tenant = tenant;
  clear(ctx.badgeSlot).append(badge(tenant.status));
  renderActions(ctx);
  renderSummary(ctx);
  loadHistory(ctx);
  if (openPanel) openPanelFor(ctx, ctx.panelName);
}

function renderActions(ctx) {
  const allowed = new Set(ctx.tenant.actions || []);
  clear(ctx.actions);
  for (const action of ACTION_ORDER) {
    if (!allowed.has(action)) continue;
    const primary = action === "connect" || action === "sync" || (action === "configure" && !allowed.has("sync"));
    ctx.actions.append(
      h(
        "button",
        {
          type: "button",
          class: `btn ${action === "disconnect" ? "" : primary ? "btn-primary" : ""}`,
          "data-action": action,
          "aria-expanded": action === "disconnect" ? null : String(ctx.panelName === action),
          onclick: () => {
            if (action === "disconnect") openDisconnect(ctx);
            else go(tenantHash(ctx.tenantId, action));
          },
        },
        ACTION_LABEL[action],
      ),
    );
  }
  if (!allowed.size) ctx.actions.append(h("span", { class: "muted small" }, "No action available to you"));
}

function openPanelFor(ctx, name) {
  clear(ctx.panel);
  ctx.panelName = name;
  const allowed = new Set(ctx.tenant.actions || []);
  for (const b of ctx.actions.querySelectorAll("button[data-action]")) {
    if (b.dataset.action !== "disconnect") b.setAttribute("aria-expanded", String(b.dataset.action === name));
  }
  if (!name) return;
  if (!allowed.has(name) || name === "disconnect") {
    ctx.panel.append(
      h("div", { class: "alert alert-info" }, `${ACTION_LABEL[name] || name} is not available for this tenant now.`),
    );
    return;
  }
  const builders = { connect: connectForm, configure: configureForm, sync: syncForm };
  ctx.panel.append(builders[name](ctx));
  const first = ctx.panel.querySelector("input, select, textarea, button");
  if (first) first.focus({ preventScroll: false });
}

function closePanel(ctx) {
  history.replaceState(null, "", tenantHash(ctx.tenantId));
  openPanelFor(ctx, null);
}

function renderSummary(ctx) {
  const { tenant } = ctx;
  const e = tenant.entry;
  const card = h("section", { class: "card", "aria-labelledby": "summary-title" }, h("h3", { id: "summary-title" }, "Configuration"));
  if (e && tenant.status === "disconnected") {
    // Disconnect keeps only where the tenant was connected: say so instead of a column of "—"
    const was = e.last_connection || {};
    const place = was.bucket ? `gs://${was.bucket}/${was.prefix ? `${was.prefix}/` : ""}` : "GCS";
    card.append(
      h(
        "p",
        { class: "muted" },
        "Disconnected",
        e.disconnected_at ? [" ", timeEl(e.disconnected_at)] : null,
        ": its configuration and sync DAG were deleted; the data already exported stays in ",
        h("code", {}, place),
        was.bucket ? ". Connect it to start over: the form is prefilled from its last connection." : ". Connect it to start over.",
      ),
    );
    clear(ctx.summary).append(card);
    return;
  }
  if (!e) {
    card.append(
      h(
        "p",
        { class: "muted" },
        tenant.status === "new"
          ? `Tenant “${tenant.tenant_id}” is not connected yet. Connect it to choose its Redshift and GCP connections and its bucket.`
          : "No configuration is stored.",
      ),
    );
    clear(ctx.summary).append(card);
    return;
  }
  const tables = e.tables || [];
  const dl = h("dl", { class: "summary" });
  const item = (label, value) => dl.append(h("dt", {}, label), h("dd", {}, value));
  item("Status", badge(tenant.status));
  item("Bucket", e.bucket ? h("code", {}, `gs://${e.bucket}`) : "—");
  item("Prefix", e.prefix ? h("code", {}, e.prefix) : h("span", { class: "muted" }, "(none)"));
  item("Format", e.format || "—");
  item("Time zone", e.timezone || "—");
  item("Sync frequency", frequencyLabel(entryFrequency(e)));
  item("Redshift connection", e.redshift_conn_id ? h("code", {}, e.redshift_conn_id) : "—");
  item("GCP connection", e.gcp_conn_id ? h("code", {}, e.gcp_conn_id) : "—");
  item(
    "Webhooks",
    (e.webhooks || []).length
      ? h("ul", {}, e.webhooks.map((w) => h("li", {}, h("code", {}, w.id), " → ", w.url || "")))
      : h("span", { class: "muted" }, "(none)"),
  );
  item(
    `Tables (${tables.length})`,
    tables.length
      ? h(
          "ul",
          {},
          tables.map((t) =>
            h(
              "li",
              {},
              h("code", {}, t.name),
              t.query ? h("span", { class: "muted" }, " — custom query") : null,
              t.mode === "incremental" ? h("span", { class: "muted" }, ` — incremental on ${t.cursor_column}`) : null,
            ),
          ),
        )
      : h("span", { class: "muted" }, "(none)"),
  );
  if (tenant.sync_dag_id && tenant.status === "configured") {
    item(
      "Sync DAG",
      h("a", { href: `${AIRFLOW}dags/${encodeURIComponent(tenant.sync_dag_id)}`, target: "_top", "data-outside": "" }, tenant.sync_dag_id),
    );
  }
  card.append(dl);
  clear(ctx.summary).append(card);
}

// ------------------------------------------------------------------------------------------- forms: shared
// A form's fields register under the request's field names ("bucket", "queries.0.sql" ...): a 422's
// errors go beside the field, or into the form's summary when no field has that name.
class FieldErrors {
  constructor() {
    this.slots = new Map(); // field name -> {control, error}
    this.summary = h("div", { class: "alert alert-error", role: "alert", hidden: true });
  }

  field(name, control, error) {
    this.slots.set(name, { control, error });
    if (control && error) {
      const described = (control.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (!described.includes(error.id)) control.setAttribute("aria-describedby", [...described, error.id].join(" "));
    }
  }

  errorEl() {
    return h("div", { class: "field-error", id: nextId("err") });
  }

  clear() {
    for (const { control, error } of this.slots.values()) {
      if (error) error.textContent = "";
      if (control) control.removeAttribute("aria-invalid");
    }
    clear(this.summary);
    this.summary.hidden = true;
  }

  // Shows every error; returns the first control that has one (to focus).
  show(errors, detail, aliases = {}) {
    this.clear();
    let first = null;
    const unplaced = [];
    for (const [rawKey, message] of Object.entries(errors || {})) {
      const key = aliases[normaliseKey(rawKey)] || normaliseKey(rawKey);
      let slot = null;
      // exact name, then its parents: "tables.3.mode" falls back to "tables.3", then "tables"
      const parts = key.split(".");
      for (let n = parts.length; n > 0 && !slot; n -= 1) slot = this.slots.get(parts.slice(0, n).join("."));
      if (slot && slot.error) {
        slot.error.textContent = slot.error.textContent ? `${slot.error.textContent}\n${message}` : String(message);
        if (slot.control) slot.control.setAttribute("aria-invalid", "true");
        first = first || slot.control;
      } else {
        unplaced.push(`${rawKey}: ${message}`);
      }
    }
    if (unplaced.length || (!first && detail)) {
      this.summary.append(h("pre", {}, [detail, ...unplaced].filter(Boolean).join("\n")));
      this.summary.hidden = false;
    }
    return first;
  }
}

function normaliseKey(key) {
  // "queries[0].sql", "body.queries.0.sql", "queries/0/sql" -> "queries.0.sql"
  return String(key)
    .replace(/\[(\d+)\]/g, ".$1")
    .replace(/\//g, ".")
    .replace(/^body\./, "");
}

function textField({ label, name, value = "", hint, type = "text", placeholder, errors, attrs = {} }) {
  const id = nextId(`f-${name}`);
  const error = errors.errorEl();
  const hintEl = hint ? h("div", { class: "hint", id: nextId("hint") }, hint) : null;
  const input = h("input", {
    type,
    id,
    name,
    value: value ?? "",
    placeholder,
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": hintEl ? hintEl.id : null,
    ...attrs,
  });
  errors.field(name, input, error);
  return { input, el: h("div", { class: "field" }, h("label", { for: id }, label), input, hintEl, error) };
}

function selectField({ label, name, options, value, placeholder, hint, errors, unknownLabel = (v) => `${v} (not listed)` }) {
  const id = nextId(`f-${name}`);
  const error = errors.errorEl();
  const hintEl = hint ? h("div", { class: "hint", id: nextId("hint") }, hint) : null;
  const select = h("select", { id, name, "aria-describedby": hintEl ? hintEl.id : null });
  if (placeholder !== undefined) select.append(h("option", { value: "" }, placeholder));
  const values = options.map((o) => (typeof o === "string" ? { value: o, label: o } : o));
  if (value && !values.some((o) => o.value === value)) values.push({ value, label: unknownLabel(value) });
  for (const o of values) select.append(h("option", { value: o.value }, o.label));
  select.value = value && values.some((o) => o.value === value) ? value : placeholder !== undefined ? "" : values[0]?.value ?? "";
  errors.field(name, select, error);
  return { select, el: h("div", { class: "field" }, h("label", { for: id }, label), select, hintEl, error) };
}

// A confirmation checkbox for a confirm_* flag: hidden until the change needs it or the API asks for it.
function confirmField(name, text, errors) {
  const id = nextId(`f-${name}`);
  const error = errors.errorEl();
  const input = h("input", { type: "checkbox", id, name });
  const box = h(
    "div",
    { class: "confirm-box", hidden: true },
    h("div", { class: "check" }, input, h("label", { for: id }, text)),
    error,
  );
  errors.field(name, input, error);
  return { input, box, show: () => (box.hidden = false) };
}

function formActions(ctx, submitLabel, submitting) {
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, submitLabel);
  const cancel = h("button", { type: "button", class: "btn", onclick: () => closePanel(ctx) }, "Cancel");
  return { submit, el: h("div", { class: "form-actions" }, submit, cancel, submitting) };
}

// POST an action, then follow its run. 422: errors beside the fields; other errors in the status area.
async function postAction(ctx, action, body, { errors, submit, confirmFields = {}, aliases = {} }) {
  errors.clear();
  submit.disabled = true;
  for (const old of submit.parentElement ? submit.parentElement.querySelectorAll(".submit-note") : []) old.remove();
  const busy = h("span", { class: "muted small submit-note" }, "Submitting…");
  submit.after(busy);
  let started;
  try {
    started = await postRetryingWhileParsing(ctx, action, body, busy);
  } catch (err) {
    busy.remove();
    submit.disabled = false;
    if (!ctx.alive()) return;
    if (err.status === 422 && errors.summary.isConnected) {
      for (const [flag, field] of Object.entries(confirmFields)) {
        if (Object.keys(err.errors).some((k) => normaliseKey(k) === flag)) field.show();
      }
      const first = errors.show(err.errors, Object.keys(err.errors).length ? null : err.message, aliases);
      if (first) first.focus();
      return;
    }
    ctx.runCard.hidden = false;
    clear(ctx.runTables);
    clear(ctx.status).append(errorAlert(err, ACTION_VERB[action]));
    return;
  }
  // the form stays (disabled) while the run goes: closed on success, open again to fix and retry on failure
  busy.textContent = "Run started…";
  const run = await followRun(ctx, action, started, (runState) => (busy.textContent = `Run ${runState}…`));
  const ok = Boolean(run && run.state === "success");
  submit.disabled = false;
  // the run refused an unconfirmed output change (checked by the control DAG, not the API): offer the box
  for (const [flag, field] of Object.entries(confirmFields)) {
    if (run && !ok && String(run.error || "").includes(flag)) field.show();
  }
  if (ok && ctx.alive() && ctx.panel.contains(submit)) {
    busy.remove();
    closePanel(ctx);
  } else {
    busy.textContent = ok ? "" : "The run did not succeed: its error is shown above.";
  }
}

// Right after Configure the sync DAG exists only once the dag-processor has parsed it: the API answers
// 409 "... try again shortly". Sync then retries for up to a minute instead of failing at once.
async function postRetryingWhileParsing(ctx, action, body, note) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await api(tenantPath(ctx.tenantId, action), { method: "POST", body });
    } catch (err) {
      const parsing = err.status === 409 && /try again shortly|does not exist yet/i.test(err.message);
      if (!parsing || Date.now() > deadline || !ctx.alive()) throw err;
      note.textContent = "Waiting for Airflow to create the sync DAG…";
      await sleep(3000);
    }
  }
}

// Poll runs/{dag_id}/{run_id} until the run ends; show its state, tables and then its message or error.
async function followRun(ctx, action, { dag_id: dagId, run_id: runId }, onState = () => {}) {
  const head = h("div", { class: "row run-head" });
  const tablesSlot = clear(ctx.runTables);
  const outcome = h("div");
  const runLink = h(
    "a",
    { href: `${AIRFLOW}dags/${encodeURIComponent(dagId)}/runs/${encodeURIComponent(runId)}`, target: "_top", "data-outside": "" },
    "open in Airflow",
  );
  ctx.runCard.hidden = false;
  clear(ctx.status).append(head, outcome);
  ctx.runCard.scrollIntoView({ block: "nearest" });
  let failures = 0;
  let lastState = null;
  for (;;) {
    if (!ctx.alive()) return null;
    let run;
    try {
      run = await api(`${tenantPath(ctx.tenantId, "runs", dagId, runId)}`);
      failures = 0;
    } catch (err) {
      failures += 1;
      if (err.status === 401 || err.status === 403 || failures >= 5) {
        clear(outcome).append(errorAlert(err, "view"));
        return null;
      }
      await sleep(POLL_MS);
      continue;
    }
    if (!ctx.alive()) return null;
    if (run.state !== lastState) {
      lastState = run.state;
      onState(run.state);
      clear(head).append(
        h("strong", {}, `${ACTION_LABEL[action]}:`),
        badge(run.state),
        h("span", { class: "muted small mono" }, `${dagId} · ${runId}`),
        runLink,
      );
    }
    if (run.tables && run.tables.length) renderRunTables(tablesSlot, run.tables);
    if (DONE_STATES.has(run.state)) {
      if (run.state === "success") {
        clear(outcome).append(h("div", { class: "alert alert-success" }, successText(ctx, action, run)));
      } else {
        clear(outcome).append(
          h(
            "div",
            { class: "alert alert-error", role: "alert" },
            h("strong", {}, `${ACTION_LABEL[action]} failed`),
            h("pre", { class: "error-text" }, run.error || `The run ended in state ${run.state}; its log in Airflow says why.`),
          ),
        );
      }
      await loadTenant(ctx);
      return run;
    }
    await sleep(POLL_MS);
  }
}

function successText(ctx, action, run) {
  if (typeof run.message === "string" && run.message) return run.message;
  if (action === "sync") {
    const rows = (run.tables || []).reduce((n, t) => n + (t.rows || 0), 0);
    const bytes = (run.tables || []).reduce((n, t) => n + (t.bytes || 0), 0);
    return `Sync completed for ${ctx.tenantId}: ${(run.tables || []).length} table(s), ${fmtNumber(rows)} rows, ${fmtBytes(bytes)}`;
  }
  if (action === "configure") return `Configuration saved for ${ctx.tenantId}`;
  if (action === "connect") return "Activation successful for redshift_to_gcs";
  return `Deactivation completed for ${ctx.tenantId}`;
}

function manifestLink(uri) {
  const m = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri || "");
  if (!m) return uri || "—";
  return h(
    "a",
    { href: `${GCS_CONSOLE}${m[1]}/${m[2].split("/").map(encodeURIComponent).join("/")}`, target: "_blank", rel: "noopener noreferrer", "data-outside": "" },
    uri,
  );
}

function renderRunTables(slot, tables) {
  clear(slot).append(
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        {},
        h("caption", { class: "visually-hidden" }, "Tables of this run"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Table", "Status", "Rows", "Bytes", "Objects", "Manifest"].map((t) =>
              h("th", { scope: "col", class: ["Rows", "Bytes", "Objects"].includes(t) ? "num" : null }, t),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          tables.map((t) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, h("code", {}, t.table)),
              h("td", {}, badge(t.status), t.error ? h("div", { class: "field-error" }, t.error) : null),
              h("td", { class: "num" }, fmtNumber(t.rows)),
              h("td", { class: "num" }, fmtBytes(t.bytes)),
              h("td", { class: "num" }, fmtNumber(t.objects)),
              h("td", { class: "small" }, t.manifest ? manifestLink(t.manifest) : "—"),
            ),
          ),
        ),
      ),
    ),
  );
}

// ------------------------------------------------------------------------------------------- Connect
function connectForm(ctx) {
  const meta = state.meta;
  const e = ctx.tenant.entry || {};
  // a disconnected tenant connects afresh, like a new one, prefilled from its last connection
  // (connection ids, bucket, prefix, webhooks; secrets were not kept)
  const reconnect = Boolean(ctx.tenant.entry) && ctx.tenant.status !== "disconnected";
  const was = ctx.tenant.status === "disconnected" ? e.last_connection || null : null;
  const shown = was || e;
  const configured = ctx.tenant.status === "configured";
  const errors = new FieldErrors();
  const rs = selectField({
    label: "Redshift connection",
    name: "redshift_conn_id",
    options: meta.connections?.redshift || [],
    value: shown.redshift_conn_id,
    placeholder: "Choose…",
    hint: (meta.connections?.redshift || []).length
      ? "An Airflow connection of type Redshift."
      : "No Redshift connection exists in Airflow yet: add one under Admin → Connections.",
    errors,
  });
  const gcp = selectField({
    label: "GCP connection",
    name: "gcp_conn_id",
    options: meta.connections?.gcp || [],
    value: shown.gcp_conn_id,
    placeholder: "Choose…",
    hint: (meta.connections?.gcp || []).length
      ? "An Airflow connection of type Google Cloud."
      : "No Google Cloud connection exists in Airflow yet: add one under Admin → Connections.",
    errors,
  });
  const bucket = textField({ label: "Bucket", name: "bucket", value: shown.bucket, placeholder: "my-exports", hint: "The GCS bucket name, without gs://.", errors });
  const prefix = textField({ label: "Prefix", name: "prefix", value: shown.prefix, placeholder: "(optional) e.g. redshift/prod", hint: "Folder inside the bucket; optional.", errors });
  const confirm = confirmField(
    "confirm_output_change",
    "Confirm the output change: objects already written stay where they are, and the next syncs start over at the new place.",
    errors,
  );
  const watchOutput = () => {
    if (!configured) return;
    if (bucket.input.value.trim() !== (e.bucket || "") || prefix.input.value.trim() !== (e.prefix || "")) confirm.show();
  };
  bucket.input.addEventListener("input", watchOutput);
  prefix.input.addEventListener("input", watchOutput);

  // Webhooks: secrets are write-only (an empty secret field keeps the stored one).
  let webhooksDirty = false;
  const rowsEl = h("div");
  const hooksError = errors.errorEl();
  errors.field("webhooks", null, hooksError);
  const rows = [];
  function addRow(w = {}) {
    const index = rows.length;
    const row = { stored: w, el: null };
    const url = textField({ label: "Webhook URL", name: `webhooks.${index}.url`, value: w.url, type: "url", placeholder: "https://…", errors });
    const id = textField({ label: "Webhook id", name: `webhooks.${index}.id`, value: w.id, placeholder: "wh_1", errors });
    const hasSecret = Boolean(w.secret);
    const secret = textField({
      label: "Signing secret",
      name: `webhooks.${index}.secret`,
      type: "password",
      placeholder: hasSecret ? "unchanged" : w.signed ? "was signed: give it again" : "optional",
      errors,
      attrs: { autocomplete: "new-password" },
    });
    row.url = url.input;
    row.id = id.input;
    row.secret = secret.input;
    const remove = h(
      "button",
      {
        type: "button",
        class: "btn btn-sm",
        "aria-label": `Remove webhook ${w.id || index + 1}`,
        onclick: () => {
          webhooksDirty = true;
          row.removed = true;
          row.el.remove();
          addHook.focus(); // the focused button is gone: keep keyboard users in the section
        },
      },
      "Remove",
    );
    row.el = h("div", { class: "repeat-row webhook-row" }, url.el, id.el, secret.el, remove);
    for (const input of [url.input, id.input, secret.input]) input.addEventListener("input", () => (webhooksDirty = true));
    rows.push(row);
    rowsEl.append(row.el);
    return row;
  }
  for (const w of shown.webhooks || []) addRow(w);
  if (was && (was.webhooks || []).length) webhooksDirty = true; // nothing is stored: send them
  const addHook = h(
    "button",
    {
      type: "button",
      class: "btn btn-sm",
      onclick: () => {
        webhooksDirty = true;
        addRow().url.focus();
      },
    },
    "Add webhook",
  );

  const actions = formActions(ctx, reconnect ? "Save and reconnect" : "Save and connect", null);
  const form = h(
    "form",
    { class: "card stack", novalidate: true, "aria-labelledby": "connect-title" },
    h("h3", { id: "connect-title" }, reconnect ? `Reconnect ${ctx.tenantId}` : `Connect ${ctx.tenantId}`),
    errors.summary,
    was
      ? h(
          "p",
          { class: "hint", "data-testid": "prefilled-note" },
          "Prefilled from its last connection",
          e.disconnected_at ? [" (disconnected ", timeEl(e.disconnected_at), ")"] : null,
          ". Signing secrets were not kept.",
        )
      : null,
    h("div", { class: "form-grid" }, rs.el, gcp.el, bucket.el, prefix.el),
    h(
      "fieldset",
      {},
      h("legend", {}, "Webhooks"),
      h("p", { class: "hint" }, "Each sync's outcome is POSTed to these URLs. Secrets are never shown back: leave a secret empty to keep it."),
      rowsEl,
      hooksError,
      addHook,
    ),
    confirm.box,
    actions.el,
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = {};
    const local = {};
    if (rs.select.value) body.redshift_conn_id = rs.select.value;
    else if (!reconnect) local.redshift_conn_id = "Choose a Redshift connection.";
    if (gcp.select.value) body.gcp_conn_id = gcp.select.value;
    else if (!reconnect) local.gcp_conn_id = "Choose a GCP connection.";
    const b = bucket.input.value.trim();
    if (b) body.bucket = b;
    else if (!reconnect) local.bucket = "A bucket is required.";
    // a field left out keeps the stored value; "" clears the prefix, [] the webhooks
    const p = prefix.input.value.trim();
    if (p) body.prefix = p;
    else if (e.prefix) body.prefix = "";
    if (webhooksDirty) {
      const live = rows.filter((r) => !r.removed);
      const hooks = [];
      live.forEach((r) => {
        const i = hooks.length;
        const w = { id: r.id.value.trim(), url: r.url.value.trim() };
        if (!w.id) local[`webhooks.${rows.indexOf(r)}.id`] = "An id is required.";
        if (!w.url) local[`webhooks.${rows.indexOf(r)}.url`] = "A URL is required.";
        // write-only secret: left empty, the stored one is kept by sending back its mask
        if (r.secret.value) w.secret = r.secret.value;
        else if (r.stored.secret) w.secret = r.stored.secret; // "***"
        else if (r.stored.signed && !r.stored.secret_conn_id)
          local[`webhooks.${rows.indexOf(r)}.secret`] = "This webhook was signed: give its secret again, or remove it.";
        // keep what the form does not edit (secret_conn_id, registration_url) from the stored record
        for (const k of ["secret_conn_id", "registration_url"]) if (r.stored[k]) w[k] = r.stored[k];
        r.sentIndex = i;
        hooks.push(w);
      });
      if (hooks.length || (e.webhooks || []).length) body.webhooks = hooks;
    }
    if (confirm.input.checked) body.confirm_output_change = true;
    if (Object.keys(local).length) {
      const first = errors.show(local);
      if (first) first.focus();
      return;
    }
    // the API numbers webhooks as sent; the form numbers its rows (removed ones included)
    const aliases = {};
    for (const r of rows) {
      if (r.sentIndex === undefined) continue;
      for (const k of ["url", "id", "secret"]) aliases[`webhooks.${r.sentIndex}.${k}`] = `webhooks.${rows.indexOf(r)}.${k}`;
      aliases[`webhooks.${r.sentIndex}`] = `webhooks.${rows.indexOf(r)}.url`;
    }
    postAction(ctx, "connect", body, { errors, submit: actions.submit, confirmFields: { confirm_output_change: confirm }, aliases });
  });
  return form;
}

// ------------------------------------------------------------------------------------------- Configure
function configureForm(ctx) {
  const meta = state.meta;
  const e = ctx.tenant.entry || {};
  const configured = ctx.tenant.status === "configured";
  const errors = new FieldErrors();

  // selection: qualified_name -> {name, mode, cursor_column}; insertion order is the order sent
  const selected = new Map();
  const queries = [];
  for (const t of e.tables || []) {
    if (t.query) queries.push({ name: t.name, sql: t.query });
    else selected.set(t.name, { name: t.name, mode: t.mode || "full", cursor_column: t.cursor_column || null });
  }
  const columnsCache = new Map();

  // ---- picker
  const searchId = nextId("catalog-search");
  const kindId = nextId("catalog-kind");
  const search = h("input", { type: "search", id: searchId, placeholder: "schema or table name", autocomplete: "off" });
  const kind = h(
    "select",
    { id: kindId },
    h("option", { value: "" }, "Tables and views"),
    h("option", { value: "table" }, "Tables"),
    h("option", { value: "view" }, "Views"),
  );
  const pickerBody = h("tbody");
  const pickerTable = h(
    "table",
    { class: "picker-table" },
    h("caption", { class: "visually-hidden" }, "Relations in the tenant's Redshift"),
    h(
      "thead",
      {},
      h("tr", {}, h("th", { scope: "col", class: "th-check" }, h("span", { class: "visually-hidden" }, "Select")), h("th", { scope: "col" }, "Relation"), h("th", { scope: "col" }, "Kind")),
    ),
    pickerBody,
  );
  const shown = h("span", { class: "muted", role: "status", "aria-live": "polite" });
  const prev = h("button", { type: "button", class: "btn btn-sm" }, "Previous page");
  const next = h("button", { type: "button", class: "btn btn-sm" }, "Next page");
  const pickerError = h("div");
  const tablesError = errors.errorEl();
  errors.field("tables", search, tablesError);

  const catalog = { tokens: [""], index: 0, seq: 0, relations: [] };

  async function loadCatalog() {
    const mine = ++catalog.seq;
    pickerTable.setAttribute("aria-busy", "true");
    try {
      const data = await api(
        `${tenantPath(ctx.tenantId, "catalog")}?${query({
          page_size: CATALOG_PAGE_SIZE,
          page_token: catalog.tokens[catalog.index] || "",
          q: search.value.trim(),
          kind: kind.value,
        })}`,
      );
      if (mine !== catalog.seq || !ctx.alive()) return;
      clear(pickerError);
      catalog.relations = data.relations || [];
      catalog.tokens.length = catalog.index + 1;
      if (data.next_page_token) catalog.tokens.push(data.next_page_token);
      renderPicker();
      const before = catalog.index * CATALOG_PAGE_SIZE;
      shown.textContent = `${fmtNumber(catalog.relations.length)} shown of ${fmtNumber(data.total ?? catalog.relations.length)} · page ${catalog.index + 1}`;
      if (catalog.relations.length && data.total !== undefined && data.total !== null) {
        shown.title = `relations ${before + 1}–${before + catalog.relations.length}`;
      }
      prev.disabled = catalog.index === 0;
      next.disabled = !data.next_page_token;
    } catch (err) {
      if (mine !== catalog.seq || !ctx.alive()) return;
      clear(pickerError).append(errorAlert(err, "read the catalog of"));
      clear(pickerBody);
      shown.textContent = "";
      prev.disabled = catalog.index === 0;
      next.disabled = true;
    } finally {
      if (mine === catalog.seq) pickerTable.removeAttribute("aria-busy");
    }
  }

  function renderPicker() {
    clear(pickerBody);
    if (!catalog.relations.length) {
      pickerBody.append(h("tr", {}, h("td", { colspan: "3", class: "empty" }, "No relation matches.")));
      return;
    }
    for (const rel of catalog.relations) {
      const id = nextId("rel");
      const box = h("input", { type: "checkbox", id, checked: selected.has(rel.qualified_name), value: rel.qualified_name });
      const tr = h(
        "tr",
        { class: selected.has(rel.qualified_name) ? "is-selected" : null },
        h("td", {}, box),
        h("td", {}, h("label", { for: id, class: "mono" }, rel.qualified_name)),
        h("td", {}, h("span", { class: "muted" }, rel.kind)),
      );
      box.addEventListener("change", () => {
        if (box.checked) {
          if (!selected.has(rel.qualified_name)) selected.set(rel.qualified_name, { name: rel.qualified_name, mode: "full", cursor_column: null });
        } else selected.delete(rel.qualified_name);
        tr.classList.toggle("is-selected", box.checked);
        renderSelected();
      });
      pickerBody.append(tr);
    }
  }

  const restart = () => {
    catalog.tokens = [""];
    catalog.index = 0;
    loadCatalog();
  };
  search.addEventListener("input", debounce(restart, 300));
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") ev.preventDefault(); // not a form submit
  });
  kind.addEventListener("change", restart);
  prev.addEventListener("click", () => {
    if (catalog.index > 0) {
      catalog.index -= 1;
      loadCatalog();
    }
  });
  next.addEventListener("click", () => {
    if (catalog.index + 1 < catalog.tokens.length) {
      catalog.index += 1;
      loadCatalog();
    }
  });

  // ---- selected tables (mode, cursor column)
  const selectedTitle = h("h4", { id: nextId("selected-title"), class: "subhead", tabindex: "-1" });
  const selectedBody = h("tbody");
  const selectedWrap = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "selected-table", "aria-labelledby": selectedTitle.id },
      h(
        "thead",
        {},
        h("tr", {}, ["Table", "Mode", "Cursor column", ""].map((t) => h("th", { scope: "col" }, t || h("span", { class: "visually-hidden" }, "Remove")))),
      ),
      selectedBody,
    ),
  );
  // errors of tables.N.* point at the Nth table sent: rebuilt on every render
  let selectedSlots = [];

  async function columnsFor(name) {
    if (!columnsCache.has(name)) {
      columnsCache.set(
        name,
        api(`${tenantPath(ctx.tenantId, "columns")}?${query({ table: name })}`).catch((err) => {
          columnsCache.delete(name);
          throw err;
        }),
      );
    }
    return columnsCache.get(name);
  }

  function renderSelected() {
    selectedTitle.textContent = `Selected (${selected.size})`;
    clear(selectedBody);
    selectedSlots = [];
    if (!selected.size) {
      selectedBody.append(h("tr", {}, h("td", { colspan: "4", class: "empty" }, "No table selected yet: tick relations above.")));
    }
    let index = 0;
    for (const spec of selected.values()) {
      const i = index++;
      const modeId = nextId("mode");
      const cursorId = nextId("cursor");
      const mode = h(
        "select",
        { id: modeId, "aria-label": `Mode of ${spec.name}` },
        h("option", { value: "full" }, "full"),
        h("option", { value: "incremental" }, "incremental"),
      );
      mode.value = spec.mode;
      const cursor = h("select", { id: cursorId, "aria-label": `Cursor column of ${spec.name}` });
      const modeError = errors.errorEl();
      const cursorError = errors.errorEl();
      const cursorCell = h("td", {}, cursor, cursorError);
      const fillCursor = async () => {
        clear(cursor).append(h("option", { value: "" }, "Choose…"));
        if (spec.cursor_column) cursor.append(h("option", { value: spec.cursor_column }, spec.cursor_column));
        cursor.value = spec.cursor_column || "";
        try {
          const data = await columnsFor(spec.name);
          const cols = data.columns || [];
          const candidates = cols.filter((c) => c.cursor_candidate);
          clear(cursor).append(h("option", { value: "" }, "Choose…"));
          const shownCols = candidates.length ? candidates : cols;
          for (const c of shownCols) cursor.append(h("option", { value: c.name }, `${c.name} (${c.type})`));
          if (spec.cursor_column && !shownCols.some((c) => c.name === spec.cursor_column)) {
            // stored but not offered: keep it visible (and selected) so the user sees what the run will refuse
            const known = cols.some((c) => c.name === spec.cursor_column);
            cursor.append(h("option", { value: spec.cursor_column }, `${spec.cursor_column} (${known ? "not a date/time column" : "not found"})`));
          }
          cursor.value = spec.cursor_column || "";
        } catch (err) {
          cursorError.textContent = errorMessage(err, "read the columns of");
        }
      };
      const syncCursor = () => {
        cursorCell.hidden = false;
        cursor.hidden = spec.mode !== "incremental";
        if (spec.mode === "incremental") fillCursor();
      };
      mode.addEventListener("change", () => {
        spec.mode = mode.value;
        if (spec.mode !== "incremental") spec.cursor_column = null;
        syncCursor();
      });
      cursor.addEventListener("change", () => (spec.cursor_column = cursor.value || null));
      syncCursor();
      const remove = h(
        "button",
        {
          type: "button",
          class: "btn btn-sm",
          "aria-label": `Remove ${spec.name}`,
          onclick: () => {
            selected.delete(spec.name);
            renderSelected();
            selectedTitle.focus();
            for (const box of pickerBody.querySelectorAll("input[type=checkbox]")) {
              if (box.value === spec.name) {
                box.checked = false;
                box.closest("tr").classList.remove("is-selected");
              }
            }
          },
        },
        "Remove",
      );
      errors.field(`tables.${i}`, mode, modeError);
      errors.field(`tables.${i}.mode`, mode, modeError);
      errors.field(`tables.${i}.cursor_column`, cursor, cursorError);
      errors.field(`tables.${spec.name}`, mode, modeError);
      selectedSlots.push(spec.name);
      selectedBody.append(h("tr", {}, h("th", { scope: "row" }, h("code", {}, spec.name)), h("td", {}, mode, modeError), cursorCell, h("td", {}, remove)));
    }
  }

  // ---- custom queries
  const queriesEl = h("div");
  const queryRows = [];
  function addQuery(q = { name: "", sql: "" }) {
    const index = queryRows.length;
    const name = textField({ label: "Output name", name: `queries.${index}.name`, value: q.name, placeholder: "daily_revenue", errors });
    const sqlId = nextId("sql");
    const sqlError = errors.errorEl();
    const sql = h("textarea", { id: sqlId, name: `queries.${index}.sql`, rows: "3", spellcheck: "false", placeholder: "select … from …" });
    sql.value = q.sql || "";
    errors.field(`queries.${index}.sql`, sql, sqlError);
    errors.field(`queries.${index}`, sql, sqlError);
    const row = { name: name.input, sql, removed: false };
    const remove = h(
      "button",
      {
        type: "button",
        class: "btn btn-sm",
        "aria-label": `Remove custom query ${q.name || index + 1}`,
        onclick: () => {
          row.removed = true;
          row.el.remove();
          addQueryBtn.focus();
        },
      },
      "Remove",
    );
    row.el = h("div", { class: "repeat-row query-row" }, name.el, h("div", { class: "field" }, h("label", { for: sqlId }, "SQL"), sql, sqlError), remove);
    queryRows.push(row);
    queriesEl.append(row.el);
    return row;
  }
  for (const q of queries) addQuery(q);
  const addQueryBtn = h("button", { type: "button", class: "btn btn-sm", onclick: () => addQuery().name.focus() }, "Add custom query");
  const queriesError = errors.errorEl();
  errors.field("queries", null, queriesError);

  // ---- schedule and output
  const freq = selectField({
    label: "Sync Frequency",
    name: "syncFrequency",
    options: (meta.frequencies || []).map((f) => ({ value: f.value, label: f.label })),
    value: entryFrequency(e) || "",
    placeholder: "Choose…",
    errors,
    unknownLabel: (v) => `Custom cron: ${v}`, // a cron expression stored through the trigger form keeps working
  });
  const format = selectField({ label: "Format", name: "format", options: meta.formats || ["parquet"], value: e.format || "parquet", errors });
  // the API's hints first, then every zone the browser knows (the server still validates)
  const zones = [...new Set([...(meta.timezones_hint || []), ...(Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [])])];
  const tzList = h("datalist", { id: nextId("tz") }, zones.map((z) => h("option", { value: z })));
  const tz = textField({
    label: "Time zone",
    name: "timezone",
    value: e.timezone || "UTC",
    hint: "IANA name, e.g. UTC or Europe/Berlin; the schedule runs in it.",
    errors,
    attrs: { list: tzList.id },
  });
  const confirm = confirmField(
    "confirm_output_change",
    "Confirm the output change: objects already written and the incremental history stay as they are, and the next syncs start over.",
    errors,
  );
  const watchOutput = () => {
    if (!configured) return;
    if (format.select.value !== (e.format || "parquet") || tz.input.value.trim() !== (e.timezone || "UTC")) confirm.show();
  };
  format.select.addEventListener("change", watchOutput);
  tz.input.addEventListener("input", watchOutput);

  const actions = formActions(ctx, "Save configuration", null);
  const form = h(
    "form",
    { class: "card stack", novalidate: true, "aria-labelledby": "configure-title" },
    h("h3", { id: "configure-title" }, `Configure ${ctx.tenantId}`),
    errors.summary,
    h(
      "fieldset",
      {},
      h("legend", {}, "Tables"),
      h("p", { class: "hint" }, "Relations the tenant's Redshift login can SELECT, read live, 100 per page. Ticks are kept across pages and searches."),
      h(
        "div",
        { class: "row" },
        h("div", { class: "field field-grow" }, h("label", { for: searchId }, "Search relations"), search),
        h("div", { class: "field" }, h("label", { for: kindId }, "Kind"), kind),
      ),
      tablesError,
      pickerError,
      h("div", { class: "table-wrap picker-scroll", tabindex: "0", role: "region", "aria-label": "Relations" }, pickerTable),
      h("div", { class: "pager" }, shown, prev, next),
      h("div", { class: "stack" }, selectedTitle, selectedWrap),
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Custom queries"),
      h("p", { class: "hint" }, "One read-only SELECT each; its rows land in a folder named after the output name."),
      queriesEl,
      queriesError,
      addQueryBtn,
    ),
    h("fieldset", {}, h("legend", {}, "Schedule and output"), h("div", { class: "form-grid" }, freq.el, format.el, tz.el), tzList),
    confirm.box,
    actions.el,
  );

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const local = {};
    const tables = [...selected.values()].map((s) => ({ name: s.name, mode: s.mode, cursor_column: s.mode === "incremental" ? s.cursor_column : null }));
    tables.forEach((t, i) => {
      if (t.mode === "incremental" && !t.cursor_column) local[`tables.${i}.cursor_column`] = "Choose the cursor column of an incremental table.";
    });
    const liveQueries = queryRows.filter((r) => !r.removed);
    const sentQueries = liveQueries.map((r) => ({ name: r.name.value.trim(), sql: r.sql.value.trim() }));
    const aliases = {};
    liveQueries.forEach((r, i) => {
      const formIndex = queryRows.indexOf(r);
      for (const k of ["name", "sql"]) aliases[`queries.${i}.${k}`] = `queries.${formIndex}.${k}`;
      aliases[`queries.${i}`] = `queries.${formIndex}.sql`;
      if (!sentQueries[i].name) local[`queries.${formIndex}.name`] = "An output name is required.";
      if (!sentQueries[i].sql) local[`queries.${formIndex}.sql`] = "A SELECT is required.";
    });
    if (!tables.length && !sentQueries.length) local.tables = "Select at least one table or add a custom query.";
    if (!freq.select.value) local.syncFrequency = "Choose a sync frequency.";
    if (Object.keys(local).length) {
      const first = errors.show(local, null, {});
      if (first) first.focus();
      return;
    }
    const body = {
      tables,
      queries: sentQueries,
      syncFrequency: freq.select.value,
      format: format.select.value,
      timezone: tz.input.value.trim() || "UTC",
    };
    if (confirm.input.checked) body.confirm_output_change = true;
    postAction(ctx, "configure", body, { errors, submit: actions.submit, confirmFields: { confirm_output_change: confirm }, aliases });
  });

  renderSelected();
  loadCatalog();
  return form;
}

// ------------------------------------------------------------------------------------------- Sync
function syncForm(ctx) {
  const e = ctx.tenant.entry || {};
  const errors = new FieldErrors();
  const boxes = (e.tables || []).map((t) => {
    const id = nextId("sync-table");
    const input = h("input", { type: "checkbox", id, value: t.name });
    return { input, el: h("div", { class: "check" }, input, h("label", { for: id, class: "mono" }, t.name)) };
  });
  const tablesError = errors.errorEl();
  errors.field("tables", boxes[0]?.input || null, tablesError);
  const fullId = nextId("full-refresh");
  const full = h("input", { type: "checkbox", id: fullId, name: "full_refresh" });
  const fullError = errors.errorEl();
  errors.field("full_refresh", full, fullError);
  const actions = formActions(ctx, "Start sync", null);
  const form = h(
    "form",
    { class: "card stack", novalidate: true, "aria-labelledby": "sync-title" },
    h("h3", { id: "sync-title" }, `Sync ${ctx.tenantId} now`),
    errors.summary,
    h(
      "fieldset",
      {},
      h("legend", {}, "Tables to sync"),
      h("p", { class: "hint" }, "Leave all unticked to sync every configured table."),
      h("div", { class: "check-list" }, boxes.map((b) => b.el)),
      tablesError,
    ),
    h(
      "div",
      {},
      h("div", { class: "check" }, full, h("label", { for: fullId }, "Full refresh")),
      h("div", { class: "hint" }, "Copy incremental tables from the start instead of the run's interval only."),
      fullError,
    ),
    actions.el,
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const picked = boxes.filter((b) => b.input.checked).map((b) => b.input.value);
    postAction(ctx, "sync", { tables: picked.length ? picked : null, full_refresh: full.checked }, { errors, submit: actions.submit });
  });
  return form;
}

// ------------------------------------------------------------------------------------------- Disconnect
function openDisconnect(ctx) {
  const dialog = document.getElementById("disconnect-dialog");
  const e = ctx.tenant.entry || {};
  const where = e.bucket ? `gs://${e.bucket}${e.prefix ? `/${e.prefix}` : ""}/` : "the tenant's bucket";
  document.getElementById("disconnect-title").textContent = `Disconnect ${ctx.tenantId}?`;
  const hooks = e.webhooks || [];
  clear(document.getElementById("disconnect-body")).append(
    h("p", {}, "This deletes:"),
    h(
      "ul",
      {},
      h("li", {}, `the tenant's configuration (${(e.tables || []).length} table(s), ${frequencyLabel(entryFrequency(e))} schedule, connections)`),
      h("li", {}, "its sync DAG ", h("code", {}, ctx.tenant.sync_dag_id || `rs2gcs_sync__${ctx.tenantId}`), " (it stops running)"),
      h(
        "li",
        {},
        hooks.length ? `its webhook registrations: ${hooks.map((w) => w.id).join(", ")}` : "its webhook registrations (none are registered)",
      ),
    ),
    h("p", {}, "This keeps:"),
    h("ul", {}, h("li", {}, "the data already exported to ", h("code", {}, where), " (nothing in GCS is deleted)")),
  );
  dialog.returnValue = "";
  const onClose = () => {
    dialog.removeEventListener("close", onClose);
    if (dialog.returnValue !== "confirm" || !ctx.alive()) return;
    const submit = ctx.actions.querySelector('button[data-action="disconnect"]') || h("button");
    postAction(ctx, "disconnect", { webhookIds: null }, { errors: new FieldErrors(), submit });
  };
  dialog.addEventListener("close", onClose);
  dialog.showModal();
}

// ------------------------------------------------------------------------------------------- run history
async function loadHistory(ctx) {
  const section = h(
    "section",
    { class: "card", "aria-labelledby": "history-title" },
    h("div", { class: "section-title" }, h("h3", { id: "history-title" }, "Sync history"), h("span", { class: "muted small" }, `last ${HISTORY_LIMIT} runs`)),
  );
  if (!ctx.tenant.entry) {
    section.append(h("p", { class: "muted" }, "No sync yet."));
    clear(ctx.history).append(section);
    return;
  }
  let data;
  try {
    data = await api(`${tenantPath(ctx.tenantId, "runs")}?${query({ limit: HISTORY_LIMIT })}`);
  } catch (err) {
    if (!ctx.alive()) return;
    section.append(errorAlert(err, "view"));
    clear(ctx.history).append(section);
    return;
  }
  if (!ctx.alive()) return;
  const runs = data.runs || [];
  if (!runs.length) {
    section.append(h("p", { class: "muted" }, "No sync run yet."));
  } else {
    section.append(
      historyChart(runs),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          {},
          h("caption", { class: "visually-hidden" }, "Sync runs, newest first"),
          h(
            "thead",
            {},
            h("tr", {}, ["State", "Start", "Rows", "Bytes", "Duration", "Tables"].map((t) => h("th", { scope: "col", class: t === "State" || t === "Start" ? null : "num" }, t))),
          ),
          h(
            "tbody",
            {},
            runs.map((r) =>
              h(
                "tr",
                {},
                h(
                  "td",
                  {},
                  h(
                    "a",
                    {
                      href: `${AIRFLOW}dags/${encodeURIComponent(ctx.tenant.sync_dag_id || `rs2gcs_sync__${ctx.tenantId}`)}/runs/${encodeURIComponent(r.run_id)}`,
                      target: "_top", "data-outside": "",
                      title: r.run_id,
                    },
                    badge(r.state),
                  ),
                ),
                h("td", { class: "nowrap" }, timeEl(r.start, false)),
                h("td", { class: "num" }, fmtNumber(r.rows)),
                h("td", { class: "num" }, fmtBytes(r.bytes)),
                h("td", { class: "num" }, fmtDuration(r.duration_seconds)),
                h("td", { class: "num" }, fmtNumber(r.tables)),
              ),
            ),
          ),
        ),
      ),
    );
  }
  clear(ctx.history).append(section);
}

// Rows as bars, duration as a line, oldest run on the left; no chart library.
function historyChart(runsNewestFirst) {
  const runs = [...runsNewestFirst].reverse();
  const W = 600;
  const H = 180;
  const pad = { l: 52, r: 64, t: 12, b: 22 };
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const maxRows = Math.max(1, ...runs.map((r) => r.rows || 0));
  const maxDur = Math.max(1, ...runs.map((r) => r.duration_seconds || 0));
  const step = iw / runs.length;
  const barW = Math.max(2, Math.min(24, step * 0.7));
  const x = (i) => pad.l + step * i + step / 2;
  const yRows = (v) => pad.t + ih - (ih * v) / maxRows;
  const yDur = (v) => pad.t + ih - (ih * v) / maxDur;
  const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
  const label = `Rows (bars) and duration (line) of the last ${runs.length} sync runs; largest ${numberFmt.format(maxRows)} rows, longest ${fmtDuration(maxDur)}`;
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, preserveAspectRatio: "xMidYMid meet" });
  chart.append(svg("title", {}, label));
  for (const f of [0.5, 1]) chart.append(svg("line", { class: "grid", x1: pad.l, x2: W - pad.r, y1: pad.t + ih * (1 - f), y2: pad.t + ih * (1 - f) }));
  chart.append(svg("line", { class: "axis", x1: pad.l, x2: W - pad.r, y1: pad.t + ih, y2: pad.t + ih }));
  chart.append(svg("text", { x: pad.l - 6, y: pad.t + 4, "text-anchor": "end" }, compact.format(maxRows)));
  chart.append(svg("text", { x: pad.l - 6, y: pad.t + ih, "text-anchor": "end" }, "0"));
  chart.append(svg("text", { x: W - pad.r + 6, y: pad.t + 4 }, fmtDuration(maxDur)));
  chart.append(svg("text", { x: W - pad.r + 6, y: pad.t + ih }, "0 s"));
  runs.forEach((r, i) => {
    const v = r.rows || 0;
    const bar = svg("rect", {
      class: r.state === "failed" ? "bar bar-failed" : "bar",
      x: x(i) - barW / 2,
      y: yRows(v),
      width: barW,
      height: Math.max(r.state === "failed" ? 2 : 0, pad.t + ih - yRows(v)),
      rx: 1.5,
    });
    bar.append(svg("title", {}, `${r.start || r.run_id}: ${r.state}, ${fmtNumber(r.rows)} rows, ${fmtDuration(r.duration_seconds)}`));
    chart.append(bar);
  });
  const pts = runs.map((r, i) => (r.duration_seconds === null || r.duration_seconds === undefined ? null : [x(i), yDur(r.duration_seconds)])).filter(Boolean);
  if (pts.length > 1) chart.append(svg("polyline", { class: "line", points: pts.map((p) => p.join(",")).join(" ") }));
  for (const [px, py] of pts) chart.append(svg("circle", { class: "dot", cx: px, cy: py, r: 2.5 }));
  if (runs.length) {
    chart.append(svg("text", { x: pad.l, y: H - 6 }, "older"));
    chart.append(svg("text", { x: W - pad.r, y: H - 6, "text-anchor": "end" }, "newest"));
  }
  return h(
    "figure",
    { class: "stack", style: null },
    chart,
    h(
      "figcaption",
      { class: "legend" },
      h("span", {}, h("span", { class: "swatch swatch-rows" }), "Rows"),
      h("span", {}, h("span", { class: "swatch swatch-dur" }), "Duration"),
    ),
  );
}

// ------------------------------------------------------------------------------------------- theme
// Inside Airflow's iframe (same origin) follow Airflow's own colour mode; elsewhere prefers-color-scheme.
function followAirflowTheme() {
  let parentRoot = null;
  try {
    if (window.parent !== window) parentRoot = window.parent.document.documentElement;
  } catch {
    parentRoot = null; // cross-origin: keep prefers-color-scheme
  }
  if (!parentRoot) return;
  const apply = () => {
    const cls = parentRoot.classList;
    const scheme = parentRoot.style.colorScheme;
    if (cls.contains("dark") || scheme === "dark") document.documentElement.dataset.theme = "dark";
    else if (cls.contains("light") || scheme === "light") document.documentElement.dataset.theme = "light";
    else delete document.documentElement.dataset.theme;
  };
  apply();
  new MutationObserver(apply).observe(parentRoot, { attributes: true, attributeFilter: ["class", "style"] });
}

// ------------------------------------------------------------------------------------------- links out
// Airflow 3.3 shows this page in <iframe sandbox="allow-scripts allow-same-origin allow-forms allow-downloads">:
// without allow-top-navigation and allow-popups a target=_top or _blank link is blocked. The page is same
// origin as Airflow, so such a link (data-outside) is followed from Airflow's own document instead. Standalone
// (no parent) or cross-origin, the link's own target does the job.
function followOutside(ev) {
  const link = ev.target instanceof Element ? ev.target.closest("a[data-outside]") : null;
  if (!link || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  let parentDoc = null;
  try {
    if (window.parent !== window) parentDoc = window.parent.document;
  } catch {
    parentDoc = null;
  }
  if (!parentDoc || !parentDoc.body) return;
  ev.preventDefault();
  const proxy = parentDoc.createElement("a");
  proxy.href = link.href; // already absolute: resolved against this page's URL
  if (link.target === "_blank") {
    proxy.target = "_blank";
    proxy.rel = "noopener noreferrer";
  }
  proxy.hidden = true;
  parentDoc.body.append(proxy);
  proxy.click();
  proxy.remove();
}

// ------------------------------------------------------------------------------------------- start
async function start() {
  followAirflowTheme();
  document.addEventListener("click", followOutside);
  const main = document.getElementById("main");
  try {
    state.meta = await api("meta");
  } catch (err) {
    clear(main).append(h("h2", {}, "Redshift → GCS"), errorAlert(err, "view"));
    return;
  }
  const user = state.meta.user || {};
  document.getElementById("user").textContent = user.name ? `Signed in as ${user.name}${user.can_post ? "" : " (read only)"}` : "";
  window.addEventListener("hashchange", route);
  route();
}

start();
