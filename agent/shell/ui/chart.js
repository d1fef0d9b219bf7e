// Inline SVG charts of an incident's metric signals: the series around the incident, its expected value
// or configured limits, and when the incident and each change started and ended. Built with
// createElementNS from the agent's own API: no library, nothing inline for the CSP to refuse.

import { el, labels, num, svg, when } from "./dom.js";

const W = 720;
const H = 180;
const PAD = { left: 64, right: 12, top: 12, bottom: 22 };
const GAP_STEPS = 2.5; // points further apart than this many steps are not joined

function seconds(iso) {
  return iso ? Date.parse(iso) / 1000 : null;
}

function extent(values) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (!Number.isFinite(lo)) lo = hi = 0;
  if (lo === hi) {
    const d = Math.abs(lo) * 0.1 || 1;
    lo -= d;
    hi += d;
  }
  const pad = (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

// Runs of points with no gap wider than GAP_STEPS steps: a missing scrape shows as a break.
function runs(points, step) {
  const out = [];
  let run = [];
  for (const p of points) {
    if (run.length && p[0] - run[run.length - 1][0] > GAP_STEPS * step) {
      out.push(run);
      run = [];
    }
    run.push(p);
  }
  if (run.length) out.push(run);
  return out;
}

// The marks drawn across every chart of an incident: when it opened and resolved, each change's run.
export function incidentMarks(incident) {
  const marks = [
    { at: seconds(incident.opened_at), kind: "opened", label: `incident opened ${when(incident.opened_at)}` },
    { at: seconds(incident.resolved_at), kind: "resolved", label: `incident resolved ${when(incident.resolved_at)}` },
  ];
  for (const c of incident.changes || []) {
    const id = Number(c.id);
    marks.push({
      at: seconds(c.started_at),
      kind: "change-start",
      change: id,
      label: `change #${id} started ${when(c.started_at)}`,
    });
    marks.push({
      at: seconds(c.finished_at),
      kind: "change-end",
      change: id,
      label: `change #${id} ended ${when(c.finished_at)}`,
    });
  }
  return marks.filter((m) => m.at !== null);
}

// Where values and times fall in the drawing: y grows downwards; values off the scale sit on its edge.
function frame(range, values) {
  const [lo, hi] = extent(values);
  const f = { lo, hi, left: PAD.left, right: W - PAD.right, top: PAD.top, bottom: H - PAD.bottom };
  f.x = (t) => (f.left + ((t - range.start) / (range.end - range.start || 1)) * (f.right - f.left)).toFixed(1);
  f.y = (v) => (f.top + ((hi - Math.min(hi, Math.max(lo, v))) / (hi - lo)) * (f.bottom - f.top)).toFixed(1);
  return f;
}

function limitBands(f, limits) {
  return limits.flatMap((l) => {
    const title = (word, v) => svg("title", {}, `limit: ${word} ${num(v)} (${l.severity})`);
    const band = (side, y0, y1, v) =>
      svg(
        "rect",
        { class: `limit ${side}`, x: f.left, y: y0, width: f.right - f.left, height: y1 - y0 },
        title(side, v),
      );
    const out = [];
    if (l.above !== null && l.above !== undefined) out.push(band("above", f.top, Number(f.y(l.above)), l.above));
    if (l.below !== null && l.below !== undefined) out.push(band("below", Number(f.y(l.below)), f.bottom, l.below));
    return out;
  });
}

function expectedLine(f, signal) {
  if (signal.expected === null) return null;
  const y = f.y(signal.expected);
  const word = signal.detector === "static" ? "limit" : "expected";
  return svg(
    "line",
    { class: "expected", x1: f.left, x2: f.right, y1: y, y2: y },
    svg("title", {}, `${word} ${num(signal.expected)}`),
  );
}

function markerLines(f, range, marks) {
  return marks
    .filter((m) => m.at >= range.start && m.at <= range.end)
    .map((m) => {
      const attrs = { class: `marker ${m.kind}`, x1: f.x(m.at), x2: f.x(m.at), y1: f.top, y2: f.bottom };
      if (m.change) attrs["data-change"] = m.change;
      return svg("line", attrs, svg("title", {}, m.label));
    });
}

function axes(f, range) {
  return [
    svg("line", { class: "axis", x1: f.left, x2: f.left, y1: f.top, y2: f.bottom }),
    svg("line", { class: "axis", x1: f.left, x2: f.right, y1: f.bottom, y2: f.bottom }),
    svg("text", { class: "tick", x: f.left - 4, y: f.top + 8, "text-anchor": "end" }, num(f.hi)),
    svg("text", { class: "tick", x: f.left - 4, y: f.bottom, "text-anchor": "end" }, num(f.lo)),
    svg("text", { class: "tick", x: f.left, y: H - 6 }, when(range.start * 1000)),
    svg("text", { class: "tick", x: f.right, y: H - 6, "text-anchor": "end" }, when(range.end * 1000)),
  ];
}

// One signal's chart: Prometheus' series when it has one, else the points the agent recorded itself.
export function chart(range, signal, marks) {
  const line = signal.points.length ? signal.points : signal.recorded;
  const limits = signal.limits.flatMap((l) => [l.above, l.below]).filter((v) => v !== null && v !== undefined);
  const values = [...line, ...signal.recorded].map((p) => p[1]).concat(limits);
  const f = frame(range, signal.expected === null ? values : [...values, signal.expected]);
  const polylines = runs(line, range.step_s).map((run) =>
    svg("polyline", {
      class: `series ${signal.points.length ? "prometheus" : "store"}`,
      points: run.map(([t, v]) => `${f.x(t)},${f.y(v)}`).join(" "),
    }),
  );
  const recorded = signal.recorded.map(([t, v]) =>
    svg(
      "circle",
      { class: "recorded", cx: f.x(t), cy: f.y(v), r: 3 },
      svg("title", {}, `recorded ${num(v)} at ${when(t * 1000)}`),
    ),
  );
  const name = `${signal.name} {${labels(signal.labels)}}`;
  const attrs = { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": name };
  const drawing = svg(
    "svg",
    { ...attrs, "data-fingerprint": signal.fingerprint },
    svg("title", {}, name),
    limitBands(f, signal.limits),
    axes(f, range),
    expectedLine(f, signal),
    polylines,
    recorded,
    markerLines(f, range, marks),
  );
  const caption = el("figcaption", {}, name, el("br", {}), source(range, signal, line));
  return el("figure", { class: "chart" }, drawing, caption);
}

function source(range, signal, line) {
  const points = `${line.length} point${line.length === 1 ? "" : "s"}`;
  if (signal.points.length) return `from Prometheus: ${points}, one every ${num(range.step_s)}s`;
  const why = signal.note || range.prometheus.error || "Prometheus has no values in this range";
  return `from the agent's own record: ${points} (${why})`;
}
