// Docs: quickstart with this deployment's API base URL, endpoints, errors and PII controls,
// all from /app/api/docs (generated from the API's own routes, code and schemas).
import { api } from "../http.js";
import { announce, el, heading, showError, scrollRegion } from "../ui.js";

// A code block with a Copy button (examples are meant to run exactly as printed).
function pre(text, id) {
  const block = el("pre", { id, tabindex: "0" }, el("code", {}, text));
  const copy = el("button", { type: "button", class: "secondary copy", "data-copy": id, "aria-label": `Copy ${id}` }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      announce("Copied to the clipboard.");
    } catch {
      showError({ code: "clipboard_unavailable", message: "Copying failed; select the text and copy it by hand." });
    }
  });
  return el("div", { class: "code-block" }, copy, block);
}

// In-page links that scroll (the hash is the router's, so no #anchors).
function contents(sections) {
  return el("nav", { class: "panel toc", "aria-label": "On this page", id: "docs-toc" },
    el("h2", {}, "On this page"),
    el("ol", {}, ...sections.map(([id, label]) => {
      const link = el("a", { href: "#/docs", "data-target": id }, label);
      link.addEventListener("click", (event) => {
        event.preventDefault();
        const target = document.getElementById(id);
        target.scrollIntoView({ block: "start" });
        target.setAttribute("tabindex", "-1");
        target.focus({ preventScroll: true });
      });
      return el("li", {}, link);
    })));
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
  const python = `import os

from openai import OpenAI

client = OpenAI(api_key=os.environ["PRYV_API_KEY"], base_url="${base}/v1")
answer = client.chat.completions.create(
    model="${model}", messages=[{"role": "user", "content": "Hello Pryv!"}]
)
print(answer.choices[0].message.content)`;
  const streamingCurl = `curl -N ${base}/v1/chat/completions \\
  -H "Authorization: Bearer $PRYV_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "${model}", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Hello Pryv!"}]}'`;
  const streamingPython = `import os

from openai import OpenAI

client = OpenAI(api_key=os.environ["PRYV_API_KEY"], base_url="${base}/v1")
stream = client.chat.completions.create(
    model="${model}",
    messages=[{"role": "user", "content": "Hello Pryv!"}],
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
    if chunk.usage:  # the last chunk: what the request was billed on
        print(f"\\n{chunk.usage.prompt_tokens} in, {chunk.usage.completion_tokens} out")`;
  const billing = `import os
import time

from openai import APIStatusError, OpenAI

client = OpenAI(api_key=os.environ["PRYV_API_KEY"], base_url="${base}/v1", max_retries=0)
for attempt in range(3):
    try:
        answer = client.chat.completions.create(
            model="${model}", messages=[{"role": "user", "content": "Hello Pryv!"}]
        )
        print(answer.choices[0].message.content)
        break
    except APIStatusError as error:
        code = error.body.get("code") if isinstance(error.body, dict) else None
        if error.status_code == 402:  # insufficient_credits or budget_exceeded: top up in Credits
            raise SystemExit(f"out of credit ({code}): add credits in the dashboard")
        if error.status_code == 429:  # wait as long as Retry-After says
            time.sleep(int(error.response.headers.get("retry-after", "1")))
            continue
        raise`;
  const section = el("section", { class: "panel", "aria-labelledby": "qs-title" },
    el("h2", { id: "qs-title" }, "Quickstart"),
    el("p", {}, "API base URL: ", el("code", { id: "api-base-url" }, base)),
    el("ol", { class: "steps" },
      el("li", {}, "Sign in with your wallet."),
      el("li", {}, "Add credits in ", el("a", { href: "#/credits" }, "Credits"), " (a new wallet's first key may come with test credit)."),
      el("li", {}, "Create an API key in ", el("a", { href: "#/keys" }, "Keys"), ": it is shown once."),
      el("li", {}, "Call the API with ", el("code", {}, "Authorization: Bearer pryv_..."), "; handle 401, 402 and 429.")),
    el("p", { class: "help" }, "The examples read your key from ", el("code", {}, "PRYV_API_KEY"), ": ",
      el("code", {}, "export PRYV_API_KEY=pryv_test_..."), " first."),
    el("h3", {}, "curl"), pre(curl, "qs-curl"),
    el("h3", {}, "JavaScript"), pre(js, "qs-js"),
    el("h3", {}, "Python (OpenAI SDK)"), pre(python, "qs-python"));
  const streaming = el("section", { class: "panel", "aria-labelledby": "stream-title" },
    el("h2", { id: "stream-title" }, "Streaming"),
    el("p", {}, "Server-sent events, as OpenAI sends them. With ", el("code", {}, "stream_options.include_usage"),
      " the last chunk carries the usage the request is billed on; a stream you stop early is billed for what was sent."),
    el("h3", {}, "curl"), pre(streamingCurl, "stream-curl"),
    el("h3", {}, "Python (OpenAI SDK)"), pre(streamingPython, "stream-python"));
  const billingSection = el("section", { class: "panel", "aria-labelledby": "billing-title" },
    el("h2", { id: "billing-title" }, "Credits, 402 and 429"),
    el("p", {}, "Every request holds its worst-case cost from your prepaid balance and settles the actual cost. 402 ",
      el("code", {}, "insufficient_credits"), " or ", el("code", {}, "budget_exceeded"), ": add credits or raise the key's budget. 429: wait for ",
      el("code", {}, "Retry-After"), "; the ", el("code", {}, "X-RateLimit-*"), " headers say how much is left."),
    pre(billing, "billing-python"));
  return { section, streaming, billing: billingSection };
}

function endpoints(doc) {
  return el("section", { class: "panel", "aria-labelledby": "ep-title" },
    el("h2", { id: "ep-title" }, "Endpoints"),
    el("p", { class: "help" }, "Wallet routes take walletAddress, message and signature; the message is ",
      el("code", {}, doc.walletMessage.format), `, signed with personal_sign, ts within ${doc.walletMessage.timestampWindowSeconds} s, each nonce once.`),
    scrollRegion("API endpoints",
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
    scrollRegion("Error codes",
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
  const start = quickstart(doc.apiBaseUrl, doc.exampleModel);
  main.replaceChildren(
    heading("Docs"),
    contents([["qs-title", "Quickstart"], ["stream-title", "Streaming"], ["billing-title", "Credits, 402 and 429"], ["ep-title", "Endpoints"], ["err-title", "Errors"], ["pii-title", "PII controls"]]),
    start.section, start.streaming, start.billing, endpoints(doc), errors(doc), privacy(doc));
}
