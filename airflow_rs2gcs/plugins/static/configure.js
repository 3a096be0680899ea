// The Configure form: the live table picker, custom queries, Sync Frequency, format and time zone.

import { postAction } from "./actions.js";
import { api, errorAlert, errorMessage, query, tenantPath } from "./api.js";
import { checksBody, checksCell, checksOf } from "./checks.js";
import { contractBody, contractCell, storedContract } from "./contract.js";
import { clear, debounce, h, nextId } from "./dom.js";
import { entryFrequency, fmtNumber } from "./format.js";
import { FieldErrors, confirmField, formActions, selectField, textField } from "./forms.js";
import { CATALOG_PAGE_SIZE, state } from "./state.js";

export function configureForm(ctx) {
  const meta = state.meta;
  const e = ctx.tenant.entry || {};
  const configured = ctx.tenant.status === "configured";
  const errors = new FieldErrors();

  // selection: qualified_name -> {name, mode, cursor_column}; insertion order is the order sent
  const selected = new Map();
  const queries = [];
  for (const t of e.tables || []) {
    if (t.query) queries.push({ name: t.name, sql: t.query });
    else selected.set(t.name, { name: t.name, mode: t.mode || "full", cursor_column: t.cursor_column || null, ...storedContract(t), ...checksOf(t) });
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
          if (!selected.has(rel.qualified_name)) selected.set(rel.qualified_name, { name: rel.qualified_name, mode: "full", cursor_column: null, ...storedContract({}), ...checksOf({}) });
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
        h("tr", {}, ["Table", "Mode", "Cursor column", "Columns", "Checks", ""].map((t) => h("th", { scope: "col" }, t || h("span", { class: "visually-hidden" }, "Remove")))),
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
      selectedBody.append(h("tr", {}, h("td", { colspan: "6", class: "empty" }, "No table selected yet: tick relations above.")));
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
      const checks = checksCell(spec, columnsFor, errors, i);
      mode.addEventListener("change", () => {
        spec.mode = mode.value;
        if (spec.mode !== "incremental") spec.cursor_column = null;
        syncCursor();
        checks.sync();
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
      selectedBody.append(h("tr", {}, h("th", { scope: "row" }, h("code", {}, spec.name)), h("td", {}, mode, modeError), cursorCell, contractCell(spec, () => columnsFor(spec.name), errors, i), checks.el, h("td", {}, remove)));
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
  const hashKey = textField({ label: "Hash key connection", name: "hash_key_conn_id", value: e.hash_key_conn_id || "", hint: "Connection whose password keys hashed columns.", errors });
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
    h("fieldset", {}, h("legend", {}, "Schedule and output"), h("div", { class: "form-grid" }, freq.el, format.el, tz.el, hashKey.el), tzList),
    confirm.box,
    actions.el,
  );

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const local = {};
    const tables = [...selected.values()].map((s) => ({ name: s.name, mode: s.mode, cursor_column: s.mode === "incremental" ? s.cursor_column : null, ...contractBody(s), ...checksBody(s) }));
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
    if (hashKey.input.value.trim()) body.hash_key_conn_id = hashKey.input.value.trim();
    if (confirm.input.checked) body.confirm_output_change = true;
    postAction(ctx, "configure", body, { errors, submit: actions.submit, confirmFields: { confirm_output_change: confirm }, aliases });
  });

  renderSelected();
  loadCatalog();
  return form;
}
