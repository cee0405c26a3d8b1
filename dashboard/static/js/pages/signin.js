// Sign in with Ethereum (EIP-4361): nonce from the server, message signed by the wallet.
import { api } from "../http.js";
import { busy, el } from "../ui.js";
import { requestAccount, signText, siweMessage } from "../wallet.js";
import { signedIn } from "../main.js";

export async function signIn() {
  const account = await requestAccount();
  const issued = await api(`/auth/nonce?address=${encodeURIComponent(account)}`);
  const now = new Date();
  const message = siweMessage({
    domain: window.location.host,
    address: issued.address,
    statement: issued.statement,
    uri: `${window.location.origin}/`,
    chainId: issued.chainId,
    nonce: issued.nonce,
    issuedAt: now.toISOString(),
    expirationTime: new Date(now.getTime() + issued.maxLifetimeSeconds * 1000).toISOString(),
  });
  const signature = await signText(account, message);
  return api("/auth/login", { method: "POST", body: { message, signature } });
}

export async function render(main, state, { next } = {}) {
  const button = el("button", { type: "button", id: "signin-button" }, "Sign in with your wallet");
  button.addEventListener("click", () =>
    busy(button, "Waiting for your wallet…", async () => {
      const session = await signIn();
      signedIn(session, next);
    }),
  );
  main.replaceChildren(
    el(
      "section",
      { class: "hero panel", "aria-labelledby": "signin-title" },
      el("h1", { id: "signin-title", tabindex: "-1" }, "Sign in to Pryv"),
      el("p", {}, "Your wallet is your account: it owns your API keys and credits. Signing in asks your wallet to sign a one-time Sign-In with Ethereum message; it costs nothing and sends no transaction."),
      el(
        "ol",
        { class: "steps" },
        el("li", {}, "Connect your wallet and approve this site."),
        el("li", {}, "Sign the message. The session lasts 30 minutes."),
        el("li", {}, "Creating or revoking keys, buying credits and changing settings each ask for a fresh signature."),
      ),
      el("div", { class: "actions" }, button),
    ),
  );
}
