// Filters and search on the lists, applied by the API and kept in the address (#/incidents?priority=P1)
// so a filtered list survives a reload and can be linked to.

import { el } from "./dom.js";

const KEYS = ["status", "priority", "service", "q"];
const PRIORITIES = ["P1", "P2", "P3", "P4"];
const LIST_LIMIT = "200";

export function parseQuery(text) {
  const params = new URLSearchParams(text || "");
  return Object.fromEntries(KEYS.filter((k) => params.get(k)).map((k) => [k, params.get(k)]));
}

export function listQuery(query) {
  return new URLSearchParams({ ...query, limit: LIST_LIMIT }).toString();
}

function choice(name, label, values, selected) {
  return el(
    "select",
    { name, "aria-label": label },
    el("option", { value: "" }, `any ${label}`),
    values.map((v) => el("option", { value: v, selected: v === selected }, v)),
  );
}

export function filterForm(view, query, statuses, searchHint) {
  const form = el(
    "form",
    { class: "filters", role: "search" },
    choice("status", "status", statuses, query.status),
    choice("priority", "priority", PRIORITIES, query.priority),
    el("input", {
      type: "text",
      name: "service",
      "aria-label": "service",
      placeholder: "service",
      value: query.service || "",
    }),
    el("input", {
      type: "search",
      name: "q",
      "aria-label": "search",
      placeholder: `search ${searchHint}`,
      value: query.q || "",
    }),
    el("button", { type: "submit" }, "Filter"),
    el("a", { href: `#/${view}` }, "clear"),
  );
  const apply = (event) => {
    if (event) event.preventDefault();
    const params = new URLSearchParams();
    for (const key of KEYS) {
      const value = form.elements[key].value.trim();
      if (value) params.set(key, value);
    }
    const text = params.toString();
    location.hash = `#/${view}${text ? "?" + text : ""}`;
  };
  form.addEventListener("submit", apply);
  for (const select of form.querySelectorAll("select")) select.addEventListener("change", () => apply());
  return form;
}
