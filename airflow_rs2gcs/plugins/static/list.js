// The tenant list: filter, server-side paging, one line per tenant.

import { api, errorAlert, query } from "./api.js";
import { clear, debounce, h, nextId } from "./dom.js";
import { badge, fmtBytes, fmtDuration, fmtNumber, frequencyLabel, timeEl } from "./format.js";
import { go, tenantHash } from "./router.js";
import { LIST_LIMIT, TENANT_ID_RE, state } from "./state.js";

export function renderList(main) {
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

export function tenantRow(t) {
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
