// The checks of one selected table in the Configure form (its "Checks" cell, beside the "Columns" cell
// of contract.js): verify (count), capture_deletes and its primary key columns, picked from the
// catalog's column list (the same one the cursor column uses).

import { errorMessage } from "./api.js";
import { clear, h, nextId } from "./dom.js";

// A stored table's check keys, as the form keeps them beside name, mode and cursor_column.
export function checksOf(t) {
  return { verify: t.verify || null, capture_deletes: Boolean(t.capture_deletes), primary_key: [...(t.primary_key || [])] };
}

// What the form sends for a table: every key, null when off, so turning one off clears it and a table
// without the checks is stored as before (deletes only for an incremental table).
export function checksBody(spec) {
  const capture = spec.mode === "incremental" && spec.capture_deletes;
  return { verify: spec.verify || null, capture_deletes: capture || null, primary_key: capture ? spec.primary_key : null };
}

// The table row's cell: two checkboxes, and the key picker while deletes are captured. `sync()` follows
// a change of the row's mode (deletes need incremental).
export function checksCell(spec, columnsFor, errors, index) {
  const verifyId = nextId("verify");
  const captureId = nextId("capture");
  const verify = h("input", { type: "checkbox", id: verifyId, checked: spec.verify === "count", "aria-label": `Verify count of ${spec.name}` });
  const capture = h("input", { type: "checkbox", id: captureId, checked: spec.capture_deletes, "aria-label": `Capture deletes of ${spec.name}` });
  const keys = h("select", { multiple: true, size: "3", "aria-label": `Primary key columns of ${spec.name}` });
  const error = errors.errorEl();
  verify.addEventListener("change", () => (spec.verify = verify.checked ? "count" : null));
  capture.addEventListener("change", () => {
    spec.capture_deletes = capture.checked;
    sync();
  });
  keys.addEventListener("change", () => (spec.primary_key = [...keys.selectedOptions].map((o) => o.value)));

  async function fillKeys() {
    const option = (name, label) => h("option", { value: name, selected: spec.primary_key.includes(name) }, label);
    clear(keys).append(...spec.primary_key.map((name) => option(name, name)));
    try {
      const cols = (await columnsFor(spec.name)).columns || [];
      const missing = spec.primary_key.filter((name) => !cols.some((c) => c.name === name));
      clear(keys).append(...cols.map((c) => option(c.name, `${c.name} (${c.type})`)), ...missing.map((name) => option(name, `${name} (not found)`)));
    } catch (err) {
      error.textContent = errorMessage(err, "read the columns of");
    }
  }

  function sync() {
    const incremental = spec.mode === "incremental";
    capture.disabled = !incremental;
    capture.title = incremental ? "" : "Capturing deletes needs an incremental table.";
    keys.hidden = !(incremental && spec.capture_deletes);
    if (!keys.hidden) fillKeys();
  }

  errors.field(`tables.${index}.verify`, verify, error);
  errors.field(`tables.${index}.capture_deletes`, capture, error);
  errors.field(`tables.${index}.primary_key`, keys, error);
  sync();
  const el = h(
    "td",
    { class: "checks-cell" },
    h("label", { for: verifyId }, verify, " Verify count"),
    h("label", { for: captureId }, capture, " Capture deletes"),
    keys,
    error,
  );
  return { el, sync };
}
