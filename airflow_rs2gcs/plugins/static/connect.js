// The Connect form: connections, bucket, prefix, webhooks (secrets are write-only).

import { postAction } from "./actions.js";
import { h } from "./dom.js";
import { timeEl } from "./format.js";
import { FieldErrors, confirmField, formActions, selectField, textField } from "./forms.js";
import { state } from "./state.js";

export function connectForm(ctx) {
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
