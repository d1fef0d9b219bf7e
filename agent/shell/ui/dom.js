// Building the page from untrusted data. Every value becomes a text node (createTextNode /
// textContent), never markup; an element is only ever appended as a node, never turned into text.

const SVG_NS = "http://www.w3.org/2000/svg";
const main = document.getElementById("main");
const statusBar = document.getElementById("status");

// Children may be nested arrays, nodes, or values shown as text; null and undefined are skipped.
function fill(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  return fill(node, children);
}

export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return fill(node, children);
}

// Replaces what the page shows: nested lists of nodes are flattened, never turned into text.
export function page(...children) {
  main.replaceChildren();
  fill(main, children);
}

export function say(message, kind = "info") {
  statusBar.className = kind;
  statusBar.textContent = message;
}

export function table(headers, rows, attrs = {}) {
  const cells = (tag, values) => values.map((v) => el(tag, {}, v));
  const body = rows.map((row) => el("tr", {}, cells("td", row)));
  return el("table", attrs, el("thead", {}, el("tr", {}, cells("th", headers))), el("tbody", {}, body));
}

export function when(iso) {
  if (!iso) return "-";
  return new Date(iso)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}

export function num(value) {
  if (value === null || value === undefined) return "-";
  return Number(value)
    .toPrecision(4)
    .replace(/\.?0+$/, "");
}

// A value of any JSON type as one line of text (objects as JSON, not "[object Object]").
export function plain(value) {
  if (value === null || value === undefined) return "-";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

export function labels(map) {
  return Object.entries(map || {})
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

export function incidentLink(id) {
  return el("a", { href: `#/incidents/${Number(id)}` }, `#${id}`);
}

export function statusBadge(value, escalated) {
  return el("span", { class: `badge ${value}` }, value + (escalated ? " (escalated)" : ""));
}

export function priorityTag(priority) {
  return el("span", { class: `priority ${priority}` }, priority);
}
