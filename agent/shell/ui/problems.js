// The problem manager's page: the problems people took on and the candidates, each list costliest first
// (the API ranks them), each problem with its cost, its trend and its incidents per day, and the forms to
// promote a candidate or record what is known of a problem (root cause, workaround: a known error).

import { action, field } from "./actions.js";
import { api } from "./api.js";
import { dayChart } from "./daychart.js";
import { el, incidentLink, num, statusBadge, table, when } from "./dom.js";

const TRENDS = ["rising", "steady", "falling"];
const FORMULA =
  "Cost: hours each incident was open times its priority's weight (P1 8, P2 4, P3 2, P4 1), " +
  "plus 8 per failed change, 4 per change a person made or decided, 8 per SLA breach. " +
  "Trend: incidents this week against the weekly mean of the four weeks before.";

export async function showProblems(_, refresh) {
  const problems = await api("/api/v1/problems");
  if (problems.length === 0) return [el("h2", {}, "Problems"), el("p", {}, "No recurring patterns yet.")];
  const taken = problems.filter((p) => p.status !== "candidate");
  const candidates = problems.filter((p) => p.status === "candidate");
  const list = (title, rows, none) => [
    el("h2", {}, title),
    rows.length
      ? el("ol", { class: "problems" }, rows.map((p) => el("li", {}, card(p, refresh, true))))
      : el("p", {}, none),
  ];
  return [
    el("p", { class: "formula" }, FORMULA),
    list("Problems by cost", taken, "No problem taken on yet: promote a candidate."),
    list("Candidates by cost", candidates, "No candidates."),
  ];
}

export async function showProblem(id, refresh) {
  const p = await api(`/api/v1/problems/${Number(id)}`);
  return [
    el("p", {}, el("a", { href: "#/problems" }, "← problems")),
    card(p, refresh, false),
    p.known_error
      ? el(
          "p",
          { class: "known-error" },
          `known error #${p.known_error.id}; workaround runbook: ${p.known_error.workaround_runbook || "-"}`,
        )
      : null,
    el("h3", {}, "Incidents"),
    table(
      ["incident", "service", "priority", "status", "opened", "title"],
      p.incidents.map((i) => [
        incidentLink(i.id),
        i.service,
        i.priority,
        statusBadge(i.status),
        when(i.opened_at),
        i.title,
      ]),
    ),
  ];
}

// One problem: what it is, what it costs, how it trends, its incidents per day, and what may be done.
function card(p, refresh, linked) {
  const id = Number(p.id);
  const heading = linked
    ? el("h3", {}, el("a", { href: `#/problems/${id}` }, `#${id}`), ` ${p.title}`)
    : el("h2", {}, `Problem #${id}: ${p.title}`);
  return el(
    "section",
    { class: "problem", "data-problem": id },
    heading,
    el(
      "p",
      { class: "meta" },
      statusBadge(p.status),
      ` ${p.kind}, ${(p.services.length ? p.services : [p.service]).join(", ")}, ${p.occurrences} occurrences, `,
      `seen ${when(p.first_seen)} to ${when(p.last_seen)}`,
    ),
    p.kind === "cooccurrence"
      ? el(
          "p",
          { class: "numbers" },
          `${num(p.expected)} co-occurrences expected by chance, lift ${num(p.lift)}, ` +
            `p-value ${Number(p.p_value).toExponential(2)}`,
        )
      : null,
    costLine(p.cost),
    trendLine(p.trend),
    dayChart(p),
    p.owner ? el("p", {}, `owner: ${p.owner}`) : null,
    p.root_cause ? el("p", {}, `root cause: ${p.root_cause}`) : null,
    p.workaround ? el("p", {}, `workaround: ${p.workaround}`) : null,
    linked && p.known_error_id !== null ? el("p", { class: "known-error" }, `known error #${p.known_error_id}`) : null,
    promoteForm(p, refresh),
    updateForm(p, refresh),
  );
}

function costLine(cost) {
  return el(
    "p",
    { class: "cost" },
    el("strong", {}, `cost ${num(cost.total)}`),
    `: ${num(cost.open_hours)} priority-weighted hours open, ${cost.failed_changes} failed changes, ` +
      `${cost.manual_changes} manual changes, ${cost.sla_breaches} SLA breaches`,
  );
}

function trendLine(trend) {
  const label = TRENDS.includes(trend.label) ? trend.label : "steady";
  return el(
    "p",
    { class: "trend" },
    el("span", { class: `trend-label ${label}` }, label),
    `: ${trend.this_week} incidents this week, ${num(trend.weekly_mean)} a week over the four before`,
  );
}

// A candidate becomes a problem someone owns.
function promoteForm(p, done) {
  if (p.status !== "candidate") return null;
  const id = Number(p.id);
  const owner = el("input", { type: "text", name: "owner", required: true, placeholder: "who takes it on" });
  const title = el("input", { type: "text", name: "title", placeholder: "(keep the generated title)" });
  const button = action({
    label: "Promote",
    cls: "promote",
    template: "/api/v1/problems/{}/promote",
    path: `/api/v1/problems/${id}/promote`,
    body: () => ({ owner: owner.value.trim(), title: title.value.trim() || undefined }),
    ok: () => `problem #${id} promoted, owned by ${owner.value.trim()}`,
    done,
  });
  if (button === null) return null;
  return el(
    "details",
    { class: "form promote" },
    el("summary", {}, "Promote to a problem"),
    field("owner", owner),
    field("title", title),
    button,
  );
}

// What is known of a problem: a workaround makes it a known error. Only what was changed is sent.
function updateForm(p, done) {
  if (p.status === "candidate") return null;
  const id = Number(p.id);
  const rootCause = el("textarea", { name: "root_cause", rows: 2 });
  rootCause.value = p.root_cause || "";
  const workaround = el("textarea", { name: "workaround", rows: 2 });
  workaround.value = p.workaround || "";
  const runbook = el("input", { type: "text", name: "workaround_runbook", placeholder: "catalog runbook (optional)" });
  const body = () => {
    const out = {};
    if (rootCause.value !== (p.root_cause || "")) out.root_cause = rootCause.value;
    if (workaround.value.trim() && workaround.value !== (p.workaround || "")) out.workaround = workaround.value;
    if (runbook.value.trim()) out.workaround_runbook = runbook.value.trim();
    return out;
  };
  const button = action({
    label: "Record",
    cls: "record",
    template: "/api/v1/problems/{}",
    path: `/api/v1/problems/${id}`,
    method: "PATCH",
    body,
    ok: `problem #${id} updated`,
    done,
  });
  if (button === null) return null;
  return el(
    "details",
    { class: "form update" },
    el("summary", {}, p.status === "known_error" ? "Update the known error" : "Record root cause and workaround"),
    field("root cause", rootCause),
    field("workaround", workaround),
    field("runbook", runbook),
    button,
  );
}
