// The Sync form: all tables or some, optionally a full refresh.

import { postAction } from "./actions.js";
import { h, nextId } from "./dom.js";
import { FieldErrors, formActions } from "./forms.js";

export function syncForm(ctx) {
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
