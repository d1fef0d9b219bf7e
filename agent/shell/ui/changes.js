// Changes: why each ran, what it did (parameters, Ansible task results and output), who approved it,
// whether it worked (verification) and how it can be undone (rollback).

import { api } from "./api.js";
import { changeActions } from "./actions.js";
import { el, incidentLink, num, plain, statusBadge, table, when } from "./dom.js";
import { filterForm, listQuery } from "./filters.js";

const CHANGE_STATUSES = [
  "dry_run",
  "awaiting_approval",
  "approved",
  "rejected",
  "running",
  "verifying",
  "succeeded",
  "failed",
  "rolled_back",
  "cancelled",
];

const LIST_COLUMNS = [
  "change",
  "incident",
  "status",
  "service",
  "runbook",
  "rule",
  "type",
  "created",
  "decided by",
  "outcome",
  "",
];

// The decision on a change, with the note the person gave (kept in the incident's timeline).
function approval(change, timeline) {
  if (!change.decided_by) return change.status === "awaiting_approval" ? "awaiting approval" : "-";
  const entry = (timeline || []).find(
    (e) => (e.kind === "change_approved" || e.kind === "change_rejected") && e.data && e.data.change_id === change.id,
  );
  const verb = entry ? entry.kind.replace("change_", "") : "decided";
  const note = entry && entry.data.note ? `: "${entry.data.note}"` : "";
  return `${verb} by ${change.decided_by} at ${when(change.decided_at)}${note}`;
}

function result(event) {
  const word = event.kind.replace(/^runner_(item_)?on_/, "");
  return word === "ok" && event.changed ? "changed" : word;
}

function taskResults(run) {
  const results = (run.events || []).filter((e) => e.kind.startsWith("runner_"));
  if (!results.length) return el("p", {}, "no task results recorded");
  return table(
    ["task", "host", "result", "at"],
    results.map((e) => [e.task, e.host, el("span", { class: `result ${result(e)}` }, result(e)), when(e.at)]),
    { class: "tasks" },
  );
}

function runBlock(run) {
  return el(
    "details",
    { class: `run ${run.kind}`, open: run.status !== "successful" },
    el("summary", {}, `${run.kind} run #${run.id}: ${run.status}, rc ${run.rc ?? "-"}, ${num(run.duration_s)}s`),
    run.failed_tasks && run.failed_tasks.length ? el("p", {}, `failed tasks: ${run.failed_tasks.join(", ")}`) : null,
    taskResults(run),
    el("pre", {}, run.stdout || "(no output)"),
  );
}

function verification(change) {
  const v = change.verification || {};
  if (!v.promql) return "-";
  const outcome = v.result ? `${v.result}${v.verified_at ? ` at ${when(v.verified_at)}` : ""}` : "pending";
  return [el("code", {}, v.promql), ` within ${num(v.deadline_s)}s: `, el("strong", {}, outcome)];
}

function rollback(change) {
  const runs = (change.runs || []).filter((r) => r.kind === "rollback");
  if (!change.rollback_playbook) return "no rollback playbook";
  const done = runs.length ? runs.map((r) => `run #${r.id} ${r.status}`).join(", ") : "not run";
  return [el("code", {}, change.rollback_playbook), `: ${done}`];
}

// One change in full. `timeline` is its incident's (for approval notes), when the caller has it.
export function changeBlock(change, timeline, onDone) {
  return el(
    "section",
    { class: "change", id: `change-${Number(change.id)}` },
    el("h3", {}, `Change #${change.id}: ${change.runbook} `, statusBadge(change.status)),
    el(
      "dl",
      {},
      el("dt", {}, "why"),
      el("dd", {}, `rule ${change.rule} on incident `, incidentLink(change.incident_id), `: ${change.reason || ""}`),
      el("dt", {}, "runbook"),
      el("dd", { class: "runbook" }, `${change.runbook} (`, el("code", {}, change.playbook), ")"),
      el("dt", {}, "change"),
      el("dd", {}, `${change.change_type}, risk ${change.risk}, attempt ${change.attempt}`),
      el("dt", {}, "parameters"),
      el("dd", { class: "params" }, el("pre", {}, JSON.stringify(change.params, null, 2))),
      el("dt", {}, "approval"),
      el("dd", { class: "approval" }, approval(change, timeline)),
      el("dt", {}, "ran"),
      el("dd", {}, change.started_at ? `${when(change.started_at)} to ${when(change.finished_at)}` : "-"),
      el("dt", {}, "verification"),
      el("dd", { class: "verification" }, verification(change)),
      el("dt", {}, "rollback"),
      el("dd", { class: "rollback" }, rollback(change)),
      el("dt", {}, "outcome"),
      el("dd", {}, plain(change.outcome || null)),
    ),
    changeActions(change, onDone),
    (change.runs || []).map(runBlock),
  );
}

export async function showChanges(query, refresh) {
  const changes = await api(`/api/v1/changes?${listQuery(query)}`);
  return [
    el("h2", {}, "Changes"),
    filterForm("changes", query, CHANGE_STATUSES, "runbook, rule or reason"),
    changes.length === 0
      ? el("p", { class: "empty" }, "No changes match.")
      : table(
          LIST_COLUMNS,
          changes.map((c) => [
            el("a", { href: `#/changes/${Number(c.id)}` }, `#${c.id}`),
            incidentLink(c.incident_id),
            statusBadge(c.status),
            c.service,
            c.runbook,
            c.rule,
            `${c.change_type} / ${c.risk}`,
            when(c.created_at),
            c.decided_by || "-",
            c.outcome || "-",
            changeActions(c, refresh),
          ]),
          { class: "list changes" },
        ),
  ];
}

export async function showChange(id, refresh) {
  const change = await api(`/api/v1/changes/${Number(id)}`);
  const incident = await api(`/api/v1/incidents/${Number(change.incident_id)}`);
  const full = incident.changes.find((c) => c.id === change.id) || change;
  return [el("p", {}, el("a", { href: "#/changes" }, "← changes")), changeBlock(full, incident.timeline, refresh)];
}
