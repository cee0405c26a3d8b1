// Usage: spend per day (SVG chart), by key and model (filters, CSV), and the ledger with cursor pagination.
import { api } from "../http.js";
import { busy, el, field, heading, usd, when, scrollRegion } from "../ui.js";
import { spendChart, spendTable } from "../chart.js";

const PAGE = 10;

function describe(entry) {
  if (entry.type === "usage") {
    const tokens = `${entry.tokensIn} in / ${entry.tokensOut} out`;
    return [el("code", {}, entry.model), ` · ${tokens} · ${entry.outcome}${entry.estimated ? " (estimated)" : ""}`];
  }
  if (entry.type === "grant") return [entry.reason || "grant"];
  return [entry.source || "", entry.sourceId ? ` · ${entry.sourceId}` : ""];
}

function entryRow(entry) {
  const negative = String(entry.amountUsd).startsWith("-");
  return el("tr", { "data-entry": entry.id },
    el("td", { "data-label": "When" }, when(entry.createdAt)),
    el("td", { "data-label": "Type" }, entry.type),
    el("td", { "data-label": "Env" }, el("span", { class: `badge ${entry.env}` }, entry.env)),
    el("td", { "data-label": "Details" }, ...describe(entry)),
    el("td", { class: `num ${negative ? "amount-neg" : "amount-pos"}`, "data-label": "Amount" }, usd(entry.amountUsd)));
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function breakdownRow(row) {
  return el("tr", {},
    el("td", { "data-label": "Date" }, row.date),
    el("td", { "data-label": "Env" }, el("span", { class: `badge ${row.env}` }, row.env)),
    el("td", { "data-label": "Key" }, row.keyName || row.keyId || "MPP session"),
    el("td", { "data-label": "Model" }, el("code", {}, row.model)),
    el("td", { class: "num", "data-label": "Requests" }, String(row.requests)),
    el("td", { class: "num", "data-label": "Tokens in / out" }, `${row.tokensIn} / ${row.tokensOut}`),
    el("td", { class: "num", "data-label": "Spend" }, usd(row.spendUsd)));
}

// Spend by day, key and model for a period, filtered, with a CSV download of the same rows.
function breakdown(keys) {
  const today = new Date();
  const from = el("input", { id: "usage-from", name: "from", type: "date", value: isoDay(new Date(today.getTime() - 29 * 86400000)) });
  const to = el("input", { id: "usage-to", name: "to", type: "date", value: isoDay(today) });
  const key = el("select", { id: "usage-key", name: "keyId" },
    el("option", { value: "" }, "All keys"),
    ...keys.map((k) => el("option", { value: k.id }, `${k.name} (${k.prefix}…${k.last4})`)));
  const model = el("input", { id: "usage-model", name: "model", type: "text", placeholder: "All models", autocomplete: "off" });
  const env = el("select", { id: "usage-env", name: "env" },
    el("option", { value: "" }, "Live and test"), el("option", { value: "live" }, "Live"), el("option", { value: "test" }, "Test"));
  const body = el("tbody", { id: "usage-body" });
  const total = el("p", { class: "help", id: "usage-total", "aria-live": "polite" });
  const download = el("a", { id: "usage-csv", class: "button secondary", href: "#", download: "" }, "Download CSV");
  const form = el("form", { id: "usage-filters" },
    el("div", { class: "row" }, field("From", from), field("To", to), field("Key", key), field("Model", model), field("Env", env)),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "usage-apply" }, "Show"), download));
  function query() {
    const params = new URLSearchParams();
    for (const input of [from, to, key, model, env]) if (input.value.trim()) params.set(input.name, input.value.trim());
    return params;
  }
  async function load() {
    const params = query();
    const report = await api(`/app/api/usage/report?${params}`);
    body.replaceChildren(...report.data.map(breakdownRow));
    if (report.data.length === 0) body.append(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "No usage in this period.")));
    total.textContent = `${report.totals.requests} requests, ${usd(report.totals.spendUsd)} in total.`;
    params.set("format", "csv");
    download.href = `/app/api/usage/report?${params}`;
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form.querySelector("#usage-apply"), "Loading…", load);
  });
  const section = el("section", { class: "panel", "aria-labelledby": "breakdown-heading" },
    el("h2", { id: "breakdown-heading" }, "By key and model"),
    form,
    scrollRegion("Usage by key and model",
      el("table", { id: "usage-table", class: "stack-narrow" },
        el("caption", { class: "sr-only" }, "Usage per day, key and model"),
        el("thead", {}, el("tr", {}, ...["Date", "Env", "Key", "Model", "Requests", "Tokens in / out", "Spend"].map((h, i) => el("th", { scope: "col", class: i >= 4 ? "num" : undefined }, h)))),
        body)),
    total);
  return { section, load };
}

export async function render(main) {
  const usage = await api("/app/api/usage?days=14");
  const keys = (await api("/app/api/keys?limit=100")).data;
  const report = breakdown(keys);
  const body = el("tbody", { id: "ledger-body" });
  const newer = el("button", { type: "button", class: "secondary", id: "ledger-newer" }, "Newer");
  const older = el("button", { type: "button", class: "secondary", id: "ledger-older" }, "Older");
  const position = el("span", { class: "help", id: "ledger-page", "aria-live": "polite" });
  const cursors = [null]; // cursors[i] = the cursor that loads page i; newest page first
  let index = 0;
  let next = null;

  async function load(i) {
    const cursor = cursors[i];
    const page = await api(`/app/api/ledger?limit=${PAGE}${cursor ? `&cursor=${cursor}` : ""}`);
    index = i;
    next = page.nextCursor;
    if (next && cursors.length === i + 1) cursors.push(next);
    body.replaceChildren(...page.data.map(entryRow));
    if (page.data.length === 0) body.append(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "No ledger entries yet.")));
    position.textContent = `Page ${index + 1}`;
  }
  function sync() {
    newer.disabled = index === 0;
    older.disabled = !next;
  }
  for (const [button, step] of [[newer, -1], [older, 1]]) {
    button.addEventListener("click", async () => {
      await busy(button, "Loading…", () => load(index + step));
      sync();
      button.focus();
    });
  }

  main.replaceChildren(
    heading("Usage"),
    el("section", { class: "panel", "aria-labelledby": "chart-heading" },
      el("h2", { id: "chart-heading" }, "Spend per day (UTC, last 14 days)"),
      spendChart(usage.days),
      spendTable(usage.days)),
    report.section,
    el("section", { class: "panel", "aria-labelledby": "ledger-title" },
      el("h2", { id: "ledger-title" }, "Ledger"),
      el("p", { class: "help" }, "Every purchase, grant, refund and request that moved your balance, newest first."),
      scrollRegion("Ledger",
        el("table", { id: "ledger-table", class: "stack-narrow" },
          el("caption", { class: "sr-only" }, "Ledger entries, newest first"),
          el("thead", {}, el("tr", {}, ...["When", "Type", "Env", "Details", "Amount"].map((h, i) => el("th", { scope: "col", class: i === 4 ? "num" : undefined }, h)))),
          body)),
      el("nav", { class: "actions", "aria-label": "Ledger pages" }, newer, older, position)),
  );
  await Promise.all([load(0), report.load()]);
  sync();
}
