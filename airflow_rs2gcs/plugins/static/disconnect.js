// The Disconnect dialog: what is deleted, what stays.

import { postAction } from "./actions.js";
import { clear, h } from "./dom.js";
import { entryFrequency, frequencyLabel } from "./format.js";
import { FieldErrors } from "./forms.js";

export function openDisconnect(ctx) {
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
