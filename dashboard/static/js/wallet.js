// The browser wallet (EIP-1193): accounts, personal_sign, and the two messages Pryv asks to sign.
import { ApiFailure } from "./http.js";

function provider() {
  const injected = window.ethereum;
  if (!injected || typeof injected.request !== "function") {
    throw new ApiFailure(0, "no_wallet", "No Ethereum wallet found in this browser. Install a wallet extension (EIP-1193) and reload.");
  }
  return injected;
}

function walletFailure(error) {
  if (error instanceof ApiFailure) return error;
  if (error && error.code === 4001) {
    return new ApiFailure(0, "user_rejected", "You declined the request in your wallet. Nothing was changed.");
  }
  const detail = (error && error.message) || String(error);
  return new ApiFailure(0, "wallet_error", `The wallet reported an error: ${detail}`);
}

export async function requestAccount() {
  let accounts;
  try {
    accounts = await provider().request({ method: "eth_requestAccounts" });
  } catch (error) {
    throw walletFailure(error);
  }
  if (!Array.isArray(accounts) || accounts.length === 0) {
    throw new ApiFailure(0, "no_account", "The wallet shared no account.");
  }
  return String(accounts[0]);
}

function utf8Hex(text) {
  const bytes = new TextEncoder().encode(text);
  return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// EIP-191 personal_sign over the exact text (sent hex-encoded, as wallets expect).
export async function signText(address, text) {
  try {
    const signature = await provider().request({ method: "personal_sign", params: [utf8Hex(text), address] });
    return String(signature);
  } catch (error) {
    throw walletFailure(error);
  }
}

function randomNonce() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// EIP-4361 (Sign-In with Ethereum), exactly the grammar dashboard/siwe.py parses.
export function siweMessage({ domain, address, statement, uri, chainId, nonce, issuedAt, expirationTime }) {
  return [
    `${domain} wants you to sign in with your Ethereum account:`,
    address,
    "",
    statement,
    "",
    `URI: ${uri}`,
    "Version: 1",
    `Chain ID: ${chainId}`,
    `Nonce: ${nonce}`,
    `Issued At: ${issuedAt}`,
    `Expiration Time: ${expirationTime}`,
  ].join("\n");
}

// The management API's message (domain/wallet_messages.py), fresh nonce and timestamp each time.
export function managementMessage(action, keyId = "") {
  const ts = new Date().toISOString();
  return `Pryv API key mgmt | action=${action} | keyId=${keyId} | nonce=${randomNonce()} | ts=${ts}`;
}

// Ask the wallet to sign one destructive action for the signed-in wallet.
export async function signAction(session, action, keyId = "") {
  const message = managementMessage(action, keyId);
  const signature = await signText(session.wallet, message);
  return { walletAddress: session.wallet, message, signature };
}

export function onAccountsChanged(handler) {
  const injected = window.ethereum;
  if (injected && typeof injected.on === "function") injected.on("accountsChanged", handler);
}
