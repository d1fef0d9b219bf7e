// The safety envelope as on-call engineers see it: silences (with expiry), the kill switch and open
// circuit breakers (pause and resume for admins), and the audit trail (admins only).

import { action } from "./actions.js";
import { api } from "./api.js";
import { el, plain, table, when } from "./dom.js";

export async function showSafety(_, refresh) {
  const [silences, automation] = await Promise.all([api("/api/v1/silences?all=true"), api("/api/v1/automation")]);
  return [el("h2", {}, "Automation"), automationState(automation, refresh), el("h2", {}, "Silences"), silenceTable(silences, refresh)];
}

function automationState(state, refresh) {
  const held = [
    ...state.paused.map((p) =>
      el("li", { class: "paused" }, `paused ${p.scope} since ${when(p.at)} by ${p.by}: ${p.reason}`),
    ),
    ...state.breakers.map((b) => el("li", { class: "breaker" }, b.reason)),
  ];
  const reason = el("input", { type: "text", name: "reason", "aria-label": "reason", placeholder: "why (required to pause)" });
  const service = el("input", { type: "text", name: "service", "aria-label": "service", placeholder: "service (empty: everything)" });
  const scope = () => ({ service: service.value.trim() || undefined, reason: reason.value });
  const switchButton = (verb, label) =>
    action({
      label,
      cls: verb,
      template: `/api/v1/automation/${verb}`,
      path: `/api/v1/automation/${verb}`,
      needs: "admin",
      body: scope,
      ok: () => `automation ${verb}d ${service.value.trim() ? "for " + service.value.trim() : "everywhere"}`,
      done: refresh,
    });
  return [
    held.length ? el("ul", { class: "holds" }, held) : el("p", { class: "running" }, "Automation is running: no pause, no open circuit breaker."),
    el("span", { class: "actions automation" }, service, reason, switchButton("pause", "Pause"), switchButton("resume", "Resume")),
    state.log.length
      ? table(
          ["at", "switch", "scope", "runbook", "by", "reason"],
          state.log.map((s) => [when(s.at), s.kind, s.scope, s.runbook || "-", s.by, s.reason]),
          { class: "switches" },
        )
      : null,
  ];
}

function silenceTable(silences, refresh) {
  if (silences.length === 0) return el("p", {}, "No silences.");
  return table(
    ["silence", "state", "matchers", "starts", "ends", "by", "comment", ""],
    silences.map((s) => [
      `#${s.id}`,
      s.state,
      s.matchers.join(", "),
      when(s.starts_at),
      when(s.ends_at),
      s.created_by,
      s.comment,
      s.state === "expired"
        ? s.expired_by
          ? `expired by ${s.expired_by}`
          : ""
        : action({
            label: "Expire",
            cls: "expire",
            template: "/api/v1/silences/{}",
            path: `/api/v1/silences/${Number(s.id)}`,
            method: "DELETE",
            ok: `silence #${s.id} expired`,
            done: refresh,
          }),
    ]),
    { class: "silences" },
  );
}

export async function showAudit() {
  let entries;
  try {
    entries = await api("/api/v1/audit?limit=500");
  } catch (e) {
    if (e.status === 401 || e.status === 403) return el("p", { class: "error" }, "The audit trail needs an admin token.");
    throw e;
  }
  return [
    el("h2", {}, "Audit trail"),
    entries.length === 0
      ? el("p", {}, "Nothing recorded yet.")
      : table(
          ["at", "actor", "action", "target", "details"],
          entries.map((a) => [when(a.at), a.actor, a.action, a.target, plain(a.details)]),
          { class: "audit" },
        ),
  ];
}
