// Incidents: the filtered list, and one incident with its signals (charted), timeline, changes and the
// on-call engineer's actions.

import { acknowledgeAction, closeForm, silenceForm } from "./actions.js";
import { api } from "./api.js";
import { changeBlock } from "./changes.js";
import { chart, incidentMarks } from "./chart.js";
import { el, incidentLink, labels, num, plain, priorityTag, statusBadge, table, when } from "./dom.js";
import { filterForm, listQuery } from "./filters.js";

const INCIDENT_STATUSES = ["open", "acknowledged", "remediating", "resolved", "closed"];

function legend() {
  return el(
    "p",
    { class: "legend" },
    "blue: the series; dots: values the agent recorded; green dashes: expected value or limit; ",
    "red band: beyond a limit; grey: incident opened and resolved; purple: a change started (solid) and ended (dashed)",
  );
}

export async function showIncidents(query) {
  const incidents = await api(`/api/v1/incidents?${listQuery(query)}`);
  return [
    el("h2", {}, "Incidents"),
    filterForm("incidents", query, INCIDENT_STATUSES, "title, service or signature"),
    incidents.length === 0
      ? el("p", { class: "empty" }, "No incidents match.")
      : table(
          ["incident", "priority", "status", "service", "opened", "title"],
          incidents.map((i) => [
            incidentLink(i.id),
            priorityTag(i.priority),
            statusBadge(i.status, i.escalated),
            i.service,
            when(i.opened_at),
            i.title,
          ]),
          { class: "list incidents" },
        ),
  ];
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

// Charts fill in after the page shows: Prometheus may be slow or down, and the rest must not wait for it.
async function fillCharts(container, incident) {
  try {
    const range = await api(`/api/v1/incidents/${Number(incident.id)}/series`);
    const marks = incidentMarks(incident);
    const charts = range.signals.map((s) => chart(range, s, marks));
    if (range.omitted) charts.push(el("p", {}, `${range.omitted} more metric signals not charted`));
    container.replaceChildren(...(charts.length ? [legend(), ...charts] : [el("p", {}, "No metric signals.")]));
    container.setAttribute("aria-busy", "false");
  } catch (e) {
    container.replaceChildren(el("p", { class: "error" }, `charts: ${e.message}`));
    container.setAttribute("aria-busy", "false");
  }
}

// The ranking of the services this incident (with its linked children) spans; nothing for one service.
function rootCauses(i) {
  const found = i.root_causes || [];
  if (!found.length) return [];
  return [
    el("h3", {}, "Root-cause candidates"),
    table(
      ["#", "service", "score", "reasons"],
      found.map((c, n) => [n + 1, c.service, num(c.score), c.reasons.join("; ")]),
    ),
  ];
}

export async function showIncident(id, refresh) {
  const i = await api(`/api/v1/incidents/${Number(id)}`);
  const charts = el("div", { class: "charts", "aria-busy": "true" }, "Loading charts…");
  fillCharts(charts, i);
  return [
    el("p", {}, el("a", { href: "#/incidents" }, "← incidents")),
    el("h2", {}, `Incident #${i.id}: ${i.title}`),
    el(
      "p",
      { class: "summary" },
      priorityTag(i.priority),
      " ",
      statusBadge(i.status, i.escalated),
      ` ${i.service}, impact ${i.impact}, urgency ${i.urgency}; opened ${when(i.opened_at)}`,
      i.resolved_at ? `, resolved ${when(i.resolved_at)} by ${i.resolved_by}: ${i.resolution}` : "",
      i.closed_at ? `, closed ${when(i.closed_at)} by ${i.closed_by}` : "",
    ),
    i.flapping ? el("p", { class: "flapping" }, "Flapping: its signals keep coming and going; automation holds.") : null,
    i.known_error ? knownErrorBlock(i.known_error) : null,
    el(
      "p",
      { class: "sla" },
      `SLA: acknowledge by ${when(i.sla.acknowledge_by)}${i.sla.acknowledge_breached ? " (breached)" : ""}, ` +
        `resolve by ${when(i.sla.resolve_by)}${i.sla.resolve_breached ? " (breached)" : ""}`,
    ),
    el(
      "div",
      { class: "incident-actions" },
      acknowledgeAction(i, refresh),
      silenceForm(i, refresh),
      closeForm(i, refresh),
    ),
    el("h3", {}, "Signals"),
    table(
      ["signal", "labels", "detector", "severity", "count", "peak", "last value", "expected", "cleared", "muted", "evidence"],
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
        s.muted || "-",
        evidence(s),
      ]),
    ),
    ...rootCauses(i),
    el("h3", {}, "Charts"),
    charts,
    el("h3", {}, "Timeline"),
    table(
      ["at", "event", "actor", "reason"],
      i.timeline.map((e) => [when(e.at), e.kind, e.actor, e.reason]),
    ),
    i.review ? reviewBlock(i.review) : null,
    el("h3", {}, "Changes"),
    i.changes.length ? i.changes.map((c) => changeBlock(c, i.timeline, refresh)) : el("p", {}, "No remediation."),
  ];
}

// The known error the incident matched when it opened: what to do while the root cause stays.
function knownErrorBlock(k) {
  return el(
    "section",
    { class: "known-error" },
    el("h3", {}, `Known error #${k.id}: ${k.title}`),
    el("p", {}, `workaround: ${k.workaround}`),
    k.workaround_runbook ? el("p", {}, `workaround runbook: ${k.workaround_runbook}`) : null,
    k.root_cause ? el("p", {}, `root cause: ${k.root_cause}`) : null,
  );
}

function reviewBlock(r) {
  return el(
    "section",
    { class: "review" },
    el("h3", {}, "Post-incident review"),
    el("p", {}, `by ${r.author}, ${when(r.created_at)}`),
    table(
      ["", ""],
      [
        ["summary", r.summary],
        ["impact", r.impact],
        ["root cause", r.root_cause],
        ["actions", r.actions.length ? el("ul", {}, r.actions.map((a) => el("li", {}, a))) : "-"],
      ],
    ),
  );
}
