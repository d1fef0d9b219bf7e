// The review UI: incidents, changes and problems from the agent's JSON API, and the on-call engineer's
// actions with a token. Everything shown comes from monitoring data and is untrusted: it is only ever
// set as text, never parsed as HTML (see dom.js). The page's CSP forbids inline script and style.

import { loadSession, session, setToken, token } from "./api.js";
import { showChange, showChanges } from "./changes.js";
import { el, page } from "./dom.js";
import { parseQuery } from "./filters.js";
import { showIncident, showIncidents } from "./incidents.js";
import { showProblem, showProblems } from "./problems.js";
import { showAudit, showSafety } from "./safety.js";

// [pattern, view, section]; a list's filters follow its path as a query (#/incidents?status=open).
const ROUTES = [
  [/^#\/incidents\/(\d+)$/, showIncident, "incidents"],
  [/^#\/changes\/(\d+)$/, showChange, "changes"],
  [/^#\/problems\/(\d+)$/, showProblem, "problems"],
  [/^#\/changes(?:\?(.*))?$/, (q, refresh) => showChanges(parseQuery(q), refresh), "changes"],
  [/^#\/problems$/, showProblems, "problems"],
  [/^#\/safety$/, showSafety, "safety"],
  [/^#\/audit$/, showAudit, "audit"],
  [/^#\/incidents(?:\?(.*))?$/, (q) => showIncidents(parseQuery(q)), "incidents"],
];

let latest = 0; // renders overlap (a click, then a token): only the newest one may touch the page

async function render() {
  const mine = ++latest;
  const hash = location.hash || "#/incidents";
  const [pattern, show, section] = ROUTES.find(([p]) => p.test(hash)) || ROUTES[ROUTES.length - 1];
  const match = hash.match(pattern);
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === section);
  }
  try {
    await loadSession();
    const nodes = await show(match ? match[1] : undefined, render);
    if (mine === latest) page(nodes);
  } catch (e) {
    if (mine === latest) page(el("p", { class: "error" }, e.message));
  } finally {
    if (mine === latest) showTokenState();
  }
}

function showTokenState() {
  const state = document.getElementById("token-state");
  if (!token()) state.textContent = "no token (read-only)";
  else if (session.problem) state.textContent = session.problem;
  else state.textContent = `${session.name} (${session.role})`;
}

document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  setToken(input.value);
  input.value = "";
  render();
});

window.addEventListener("hashchange", render);
render();
