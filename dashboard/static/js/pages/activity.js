// Activity: what was done on the account — keys, settings, money — and on whose authority.
import { api } from "../http.js";
import { busy, el, heading, usd, when, scrollRegion } from "../ui.js";

const PAGE = 20;

function micros(value) {
  return usd((Number(value) / 1e6).toFixed(6));
}

function describe(entry) {
  const key = entry.keyId ? el("code", {}, entry.keyId) : null;
  switch (entry.action) {
    case "key.created": return ["Created key ", el("strong", {}, entry.name), " (", entry.env, ") ", key];
    case "key.updated": return ["Changed the terms of key ", key, entry.name ? ` “${entry.name}”` : ""];
    case "key.rolled": return ["Rolled key ", key, `; the previous secret works until ${when(entry.previousExpiresAt)}`];
    case "key.revoked": return ["Revoked key ", key, entry.reason ? ` (${entry.reason})` : ""];
    case "settings.changed": return [`Changed settings: ${(entry.sections || []).join(", ")}`];
    case "mcp.connected": return ["Connected MCP client ", el("strong", {}, entry.client)];
    case "credits.purchased": return [`Bought ${micros(entry.creditsMicros)} of credit`];
    case "credits.granted": return [`Received ${micros(entry.amountMicros)} of ${entry.env} credit (${entry.reason})`];
    case "payment.refunded": return [`Refunded ${micros(entry.usdMicros)}`];
    case "payment.disputed": return [`Disputed payment of ${micros(entry.usdMicros)}`];
    case "dispute.won": return [`Won a dispute: ${micros(entry.usdMicros)} back`];
    default: return [entry.action];
  }
}

function entryRow(entry) {
  return el("tr", { "data-activity": entry.action },
    el("td", {}, when(entry.createdAt)),
    el("td", {}, ...describe(entry)),
    el("td", {}, entry.by || "—"));
}

export async function render(main) {
  const body = el("tbody", { id: "activity-body" });
  const more = el("button", { type: "button", class: "secondary", id: "activity-more", hidden: true }, "Load more");
  let cursor = null;
  async function load(reset) {
    if (reset) cursor = null;
    const page = await api(`/app/api/activity?limit=${PAGE}${cursor ? `&cursor=${cursor}` : ""}`);
    if (reset) body.replaceChildren();
    for (const entry of page.data) body.append(entryRow(entry));
    if (body.children.length === 0) body.append(el("tr", {}, el("td", { colspan: "3", class: "muted" }, "Nothing yet.")));
    cursor = page.nextCursor;
    more.hidden = !page.hasMore;
  }
  more.addEventListener("click", () => busy(more, "Loading…", () => load(false)));
  main.replaceChildren(
    heading("Activity"),
    el("p", { class: "muted" }, "Every change to your keys, settings and credit, newest first, with who allowed it: your wallet's signature, an operator, or the payment provider."),
    el("section", { class: "panel" },
      scrollRegion("Account activity",
        el("table", { id: "activity-table" },
          el("caption", { class: "sr-only" }, "Account activity, newest first"),
          el("thead", {}, el("tr", {}, ...["When", "What", "By"].map((h) => el("th", { scope: "col" }, h)))),
          body)),
      el("div", { class: "actions" }, more)),
  );
  await load(true);
}
