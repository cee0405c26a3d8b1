// Credits: live and test balances, credit packs and a custom amount through Stripe Checkout.
import { api } from "../http.js";
import { announce, busy, el, field, heading, usd } from "../ui.js";
import { signAction } from "../wallet.js";

function balanceCard(title, env, b) {
  return el("section", { class: "panel", "aria-labelledby": `bal-${env}`, "data-testid": `balance-${env}` },
    el("h2", { id: `bal-${env}` }, title),
    el("p", { class: "figure", "data-testid": `available-${env}` }, usd(b.availableUsd)),
    el("p", { class: "muted" }, "available now"),
    el("dl", { class: "facts" },
      el("dt", {}, "Balance"), el("dd", {}, usd(b.balanceUsd)),
      el("dt", {}, "Held by requests in flight"), el("dd", {}, usd((b.heldMicros / 1e6).toFixed(6))),
      el("dt", {}, "Credited in total"), el("dd", {}, usd((b.creditedMicros / 1e6).toFixed(6)))));
}

async function startCheckout(state, button, choice) {
  await busy(button, "Waiting for your signature…", async () => {
    const signed = await signAction(state.session, "checkout");
    const session = await api("/app/api/checkout", { method: "POST", body: { ...choice, ...signed } });
    announce("Redirecting to Stripe Checkout…");
    window.location.assign(session.url);
  });
}

const CHECKOUT_TEXT = {
  credited: (amount) => `Payment received: $${amount} of credit is on your account.`,
  paid: (amount) => `Payment received: your $${amount} is confirmed; the credit appears here within moments.`,
  processing: (amount) => `Your $${amount} payment is still processing; the credit appears here once Stripe confirms it.`,
  unknown: () => "We could not find this checkout. If you paid, the credit appears here once Stripe confirms the payment.",
};

// Back from Stripe (#/credits?checkout=success&session=cs_…): say where the payment stands and
// follow it until the credit is in, then show the new balance.
function checkoutReturn(refreshBalances) {
  const query = new URLSearchParams(window.location.hash.split("?")[1] || "");
  const outcome = query.get("checkout");
  if (!outcome) return null;
  const box = el("p", { class: "notice", id: "checkout-status", role: "status" });
  if (outcome !== "success") {
    box.textContent = "Checkout canceled. Nothing was charged.";
    box.dataset.state = "canceled";
    return box;
  }
  const session = query.get("session") || "";
  const show = (status) => {
    box.dataset.state = status.state;
    box.textContent = CHECKOUT_TEXT[status.state](status.usdAmount);
  };
  box.textContent = "Checking your payment…";
  (async () => {
    for (let attempt = 0; attempt < 60; attempt += 1) {
      const status = session ? await api(`/app/api/checkout/${encodeURIComponent(session)}`) : { state: "unknown" };
      if (attempt > 0 && !box.isConnected) return; // the user went elsewhere
      show(status);
      if (status.state === "credited") { await refreshBalances(); return; }
      if (status.state === "unknown") return;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  })().catch(() => { box.textContent = "Your payment's state could not be read; refresh to see the credit."; });
  return box;
}

export async function render(main, state) {
  const [balance, packs] = await Promise.all([api("/app/api/balance"), api("/app/api/credit-packs")]);
  const balances = el("div", { class: "cards", id: "balances" },
    balanceCard("Live credit", "live", balance),
    balanceCard("Test credit", "test", balance.test));
  const refreshBalances = async () => {
    const fresh = await api("/app/api/balance");
    balances.replaceChildren(balanceCard("Live credit", "live", fresh), balanceCard("Test credit", "test", fresh.test));
  };
  const refresh = el("button", { type: "button", class: "secondary", id: "refresh-balance" }, "Refresh");
  refresh.addEventListener("click", () => busy(refresh, "Refreshing…", async () => {
    await refreshBalances();
    announce("Balance updated.");
  }));

  const available = packs.checkoutAvailable;
  const notice = available ? null : el("p", { class: "notice", id: "billing-unavailable" },
    el("strong", {}, "Card payments are not configured on this deployment "), el("code", {}, "billing_not_configured"),
    ". Checkout answers 503 until an operator sets PRYV_STRIPE_SECRET_KEY; an operator can grant credit with ",
    el("code", {}, "pryv credits grant"), ".");

  const packButtons = packs.data.map((pack) => {
    const button = el("button", { type: "button", class: "pack", "data-pack": pack.id, disabled: !available },
      el("strong", {}, pack.label || `$${pack.usd}`),
      el("span", {}, `Pay ${usd(pack.usd)} · get ${usd(pack.credits)} credit`));
    button.addEventListener("click", () => startCheckout(state, button, { packId: pack.id }));
    return button;
  });

  const { minUsd, maxUsd } = packs.customAmount;
  const amount = el("input", { id: "custom-usd", name: "usdAmount", type: "number", min: minUsd, max: maxUsd, step: "0.01", required: true, inputmode: "decimal" });
  const buy = el("button", { type: "submit", id: "custom-buy", disabled: !available }, "Buy credit");
  const custom = el("form", { id: "custom-form" },
    field("Amount in USD", amount, `Between ${usd(minUsd)} and ${usd(maxUsd)}, credited 1:1.`),
    el("div", { class: "actions" }, buy));
  custom.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!custom.reportValidity()) return;
    startCheckout(state, buy, { usdAmount: Number(amount.value).toFixed(2) });
  });

  main.replaceChildren(
    heading("Credits"),
    ...[checkoutReturn(refreshBalances)].filter(Boolean),
    el("div", { class: "actions" }, refresh, el("span", { class: "help" }, "Payments appear once Stripe confirms them.")),
    balances,
    el("section", { class: "panel", "aria-labelledby": "buy-title" },
      el("h2", { id: "buy-title" }, "Add credit"),
      notice,
      el("h3", {}, "Credit packs"),
      packButtons.length ? el("div", { class: "packs" }, packButtons) : el("p", { class: "muted" }, "No packs on sale."),
      el("h3", {}, "Custom amount"),
      custom,
      el("p", { class: "help" }, "Checkout happens on Stripe, which then returns you to this page.")),
  );
}
