// Usage: spend per day (SVG chart) and the ledger with cursor pagination.
import { api } from "../http.js";
import { busy, el, heading, usd, when } from "../ui.js";
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
    el("td", {}, when(entry.createdAt)),
    el("td", {}, entry.type),
    el("td", {}, el("span", { class: `badge ${entry.env}` }, entry.env)),
    el("td", {}, ...describe(entry)),
    el("td", { class: `num ${negative ? "amount-neg" : "amount-pos"}` }, usd(entry.amountUsd)));
}

export async function render(main) {
  const usage = await api("/app/api/usage?days=14");
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
    el("section", { class: "panel", "aria-labelledby": "ledger-title" },
      el("h2", { id: "ledger-title" }, "Ledger"),
      el("p", { class: "help" }, "Every purchase, grant, refund and request that moved your balance, newest first."),
      el("div", { class: "table-wrap" },
        el("table", { id: "ledger-table" },
          el("caption", { class: "sr-only" }, "Ledger entries, newest first"),
          el("thead", {}, el("tr", {}, ...["When", "Type", "Env", "Details", "Amount"].map((h, i) => el("th", { scope: "col", class: i === 4 ? "num" : undefined }, h)))),
          body)),
      el("nav", { class: "actions", "aria-label": "Ledger pages" }, newer, older, position)),
  );
  await load(0);
  sync();
}
