// What every form shares: fields, errors beside them, confirmation boxes, Save and Cancel.

import { clear, h, nextId } from "./dom.js";
import { closePanel } from "./tenant.js";

// A form's fields register under the request's field names ("bucket", "queries.0.sql" ...): a 422's
// errors go beside the field, or into the form's summary when no field has that name.
export class FieldErrors {
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

export function normaliseKey(key) {
  // "queries[0].sql", "body.queries.0.sql", "queries/0/sql" -> "queries.0.sql"
  return String(key)
    .replace(/\[(\d+)\]/g, ".$1")
    .replace(/\//g, ".")
    .replace(/^body\./, "");
}

export function textField({ label, name, value = "", hint, type = "text", placeholder, errors, attrs = {} }) {
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

export function selectField({ label, name, options, value, placeholder, hint, errors, unknownLabel = (v) => `${v} (not listed)` }) {
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
export function confirmField(name, text, errors) {
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

export function formActions(ctx, submitLabel, submitting) {
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, submitLabel);
  const cancel = h("button", { type: "button", class: "btn", onclick: () => closePanel(ctx) }, "Cancel");
  return { submit, el: h("div", { class: "form-actions" }, submit, cancel, submitting) };
}
