// A hand-rolled SVG bar chart of spend per day (live and test stacked). No library.
import { el, svg, usd, scrollRegion } from "./ui.js";

const WIDTH = 720;
const HEIGHT = 220;
const PAD = { top: 12, right: 8, bottom: 28, left: 56 };

function niceMax(value) {
  if (value <= 0) return 1;
  const exp = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * exp >= value) return step * exp;
  return 10 * exp;
}

export function spendChart(days) {
  const totals = days.map((d) => d.live.micros + d.test.micros);
  const max = niceMax(Math.max(0, ...totals));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotW / days.length;
  const barW = Math.max(2, slot * 0.7);
  const y = (micros) => PAD.top + plotH - (micros / max) * plotH;
  const total = totals.reduce((a, b) => a + b, 0);
  const label = `Spend per day over the last ${days.length} days, total ${usd((total / 1e6).toFixed(6))}.`;

  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-labelledby": "chart-title", id: "spend-chart" },
    svg("title", { id: "chart-title" }, label));
  for (const fraction of [0, 0.5, 1]) {
    const micros = max * fraction;
    chart.append(
      svg("line", { class: "axis", x1: PAD.left, x2: WIDTH - PAD.right, y1: y(micros), y2: y(micros) }),
      svg("text", { x: PAD.left - 6, y: y(micros) + 3, "text-anchor": "end" }, usd((micros / 1e6).toFixed(6))),
    );
  }
  days.forEach((day, i) => {
    const x = PAD.left + i * slot + (slot - barW) / 2;
    const liveTop = y(day.live.micros);
    const testTop = y(day.live.micros + day.test.micros);
    const tip = `${day.date}: live ${usd(day.live.usd)} (${day.live.requests} requests), test ${usd(day.test.usd)} (${day.test.requests} requests)`;
    const group = svg("g", { "data-date": day.date }, svg("title", {}, tip));
    if (day.live.micros > 0) group.append(svg("rect", { class: "bar-live", x, y: liveTop, width: barW, height: PAD.top + plotH - liveTop }));
    if (day.test.micros > 0) group.append(svg("rect", { class: "bar-test", x, y: testTop, width: barW, height: liveTop - testTop }));
    chart.append(group);
    if (i % Math.ceil(days.length / 7) === 0 || i === days.length - 1) {
      chart.append(svg("text", { x: x + barW / 2, y: HEIGHT - 10, "text-anchor": "middle" }, day.date.slice(5)));
    }
  });
  return el("figure", { class: "chart" }, chart,
    el("figcaption", { class: "legend" },
      el("span", {}, el("span", { class: "swatch live", "aria-hidden": "true" }), "Live"),
      el("span", {}, el("span", { class: "swatch test", "aria-hidden": "true" }), "Test")));
}

// The same numbers as a table, for screen readers and for copying.
export function spendTable(days) {
  return el("details", {},
    el("summary", {}, "Show the numbers"),
    scrollRegion("Spend per day",
      el("table", { id: "spend-table", class: "stack-narrow" },
        el("caption", { class: "sr-only" }, "Spend per day"),
        el("thead", {}, el("tr", {}, ...["Day", "Live", "Live requests", "Test", "Test requests"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...days.map((d) => el("tr", {},
          el("th", { scope: "row" }, d.date),
          el("td", { class: "num", "data-label": "Live" }, usd(d.live.usd)),
          el("td", { class: "num", "data-label": "Live requests" }, d.live.requests),
          el("td", { class: "num", "data-label": "Test" }, usd(d.test.usd)),
          el("td", { class: "num", "data-label": "Test requests" }, d.test.requests)))))));
}
