// The review UI: incidents, changes and problems from the agent's JSON API, approvals with a token.
// Everything shown comes from monitoring data and is untrusted: it is only ever set as text
// (createTextNode / textContent), never parsed as HTML. The page's CSP forbids inline script.
"use strict";

const TOKEN_KEY = "aiops.token";
const main = document.getElementById("main");
const statusBar = document.getElementById("status");

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (token()) headers.Authorization = "Bearer " + token();
  const resp = await fetch(path, { ...options, headers });
  let body = null;
  try {
    body = await resp.json();
  } catch (_) {
    body = null;
  }
  if (!resp.ok) {
    const detail = body && body.detail !== undefined ? body.detail : resp.statusText;
    throw new Error(`HTTP ${resp.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return body;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function when(iso) {
  if (!iso) return "-";
  return new Date(iso).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function num(value) {
  if (value === null || value === undefined) return "-";
  return Number(value).toPrecision(4).replace(/\.?0+$/, "");
}

// A value of any JSON type as one line of text (objects as JSON, not "[object Object]").
function plain(value) {
  return value !== null && typeof value === "object" ? JSON.stringify(value) : String(value);
}

function labels(map) {
  return Object.entries(map || {})
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

function table(headers, rows) {
  return el(
    "table",
    {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))),
  );
}

function say(message, kind = "info") {
  statusBar.className = kind;
  statusBar.textContent = message;
}

function incidentLink(id) {
  return el("a", { href: `#/incidents/${Number(id)}` }, `#${id}`);
}

function statusBadge(value, escalated) {
  return el("span", { class: `badge ${value}` }, value + (escalated ? " (escalated)" : ""));
}

// -------------------------------------------------------------------- changes and their decisions

function decision(change, onDone) {
  if (change.status !== "awaiting_approval") return null;
  const note = el("input", { type: "text", class: "note", placeholder: "note (optional)", "aria-label": "note" });
  const decide = (verb) => async () => {
    try {
      await api(`/api/v1/changes/${Number(change.id)}/${verb}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ note: note.value }),
      });
      say(`change #${change.id} ${verb === "approve" ? "approved" : "rejected"}`, "ok");
      onDone();
    } catch (e) {
      say(`change #${change.id}: ${e.message}`, "error");
    }
  };
  return el(
    "span",
    { class: "decision" },
    note,
    el("button", { class: "approve", onclick: decide("approve") }, "Approve"),
    el("button", { class: "reject", onclick: decide("reject") }, "Reject"),
  );
}

function changeBlock(change, onDone) {
  const runs = (change.runs || []).map((run) =>
    el(
      "details",
      { class: "run" },
      el("summary", {}, `run #${run.id} (${run.kind}): ${run.status}, rc ${run.rc ?? "-"}, ${num(run.duration_s)}s`),
      run.failed_tasks && run.failed_tasks.length ? el("p", {}, `failed tasks: ${run.failed_tasks.join(", ")}`) : null,
      el("pre", {}, run.stdout || "(no output)"),
    ),
  );
  const v = change.verification || {};
  return el(
    "section",
    { class: "change", id: `change-${Number(change.id)}` },
    el("h3", {}, `Change #${change.id}: ${change.runbook} `, statusBadge(change.status)),
    el(
      "dl",
      {},
      el("dt", {}, "why"),
      el("dd", {}, `rule ${change.rule} on incident `, incidentLink(change.incident_id), `: ${change.reason || ""}`),
      el("dt", {}, "change"),
      el("dd", {}, `${change.change_type}, risk ${change.risk}, attempt ${change.attempt}`),
      el("dt", {}, "parameters"),
      el("dd", {}, el("pre", {}, JSON.stringify(change.params, null, 2))),
      el("dt", {}, "decided"),
      el("dd", {}, change.decided_by ? `${change.decided_by} at ${when(change.decided_at)}` : "-"),
      el("dt", {}, "verification"),
      el("dd", {}, v.promql ? `${v.promql} within ${num(v.deadline_s)}s: ${v.result || "pending"}` : "-"),
      el("dt", {}, "outcome"),
      el("dd", {}, change.outcome || "-"),
    ),
    decision(change, onDone),
    runs,
  );
}

async function showChanges() {
  const changes = await api("/api/v1/changes?limit=200");
  main.replaceChildren(
    el("h2", {}, "Changes"),
    changes.length === 0
      ? el("p", {}, "No changes yet.")
      : table(
          ["change", "incident", "status", "runbook", "rule", "type", "created", "decided by", "outcome", ""],
          changes.map((c) => [
            el("a", { href: `#/changes/${Number(c.id)}` }, `#${c.id}`),
            incidentLink(c.incident_id),
            statusBadge(c.status),
            c.runbook,
            c.rule,
            `${c.change_type} / ${c.risk}`,
            when(c.created_at),
            c.decided_by || "-",
            c.outcome || "-",
            decision(c, render),
          ]),
        ),
  );
}

async function showChange(id) {
  const change = await api(`/api/v1/changes/${id}`);
  const incident = await api(`/api/v1/incidents/${Number(change.incident_id)}`);
  const full = incident.changes.find((c) => c.id === change.id) || change;
  main.replaceChildren(el("p", {}, el("a", { href: "#/changes" }, "← changes")), changeBlock(full, render));
}

// -------------------------------------------------------------------- incidents

async function showIncidents() {
  const incidents = await api("/api/v1/incidents?limit=200");
  main.replaceChildren(
    el("h2", {}, "Incidents"),
    incidents.length === 0
      ? el("p", {}, "No incidents yet.")
      : table(
          ["incident", "priority", "status", "service", "opened", "title"],
          incidents.map((i) => [
            incidentLink(i.id),
            el("span", { class: `priority ${i.priority}` }, i.priority),
            statusBadge(i.status, i.escalated),
            i.service,
            when(i.opened_at),
            i.title,
          ]),
        ),
  );
}

function evidence(signal) {
  const ev = signal.evidence || {};
  const parts = [];
  if (ev.template) parts.push(el("p", {}, `template: ${ev.template} (${ev.count ?? "?"} lines)`));
  if (Array.isArray(ev.samples) && ev.samples.length) parts.push(el("pre", {}, ev.samples.join("\n")));
  for (const [key, value] of Object.entries(ev)) {
    if (!["template", "samples", "count"].includes(key)) parts.push(el("p", {}, `${key}: ${plain(value)}`));
  }
  return parts.length ? el("div", { class: "evidence" }, parts) : "-";
}

async function showIncident(id) {
  const i = await api(`/api/v1/incidents/${id}`);
  const acknowledge = ["open"].includes(i.status)
    ? el(
        "button",
        {
          onclick: async () => {
            try {
              await api(`/api/v1/incidents/${Number(i.id)}/acknowledge`, { method: "POST" });
              say(`incident #${i.id} acknowledged`, "ok");
              render();
            } catch (e) {
              say(`incident #${i.id}: ${e.message}`, "error");
            }
          },
        },
        "Acknowledge",
      )
    : null;
  main.replaceChildren(
    el("p", {}, el("a", { href: "#/incidents" }, "← incidents")),
    el("h2", {}, `Incident #${i.id}: ${i.title}`),
    el(
      "p",
      { class: "summary" },
      el("span", { class: `priority ${i.priority}` }, i.priority),
      " ",
      statusBadge(i.status, i.escalated),
      ` ${i.service}, impact ${i.impact}, urgency ${i.urgency}; opened ${when(i.opened_at)}`,
      i.resolved_at ? `, resolved ${when(i.resolved_at)} by ${i.resolved_by}: ${i.resolution}` : "",
      " ",
      acknowledge,
    ),
    el(
      "p",
      { class: "sla" },
      `SLA: acknowledge by ${when(i.sla.acknowledge_by)}${i.sla.acknowledge_breached ? " (breached)" : ""}, ` +
        `resolve by ${when(i.sla.resolve_by)}${i.sla.resolve_breached ? " (breached)" : ""}`,
    ),
    el("h3", {}, "Signals"),
    table(
      ["signal", "labels", "detector", "severity", "count", "peak", "last value", "expected", "cleared", "evidence"],
      i.signals.map((s) => [
        s.name,
        labels(s.labels),
        s.detector,
        s.severity,
        s.count,
        num(s.peak_score),
        num(s.last_value),
        num(s.expected),
        when(s.cleared_at),
        evidence(s),
      ]),
    ),
    el("h3", {}, "Timeline"),
    table(
      ["at", "event", "actor", "reason"],
      i.timeline.map((e) => [when(e.at), e.kind, e.actor, e.reason]),
    ),
    el("h3", {}, "Changes"),
    // replaceChildren takes nodes, not lists: a list would be shown as "[object HTMLElement]"
    ...(i.changes.length ? i.changes.map((c) => changeBlock(c, render)) : [el("p", {}, "No remediation.")]),
  );
}

// -------------------------------------------------------------------- problems

async function showProblems() {
  const problems = await api("/api/v1/problems");
  main.replaceChildren(
    el("h2", {}, "Problem candidates"),
    problems.length === 0
      ? el("p", {}, "No recurring patterns yet.")
      : table(
          ["problem", "status", "service", "title", "occurrences", "first seen", "last seen"],
          problems.map((p) => [
            el("a", { href: `#/problems/${Number(p.id)}` }, `#${p.id}`),
            p.status,
            p.service,
            p.title,
            p.occurrences,
            when(p.first_seen),
            when(p.last_seen),
          ]),
        ),
  );
}

async function showProblem(id) {
  const p = await api(`/api/v1/problems/${id}`);
  main.replaceChildren(
    el("p", {}, el("a", { href: "#/problems" }, "← problems")),
    el("h2", {}, `Problem #${p.id}: ${p.title}`),
    el("p", {}, `${p.status}, ${p.kind}, signature ${p.signature}, ${p.occurrences} occurrences`),
    p.root_cause ? el("p", {}, `root cause: ${p.root_cause}`) : null,
    p.workaround ? el("p", {}, `workaround: ${p.workaround}`) : null,
    el("h3", {}, "Incidents"),
    table(
      ["incident", "priority", "status", "opened", "title"],
      p.incidents.map((i) => [incidentLink(i.id), i.priority, statusBadge(i.status), when(i.opened_at), i.title]),
    ),
  );
}

// -------------------------------------------------------------------- routing

const ROUTES = [
  [/^#\/incidents\/(\d+)$/, showIncident, "incidents"],
  [/^#\/changes\/(\d+)$/, showChange, "changes"],
  [/^#\/problems\/(\d+)$/, showProblem, "problems"],
  [/^#\/changes$/, showChanges, "changes"],
  [/^#\/problems$/, showProblems, "problems"],
  [/^#\/incidents$/, showIncidents, "incidents"],
];

async function render() {
  const hash = location.hash || "#/incidents";
  const route = ROUTES.find(([pattern]) => pattern.test(hash)) || ROUTES[ROUTES.length - 1];
  const [pattern, show, section] = route;
  const match = hash.match(pattern);
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === section);
  }
  try {
    await show(...(match ? match.slice(1) : []));
  } catch (e) {
    main.replaceChildren(el("p", { class: "error" }, e.message));
  }
}

function showTokenState() {
  document.getElementById("token-state").textContent = token() ? "token set" : "no token (read-only)";
}

document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value);
  else sessionStorage.removeItem(TOKEN_KEY);
  input.value = "";
  showTokenState();
  render();
});

window.addEventListener("hashchange", render);
showTokenState();
render();
