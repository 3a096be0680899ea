// A button's POST, then the run it started, followed until it ends: state, tables, message or error.

import { api, errorAlert, tenantPath } from "./api.js";
import { clear, h, sleep } from "./dom.js";
import { badge, fmtBytes, fmtNumber } from "./format.js";
import { normaliseKey } from "./forms.js";
import { ACTION_LABEL, ACTION_VERB, AIRFLOW, DONE_STATES, GCS_CONSOLE, POLL_MS, state } from "./state.js";
import { closePanel, loadTenant } from "./tenant.js";

// POST an action, then follow its run. 422: errors beside the fields; other errors in the status area.
export async function postAction(ctx, action, body, { errors, submit, confirmFields = {}, aliases = {} }) {
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
export async function postRetryingWhileParsing(ctx, action, body, note) {
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
export async function followRun(ctx, action, { dag_id: dagId, run_id: runId }, onState = () => {}) {
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

export function successText(ctx, action, run) {
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

export function manifestLink(uri) {
  const m = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri || "");
  if (!m) return uri || "—";
  return h(
    "a",
    { href: `${GCS_CONSOLE}${m[1]}/${m[2].split("/").map(encodeURIComponent).join("/")}`, target: "_blank", rel: "noopener noreferrer", "data-outside": "" },
    uri,
  );
}

export function renderRunTables(slot, tables) {
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
