// Playground: pick a model, type a prompt, see exactly what the upstream would receive (the
// PII preview) and the answer with its cost. It runs on a key that expires in a day, created
// with your wallet's signature; its secret lives in this page's memory only.
import { api } from "../http.js";
import { announce, busy, el, field, heading, usd } from "../ui.js";
import { signAction } from "../wallet.js";

let session = null; // { key, env } for as long as the page lives

function perMillion(tokens, price) {
  return (tokens * Number(price)) / 1e6;
}

export async function render(main, state) {
  const catalog = (await api("/app/api/models")).data;
  const env = catalog.some((m) => !m.test_only) ? "live" : "test";
  const usable = catalog.filter((m) => m.test_only === (env === "test"));
  const model = el("select", { id: "pg-model", name: "model" }, ...usable.map((m) => el("option", { value: m.id }, m.id)));
  const prompt = el("textarea", { id: "pg-prompt", name: "prompt", rows: "5", required: true },
    "Hi, I'm Jane Doe (jane.doe@example.com). Summarise our meeting notes.");
  const start = el("button", { type: "button", id: "pg-start" }, `Create a playground key (${env}, expires in 1 day)`);
  const preview = el("button", { type: "button", id: "pg-preview", class: "secondary", disabled: !session }, "Preview what the model receives");
  const send = el("button", { type: "submit", id: "pg-send", disabled: !session }, "Send");
  const keyNote = el("p", { class: "help", id: "pg-key-note" }, session ? `Using ${session.prefix}…` : "No playground key yet.");
  const sent = el("pre", { id: "pg-sent", tabindex: "0" }, el("code", {}, "—"));
  const answer = el("pre", { id: "pg-answer", tabindex: "0" }, el("code", {}, "—"));
  const cost = el("p", { class: "help", id: "pg-cost", "aria-live": "polite" });

  function ready() {
    preview.disabled = send.disabled = !session;
    keyNote.textContent = session ? `Using ${session.prefix}… (expires in a day; revoke it in Keys any time).` : "No playground key yet.";
  }
  start.addEventListener("click", () => busy(start, "Waiting for your signature…", async () => {
    const signed = await signAction(state.session, "create");
    const created = await api("/app/api/keys", {
      method: "POST", body: { name: "Playground", env, expiresInDays: 1, ...signed } });
    session = { key: created.key, prefix: created.prefix };
    ready();
    announce("Playground key created.");
  }));
  preview.addEventListener("click", () => busy(preview, "Previewing…", async () => {
    const shown = await api("/app/api/playground/preview", { method: "POST", body: { key: session.key, text: prompt.value } });
    sent.firstChild.textContent = shown.text ? shown.text.redacted : prompt.value;
    cost.textContent = `Preview: ${usd(shown.costUsd)}.`;
  }));
  const form = el("form", { id: "pg-form" },
    el("div", { class: "row" }, field("Model", model)),
    field("Prompt", prompt, "Redacted before it leaves Pryv, with your privacy settings."),
    el("div", { class: "actions" }, preview, send));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(send, "Sending…", async () => {
      const spec = usable.find((m) => m.id === model.value);
      const done = await api("/app/api/playground/chat", {
        method: "POST",
        body: { key: session.key, model: model.value, messages: [{ role: "user", content: prompt.value }] },
      });
      answer.firstChild.textContent = done.choices[0].message.content;
      const u = done.usage || { prompt_tokens: 0, completion_tokens: 0 };
      const spent = perMillion(u.prompt_tokens, spec.pricing.input_per_million_usd) + perMillion(u.completion_tokens, spec.pricing.output_per_million_usd);
      cost.textContent = `${u.prompt_tokens} tokens in, ${u.completion_tokens} out: ${usd(spent.toFixed(6))} (list price).`;
    });
  });
  main.replaceChildren(
    heading("Playground"),
    el("p", { class: "muted" }, "Try a model on your own credit. The preview shows the prompt exactly as the upstream model would receive it."),
    el("section", { class: "panel" }, el("div", { class: "actions" }, start), keyNote, form),
    el("section", { class: "panel", "aria-labelledby": "pg-sent-title" }, el("h2", { id: "pg-sent-title" }, "What the model receives"), sent),
    el("section", { class: "panel", "aria-labelledby": "pg-answer-title" }, el("h2", { id: "pg-answer-title" }, "Answer"), answer, cost));
  ready();
}
