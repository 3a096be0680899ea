// One tenant: its buttons (the widget's rules), its configuration summary and the open form.

import { api, errorAlert, tenantPath } from "./api.js";
import { configureForm } from "./configure.js";
import { connectForm } from "./connect.js";
import { openDisconnect } from "./disconnect.js";
import { clear, h } from "./dom.js";
import { badge, entryFrequency, frequencyLabel, timeEl } from "./format.js";
import { loadHistory } from "./history.js";
import { go, tenantHash } from "./router.js";
import { ACTION_LABEL, ACTION_ORDER, AIRFLOW, state } from "./state.js";
import { syncForm } from "./sync.js";

export function renderTenant(main, tenantId, panel) {
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
export function focusTitle() {
  const view = state.view;
  setTimeout(() => {
    const title = document.getElementById("page-title");
    const active = document.activeElement;
    const busy = active && active !== document.body && document.getElementById("main").contains(active) && active !== title;
    if (view === state.view && title && !busy) title.focus({ preventScroll: true });
  }, 0);
}

export async function loadTenant(ctx, { openPanel = false } = {}) {
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

export function renderActions(ctx) {
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

export function openPanelFor(ctx, name) {
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

export function closePanel(ctx) {
  history.replaceState(null, "", tenantHash(ctx.tenantId));
  openPanelFor(ctx, null);
}

export function renderSummary(ctx) {
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
