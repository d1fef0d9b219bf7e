// A problem's incidents per day as an SVG bar chart: one row per service on one time axis, so a
// co-occurrence candidate's services can be compared day by day. Drawn from the API's `per_day`
// (`from`, `to`, `counts` of days with incidents); every value is set as text or an attribute.

import { el, svg } from "./dom.js";

const W = 720;
const ROW = 40;
const PAD = { left: 120, right: 12, top: 8, bottom: 22 };
const DAY_MS = 86_400_000;

function dayIndex(day, first) {
  return Math.round((Date.parse(`${day}T00:00:00Z`) - first) / DAY_MS);
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// The services drawn, in the problem's order, then any other service its incidents had.
function rows(problem, counts) {
  const names = problem.services && problem.services.length ? [...problem.services] : [problem.service];
  for (const c of counts) if (!names.includes(c.service)) names.push(c.service);
  return names;
}

export function dayChart(problem) {
  const { from, to, counts } = problem.per_day;
  const first = Date.parse(`${from}T00:00:00Z`);
  const days = dayIndex(to, first) + 1;
  const services = rows(problem, counts);
  const height = PAD.top + services.length * ROW + PAD.bottom;
  const width = (W - PAD.left - PAD.right) / days;
  const most = Math.max(1, ...counts.map((c) => c.incidents));
  const lanes = services.map((service, k) => {
    const base = PAD.top + (k + 1) * ROW;
    const bars = counts
      .filter((c) => c.service === service)
      .map((c) => {
        const h = ((ROW - 6) * c.incidents) / most;
        const x = PAD.left + dayIndex(c.day, first) * width;
        return svg(
          "rect",
          {
            class: "bar",
            x: (x + 1).toFixed(1),
            y: (base - h).toFixed(1),
            width: Math.max(1, width - 2).toFixed(1),
            height: h.toFixed(1),
            "data-day": c.day,
            "data-service": service,
            "data-incidents": c.incidents,
          },
          svg("title", {}, `${c.day}: ${plural(c.incidents, "incident")} on ${service}`),
        );
      });
    return svg(
      "g",
      { class: "lane", "data-service": service },
      svg("text", { class: "service", x: PAD.left - 6, y: base - ROW / 2 + 4, "text-anchor": "end" }, service),
      svg("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: base, y2: base }),
      bars,
    );
  });
  const label = `incidents per day from ${from} to ${to}`;
  const drawing = svg(
    "svg",
    { class: "chart days", viewBox: `0 0 ${W} ${height}`, role: "img", "aria-label": label },
    svg("title", {}, label),
    lanes,
    svg("text", { class: "tick", x: PAD.left, y: height - 6 }, from),
    svg("text", { class: "tick", x: W - PAD.right, y: height - 6, "text-anchor": "end" }, to),
    svg("text", { class: "tick", x: W - PAD.right, y: PAD.top + 8, "text-anchor": "end" }, `max ${most}/day`),
  );
  const total = counts.reduce((n, c) => n + c.incidents, 0);
  const rowsSaid = services.length > 1 ? ", one row per service" : "";
  const caption = `${plural(total, "incident")} in the last ${days} days${rowsSaid}`;
  return el("figure", { class: "chart days" }, drawing, el("figcaption", {}, caption));
}
