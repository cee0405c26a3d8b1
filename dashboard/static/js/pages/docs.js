// Docs: quickstart with this deployment's API base URL, endpoints, errors and PII controls,
// all from /app/api/docs (generated from the API's own routes, code and schemas).
import { api } from "../http.js";
import { el, heading } from "../ui.js";

function pre(text, id) {
  return el("pre", { id, tabindex: "0" }, el("code", {}, text));
}

function quickstart(base, model) {
  const curl = `curl ${base}/v1/chat/completions \\
  -H "Authorization: Bearer $PRYV_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "${model}", "messages": [{"role": "user", "content": "Hello Pryv!"}]}'`;
  const js = `const res = await fetch("${base}/v1/chat/completions", {
  method: "POST",
  headers: { Authorization: \`Bearer \${process.env.PRYV_API_KEY}\`, "Content-Type": "application/json" },
  body: JSON.stringify({ model: "${model}", messages: [{ role: "user", content: "Hello Pryv!" }] }),
});
const data = await res.json();
console.log(data.choices[0].message.content);`;
  const python = `from openai import OpenAI
client = OpenAI(api_key="pryv_test_…", base_url="${base}/v1")
print(client.chat.completions.create(model="${model}", messages=[{"role": "user", "content": "Hello Pryv!"}]))`;
  return el("section", { class: "panel", "aria-labelledby": "qs-title" },
    el("h2", { id: "qs-title" }, "Quickstart"),
    el("p", {}, "API base URL: ", el("code", { id: "api-base-url" }, base)),
    el("ol", { class: "steps" },
      el("li", {}, "Sign in with your wallet."),
      el("li", {}, "Add credits in ", el("a", { href: "#/credits" }, "Credits"), "."),
      el("li", {}, "Create an API key in ", el("a", { href: "#/keys" }, "Keys"), ": it is shown once."),
      el("li", {}, "Call the API with ", el("code", {}, "Authorization: Bearer pryv_…"), "; handle 401, 402 and 429.")),
    el("h3", {}, "curl"), pre(curl, "qs-curl"),
    el("h3", {}, "JavaScript"), pre(js, "qs-js"),
    el("h3", {}, "Python (OpenAI SDK)"), pre(python, "qs-python"));
}

function endpoints(doc) {
  return el("section", { class: "panel", "aria-labelledby": "ep-title" },
    el("h2", { id: "ep-title" }, "Endpoints"),
    el("p", { class: "help" }, "Wallet routes take walletAddress, message and signature; the message is ",
      el("code", {}, doc.walletMessage.format), `, signed with personal_sign, ts within ${doc.walletMessage.timestampWindowSeconds} s, each nonce once.`),
    el("div", { class: "table-wrap" },
      el("table", { id: "endpoints-table" },
        el("caption", { class: "sr-only" }, "API endpoints"),
        el("thead", {}, el("tr", {}, ...["Method", "Path", "Auth", "What it does"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...doc.endpoints.map((e) => el("tr", {},
          el("td", {}, el("code", {}, e.method)),
          el("td", {}, el("code", {}, `${doc.apiBaseUrl}${e.path}`)),
          el("td", {}, e.auth, e.walletAction ? el("span", { class: "help" }, ` (action=${e.walletAction})`) : null),
          el("td", {}, e.summary)))))));
}

function errors(doc) {
  return el("section", { class: "panel", "aria-labelledby": "err-title" },
    el("h2", { id: "err-title" }, "Errors"),
    el("p", { class: "help" }, "Every error body is ", el("code", {}, '{"error": {"message", "type", "code", "param"}}'),
      ". 402: add credits. 429: wait for Retry-After. 5xx: retry with backoff (never retry key creation or checkout automatically)."),
    el("div", { class: "table-wrap" },
      el("table", { id: "errors-table" },
        el("caption", { class: "sr-only" }, "Error codes"),
        el("thead", {}, el("tr", {}, ...["Status", "Code", "Type", "Message"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...doc.errors.map((e) => el("tr", {},
          el("td", {}, String(e.status)), el("td", {}, el("code", {}, e.code)),
          el("td", {}, e.type), el("td", {}, e.message || "—")))))));
}

function privacy(doc) {
  const p = doc.privacy;
  const aliases = Object.entries(p.aliases).map(([alias, canonical]) => `${alias} → ${canonical}`).join(", ");
  return el("section", { class: "panel", "aria-labelledby": "pii-title" },
    el("h2", { id: "pii-title" }, "PII controls"),
    el("p", {}, "Requests are redacted before they leave Pryv. Per request, set ", el("code", {}, "privacyMode"),
      ` (${p.modes.join(", ")}), `, el("code", {}, "piiEntities"), ", ", el("code", {}, "piiConfig"), " and ",
      el("code", {}, "skip_pii_redaction"), "; your ", el("a", { href: "#/settings" }, "settings"), " are the defaults."),
    el("h3", {}, "Entity types"),
    el("ul", { id: "pii-types", class: "checks" }, ...p.entityTypes.map((t) => el("li", {}, el("code", {}, t),
      p.defaultEntities.includes(t) ? "" : el("span", { class: "help" }, " (opt-in)")))),
    el("h3", {}, "piiConfig defaults"), pre(JSON.stringify(p.piiConfigDefaults, null, 2), "pii-config"),
    el("h3", {}, "Examples"),
    pre(`Redact emails only:      "piiEntities": ["EMAIL_ADDRESS"]
Skip image redaction:    "skip_pii_redaction": {"image": true}
Blur faces strongly:     "piiConfig": {"image": {"faces": {"blur": "strong"}}}`, "pii-examples"),
    el("p", { class: "help" }, `Also accepted: ${aliases}.`));
}

export async function render(main) {
  const doc = await api("/app/api/docs");
  main.replaceChildren(heading("Docs"), quickstart(doc.apiBaseUrl, doc.exampleModel), endpoints(doc), errors(doc), privacy(doc));
}
