// The single-page app: hash routes, the session, the header's account area.
import { api, ApiFailure } from "./http.js";
import { clearMessages, el, shortAddress, showError, announce } from "./ui.js";
import { onAccountsChanged } from "./wallet.js";
import * as signin from "./pages/signin.js";
import * as keys from "./pages/keys.js";
import * as credits from "./pages/credits.js";
import * as usage from "./pages/usage.js";
import * as activity from "./pages/activity.js";
import * as playground from "./pages/playground.js";
import * as models from "./pages/models.js";
import * as settings from "./pages/settings.js";
import * as docs from "./pages/docs.js";

const ROUTES = {
  keys: { page: keys, title: "Keys", private: true },
  credits: { page: credits, title: "Credits", private: true },
  usage: { page: usage, title: "Usage", private: true },
  activity: { page: activity, title: "Activity", private: true },
  playground: { page: playground, title: "Playground", private: true },
  models: { page: models, title: "Models", private: false },
  settings: { page: settings, title: "Settings", private: true },
  docs: { page: docs, title: "Docs", private: false },
  signin: { page: signin, title: "Sign in", private: false },
};

export const state = { session: null, config: null };

function routeName() {
  const name = window.location.hash.replace(/^#\/?/, "").split("?")[0];
  return ROUTES[name] ? name : state.session ? "keys" : "signin";
}

function renderAccount() {
  const area = document.getElementById("account");
  area.textContent = "";
  if (state.session) {
    area.append(
      el("span", { class: "muted" }, "Signed in as "),
      el("code", { title: state.session.wallet, "data-testid": "wallet" }, shortAddress(state.session.wallet)),
      el("button", { type: "button", class: "secondary", id: "signout", onclick: signOut }, "Sign out"),
    );
  } else {
    area.append(el("a", { class: "button", href: "#/signin", id: "signin-link" }, "Sign in"));
  }
}

function markNav(name) {
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === `#/${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

// The banner for live credit below the account's alert threshold (Settings → Alerts).
async function lowBalanceNotice() {
  const banner = document.getElementById("low-balance");
  const [settings, balance] = await Promise.all([api("/app/api/settings"), api("/app/api/balance")]);
  const threshold = settings.alerts && settings.alerts.lowBalanceUsd;
  const low = threshold !== null && threshold !== undefined && Number(balance.availableUsd) < Number(threshold);
  banner.hidden = !low;
  if (low) {
    banner.replaceChildren(
      el("strong", {}, "Low balance: "),
      `$${Number(balance.availableUsd).toFixed(2)} of live credit left, below your $${Number(threshold).toFixed(2)} alert. `,
      el("a", { href: "#/credits" }, "Add credits"), ".");
  }
}

export async function render() {
  const name = routeName();
  const route = ROUTES[name];
  const main = document.getElementById("main");
  delete main.dataset.rendered;
  markNav(name);
  document.title = `${route.title} · Pryv platform`;
  try {
    if (route.private && !state.session) await signin.render(main, state, { next: name });
    else {
      await route.page.render(main, state);
      if (route.private) lowBalanceNotice().catch(() => {}); // a notice, never a failure
    }
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 401 && state.session) {
      signedOut("Your session ended; sign in again.");
      return;
    }
    main.replaceChildren(el("h1", { tabindex: "-1" }, route.title), el("p", {}, "This page could not be loaded."));
    showError(error);
  }
  const title = main.querySelector("h1");
  if (title && document.activeElement !== document.body) title.focus();
  main.dataset.rendered = name; // what tests (and the accessibility scan) wait for
}

export function signedIn(session, next) {
  state.session = session;
  renderAccount();
  const target = `#/${next && next !== "signin" ? next : "keys"}`;
  if (window.location.hash === target) render();
  else window.location.hash = target;
}

export function signedOut(message) {
  state.session = null;
  renderAccount();
  if (message) announce(message);
  render();
}

async function signOut() {
  try {
    await api("/auth/logout", { method: "POST" });
  } catch (error) {
    showError(error);
  }
  signedOut("Signed out.");
}

async function start() {
  try {
    state.config = await api("/app/api/config");
  } catch (error) {
    showError(error);
  }
  try {
    state.session = await api("/auth/session");
  } catch {
    state.session = null;
  }
  renderAccount();
  onAccountsChanged((accounts) => {
    const current = (accounts && accounts[0] || "").toLowerCase();
    if (state.session && current && current !== state.session.wallet) {
      showError(new ApiFailure(0, "wallet_changed", "Your wallet switched accounts. Actions must be signed by the signed-in wallet; sign out and sign in again to use the other account."));
    }
  });
  window.addEventListener("hashchange", () => {
    clearMessages();
    render();
  });
  await render();
  document.body.dataset.ready = "true";
}

start();
