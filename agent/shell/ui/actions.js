// The on-call engineer's buttons. Each is offered only where its route exists on this agent, and works
// only for a token whose role allows it (the server checks again; a disabled button just says why).

import { api, session } from "./api.js";
import { el, say } from "./dom.js";

const DURATIONS = ["30m", "1h", "2h", "4h", "8h", "24h"];

// A button that sends `body()` to `path` (POST unless `method` says otherwise), says `ok` (text, or a function giving it) and calls `done` on
// success; null when this agent has no such route. `template` is the route with its ids as {}.
export function action({
  label,
  cls,
  template,
  path,
  method = "POST",
  body = () => undefined,
  needs = "operator",
  ok,
  done,
}) {
  if (!session.offers(method, template)) return null;
  const allowed = session.allows(needs);
  const button = el(
    "button",
    {
      type: "button",
      class: `action ${cls || ""}`,
      disabled: !allowed,
      title: allowed
        ? null
        : `needs the ${needs} role (${session.role ? "this token is " + session.role : "no token set"})`,
    },
    label,
  );
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api(path, { method, json: body() });
      const message = typeof ok === "function" ? ok() : ok;
      await done(); // said once the page shows the effect, so nothing typed into the old page is lost
      say(message, "ok");
    } catch (e) {
      if (e.unrouted) {
        button.hidden = true;
        say(`${label}: this agent does not offer it (${e.message})`, "error");
      } else {
        say(`${label}: ${e.message}`, "error");
        button.disabled = false;
      }
    }
  });
  return button;
}

function note(placeholder = "note (optional)") {
  return el("input", { type: "text", class: "note", placeholder, "aria-label": "note" });
}

function group(cls, ...children) {
  const items = children.flat().filter((c) => c !== null);
  return items.some((c) => c.tagName === "BUTTON") ? el("span", { class: `actions ${cls}` }, items) : null;
}

// -------------------------------------------------------------------- changes

const RETRYABLE = ["failed", "rolled_back", "cancelled"];
const ROLLBACKABLE = ["succeeded", "failed"];

export function changeActions(change, done) {
  const id = Number(change.id);
  const text = note();
  const post = (verb, label, cls, ok) =>
    action({
      label,
      cls,
      template: `/api/v1/changes/{}/${verb}`,
      path: `/api/v1/changes/${id}/${verb}`,
      body: () => ({ note: text.value }),
      ok: `change #${id} ${ok}`,
      done,
    });
  const buttons = [];
  if (change.status === "awaiting_approval") {
    buttons.push(post("approve", "Approve", "approve", "approved"), post("reject", "Reject", "reject", "rejected"));
  }
  if (RETRYABLE.includes(change.status)) buttons.push(post("retry", "Retry", "retry", "retry requested"));
  if (change.rollback_playbook && ROLLBACKABLE.includes(change.status)) {
    buttons.push(post("rollback", "Roll back", "rollback", "rollback requested"));
  }
  return group("decision", text, buttons);
}

// -------------------------------------------------------------------- incidents

export function acknowledgeAction(incident, done) {
  if (incident.status !== "open") return null;
  const id = Number(incident.id);
  return action({
    label: "Acknowledge",
    cls: "acknowledge",
    template: "/api/v1/incidents/{}/acknowledge",
    path: `/api/v1/incidents/${id}/acknowledge`,
    ok: `incident #${id} acknowledged`,
    done,
  });
}

export function field(label, control) {
  return el("label", {}, el("span", {}, label), control);
}

// Closing with a post-incident review: what happened, its impact, the root cause, follow-up actions.
export function closeForm(incident, done) {
  if (incident.status !== "resolved") return null;
  const id = Number(incident.id);
  const summary = el("textarea", { name: "summary", rows: 2, required: true });
  const impact = el("textarea", { name: "impact", rows: 2 });
  const rootCause = el("textarea", { name: "root_cause", rows: 2 });
  const actions = el("textarea", { name: "actions", rows: 3, placeholder: "one follow-up action per line" });
  const button = action({
    label: "Close with review",
    cls: "close",
    template: "/api/v1/incidents/{}/close",
    path: `/api/v1/incidents/${id}/close`,
    body: () => ({
      review: {
        summary: summary.value,
        impact: impact.value,
        root_cause: rootCause.value,
        actions: actions.value
          .split("\n")
          .map((line) => line.trim())
          .filter(Boolean),
      },
    }),
    ok: `closing incident #${id} requested`,
    done,
  });
  if (button === null) return null;
  return el(
    "details",
    { class: "form close-review" },
    el("summary", {}, "Review and close"),
    field("summary", summary),
    field("impact", impact),
    field("root cause", rootCause),
    field("actions", actions),
    button,
  );
}

// Silence the incident's service for a while: its signals still join incidents but start nothing.
export function silenceForm(incident, done) {
  const duration = el(
    "select",
    { name: "duration", "aria-label": "duration" },
    DURATIONS.map((d) => el("option", {}, d)),
  );
  duration.value = "2h";
  const comment = el("input", { type: "text", name: "comment", "aria-label": "comment", placeholder: "why" });
  const button = action({
    label: `Silence ${incident.service}`,
    cls: "silence",
    template: "/api/v1/silences",
    path: "/api/v1/silences",
    body: () => ({ matchers: [`service=${incident.service}`], duration: duration.value, comment: comment.value }),
    ok: () => `service ${incident.service} silenced for ${duration.value}`,
    done,
  });
  if (button === null) return null;
  return el("span", { class: "actions silence-form" }, duration, comment, button);
}
