// Problem candidates (recurring and co-occurring patterns), the problems people took on and their
// known errors, and the incidents each links.

import { api } from "./api.js";
import { el, incidentLink, statusBadge, table, when } from "./dom.js";

export async function showProblems() {
  const problems = await api("/api/v1/problems");
  return [
    el("h2", {}, "Problem candidates"),
    problems.length === 0
      ? el("p", {}, "No recurring patterns yet.")
      : table(
          ["problem", "kind", "status", "services", "title", "occurrences", "first seen", "last seen"],
          problems.map((p) => [
            el("a", { href: `#/problems/${Number(p.id)}` }, `#${p.id}`),
            p.kind,
            p.status,
            p.services.length ? p.services.join(", ") : p.service,
            p.title,
            p.occurrences,
            when(p.first_seen),
            when(p.last_seen),
          ]),
        ),
  ];
}

export async function showProblem(id) {
  const p = await api(`/api/v1/problems/${Number(id)}`);
  return [
    el("p", {}, el("a", { href: "#/problems" }, "← problems")),
    el("h2", {}, `Problem #${p.id}: ${p.title}`),
    el("p", {}, `${p.status}, ${p.kind}, signature ${p.signature}, ${p.occurrences} occurrences`),
    p.kind === "cooccurrence"
      ? el(
          "p",
          {},
          `${p.expected.toPrecision(3)} expected by chance, lift ${p.lift.toFixed(1)}, ` +
            `p-value ${p.p_value.toExponential(2)}`,
        )
      : null,
    p.owner ? el("p", {}, `owner: ${p.owner}`) : null,
    p.root_cause ? el("p", {}, `root cause: ${p.root_cause}`) : null,
    p.workaround ? el("p", {}, `workaround: ${p.workaround}`) : null,
    p.known_error
      ? el("p", {}, `known error #${p.known_error.id}; workaround runbook: ${p.known_error.workaround_runbook || "-"}`)
      : null,
    el("h3", {}, "Incidents"),
    table(
      ["incident", "priority", "status", "opened", "title"],
      p.incidents.map((i) => [incidentLink(i.id), i.priority, statusBadge(i.status), when(i.opened_at), i.title]),
    ),
  ];
}
