// The agent's JSON API: requests with the tab's token, who that token is, and which routes this agent
// serves (so the page offers only buttons that work for this token on this agent).

const TOKEN_KEY = "aiops.token";
const RANK = { viewer: 0, operator: 1, admin: 2 };

export class HttpError extends Error {
  constructor(status, detail) {
    super(`HTTP ${status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    this.status = status;
    this.detail = detail;
  }

  // The route itself is missing (an older agent), as opposed to a record it does not have.
  get unrouted() {
    return this.status === 405 || (this.status === 404 && this.detail === "Not Found");
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export async function api(path, { method = "GET", json } = {}) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = "Bearer " + token();
  const init = { method, headers };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  const resp = await fetch(path, init);
  let body = null;
  try {
    body = await resp.json();
  } catch (_) {
    body = null;
  }
  if (!resp.ok) throw new HttpError(resp.status, body && body.detail !== undefined ? body.detail : resp.statusText);
  return body;
}

// What this tab may do: the token's name and role, and the routes the agent serves.
export const session = {
  token: null, // the token the rest was loaded for
  name: null,
  role: null,
  problem: null,
  routes: null, // "POST /api/v1/changes/{}/retry", ...; null when the agent does not describe them

  allows(needed) {
    return this.role !== null && RANK[this.role] >= RANK[needed];
  },

  // Unknown routes (no description) are offered: a click on a missing one says so and hides it.
  offers(method, template) {
    return this.routes === null || this.routes.has(`${method} ${template}`);
  },
};

async function whoami() {
  try {
    const who = await api("/api/v1/whoami");
    return { name: who.name, role: who.role, problem: null };
  } catch (e) {
    return { name: null, role: null, problem: e.status === 401 ? "token not accepted" : e.message };
  }
}

async function describe() {
  try {
    const spec = await api("/openapi.json");
    return new Set(
      Object.entries(spec.paths || {}).flatMap(([path, ops]) =>
        Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{[^}]*\}/g, "{}")}`),
      ),
    );
  } catch (_) {
    return null;
  }
}

// Loads the session for the current token, once; an answer for a token replaced meanwhile is dropped.
export async function loadSession() {
  const current = token();
  if (session.token === current) return;
  const [who, routes] = await Promise.all([whoami(), session.routes ?? describe()]);
  if (token() !== current) return;
  Object.assign(session, who, { routes, token: current });
}
