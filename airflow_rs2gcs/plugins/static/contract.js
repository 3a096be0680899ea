// A selected table's data contract on the Configure form: which columns are exported, excluded or
// hashed, and what a schema change does. Compact: one disclosure per table, its columns read from the
// same columns API the cursor picker uses, and only when the disclosure is opened.

import { errorMessage } from "./api.js";
import { clear, h, nextId } from "./dom.js";

const CHOICES = [
  ["export", "export"],
  ["exclude", "exclude"],
  ["hash", "hash (HMAC)"],
];

// The contract keys of a stored table entry, with their defaults.
export function storedContract(t) {
  return {
    on_schema_change: t.on_schema_change || "evolve",
    columns: Array.isArray(t.columns) ? [...t.columns] : null,
    exclude_columns: [...(t.exclude_columns || [])],
    hash_columns: [...(t.hash_columns || [])],
  };
}

// What the page sends for a table: every key, so the stored contract is replaced by what was shown.
export function contractBody(spec) {
  return {
    on_schema_change: spec.on_schema_change || "evolve",
    columns: spec.columns,
    exclude_columns: spec.exclude_columns || [],
    hash_columns: spec.hash_columns || [],
  };
}

function choiceOf(spec, name) {
  if (spec.hash_columns.includes(name)) return "hash";
  const kept = spec.columns ? spec.columns.includes(name) : !spec.exclude_columns.includes(name);
  return kept ? "export" : "exclude";
}

// A column's new choice: a stored `columns` list stays a list (kept in its order), else exclusions.
function setChoice(spec, name, choice) {
  spec.hash_columns = spec.hash_columns.filter((c) => c !== name);
  if (choice === "hash") spec.hash_columns.push(name);
  const exported = choice !== "exclude";
  if (spec.columns) {
    spec.columns = spec.columns.filter((c) => c !== name);
    if (exported) spec.columns.push(name);
  } else {
    spec.exclude_columns = spec.exclude_columns.filter((c) => c !== name);
    if (!exported) spec.exclude_columns.push(name);
  }
}

function summaryText(spec) {
  const parts = [spec.on_schema_change === "fail" ? "fail on change" : "evolve"];
  if (spec.columns) parts.push(`${spec.columns.length} columns`);
  else if (spec.exclude_columns.length) parts.push(`${spec.exclude_columns.length} excluded`);
  else parts.push("all columns");
  if (spec.hash_columns.length) parts.push(`${spec.hash_columns.length} hashed`);
  return parts.join(" · ");
}

// The table cell: a disclosure with the on_schema_change choice and one choice per column.
export function contractCell(spec, loadColumns, errors, index) {
  const summary = h("summary", {}, summaryText(spec));
  const error = errors.errorEl();
  const onChangeId = nextId("schema-change");
  const onChange = h(
    "select",
    { id: onChangeId, "aria-label": `On schema change of ${spec.name}` },
    h("option", { value: "evolve" }, "evolve: export and report"),
    h("option", { value: "fail" }, "fail: export nothing"),
  );
  onChange.value = spec.on_schema_change;
  onChange.addEventListener("change", () => {
    spec.on_schema_change = onChange.value;
    summary.textContent = summaryText(spec);
  });
  const list = h("div", { class: "contract-columns" });
  let loaded = false;
  const details = h(
    "details",
    { class: "contract" },
    summary,
    h("div", { class: "field" }, h("label", { for: onChangeId }, "On schema change"), onChange),
    list,
    error,
  );
  details.addEventListener("toggle", async () => {
    if (!details.open || loaded) return;
    loaded = true;
    clear(list).append(h("p", { class: "muted" }, "Reading columns…"));
    try {
      const data = await loadColumns();
      clear(list);
      for (const col of data.columns || []) {
        const choice = h("select", { "aria-label": `${col.name} of ${spec.name}` }, CHOICES.map(([v, label]) => h("option", { value: v }, label)));
        choice.value = choiceOf(spec, col.name);
        choice.addEventListener("change", () => {
          setChoice(spec, col.name, choice.value);
          summary.textContent = summaryText(spec);
        });
        list.append(h("div", { class: "contract-column" }, h("code", {}, col.name), h("span", { class: "muted" }, col.type), choice));
      }
    } catch (err) {
      loaded = false;
      clear(list);
      error.textContent = errorMessage(err, "read the columns of");
    }
  });
  for (const key of ["on_schema_change", "columns", "exclude_columns", "hash_columns"]) {
    errors.field(`tables.${index}.${key}`, onChange, error);
  }
  return h("td", {}, details);
}
