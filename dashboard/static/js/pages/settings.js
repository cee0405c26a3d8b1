// Settings: the account's privacy defaults and consent, saved with a signed action=settings.
import { api } from "../http.js";
import { announce, busy, el, field, heading } from "../ui.js";
import { signAction } from "../wallet.js";

const MODE_HELP = {
  redact: "Replace each finding with its type, e.g. <EMAIL_ADDRESS>.",
  pseudonymize: "Replace findings with stable placeholders and restore them in the answer.",
  off: "Send prompts unchanged (no PII redaction).",
};

function threshold(id, value) {
  return el("input", { id, name: id, type: "number", min: "0", max: "1", step: "0.05", value: String(value), required: true });
}

function checkbox(id, label, checked, attrs = {}) {
  return el("div", { class: "choice" },
    el("input", { type: "checkbox", id, name: id, checked, ...attrs }),
    el("label", { for: id }, label));
}

export async function render(main, state) {
  const [current, options] = await Promise.all([api("/app/api/settings"), api("/app/api/privacy-options")]);
  const privacy = current.privacy || {};
  const config = privacy.piiConfig || options.piiConfigDefaults;
  const chosen = new Set(privacy.piiEntities || options.defaultEntities);
  const usesDefault = !privacy.piiEntities;

  const modes = el("fieldset", { id: "privacy-mode" }, el("legend", {}, "Privacy mode"),
    ...options.modes.map((mode) => el("div", { class: "choice" },
      el("input", { type: "radio", id: `mode-${mode}`, name: "mode", value: mode, checked: (privacy.mode || "redact") === mode, "aria-describedby": `mode-${mode}-help` }),
      el("label", { for: `mode-${mode}` }, mode),
      el("span", { class: "help", id: `mode-${mode}-help` }, `— ${MODE_HELP[mode] || ""}`))));

  const entityBoxes = options.entityTypes.map((type) =>
    checkbox(`entity-${type}`, type, chosen.has(type), { "data-entity": type, disabled: usesDefault }));
  const optIn = options.entityTypes.filter((t) => !options.defaultEntities.includes(t));
  const useDefault = checkbox("entities-default", `Use Pryv's default types (all but ${optIn.join(", ")})`, usesDefault);
  const entities = el("fieldset", { id: "pii-entities" }, el("legend", {}, "PII types to remove"),
    useDefault, el("div", { class: "checks" }, entityBoxes));
  useDefault.querySelector("input").addEventListener("change", (event) => {
    for (const box of entities.querySelectorAll("input[data-entity]")) {
      box.disabled = event.target.checked;
      if (event.target.checked) box.checked = options.defaultEntities.includes(box.dataset.entity);
    }
  });

  const blur = el("select", { id: "face-blur", name: "face-blur" },
    ...options.faceBlur.map((b) => el("option", { value: b, selected: config.image.faces.blur === b }, b)));
  const pdfPages = el("input", { id: "pdf-pages", name: "pdf-pages", type: "number", min: "1", max: "500", step: "1", value: config.pdf.pages ?? "" });
  const detection = el("fieldset", { id: "pii-config" }, el("legend", {}, "Detection"),
    el("div", { class: "row" },
      field("Text threshold", threshold("text-threshold", config.text.threshold), "0–1; lower finds more (0.35 default)."),
      field("Image threshold", threshold("image-threshold", config.image.threshold)),
      field("PDF threshold", threshold("pdf-threshold", config.pdf.threshold)),
      field("PDF pages", pdfPages, "Only the first N pages; empty: all."),
      field("Face blur", blur)),
    checkbox("image-ocr", "Read text in images (OCR) and black out findings", config.image.ocr));

  const consent = el("fieldset", { id: "consent" }, el("legend", {}, "Consent"),
    checkbox("consent-analytics", "Product analytics", Boolean(current.consent.analytics)),
    checkbox("consent-marketing", "Marketing e-mails", Boolean(current.consent.marketing)),
    el("p", { class: "help" }, "Pryv stores no prompts or answers, whatever these say."));

  const alerts = el("fieldset", { id: "alerts" }, el("legend", {}, "Alerts"),
    field("Warn when live credit is below (USD)",
      el("input", { id: "low-balance-usd", name: "low-balance-usd", type: "text", inputmode: "decimal", pattern: "^[0-9]+(\\.[0-9]{1,6})?$", autocomplete: "off", value: (current.alerts && current.alerts.lowBalanceUsd) ?? "" }),
      "Empty: no warning. The dashboard shows a banner on every page while it is below."),
    field("Webhook URL",
      el("input", { id: "alert-webhook-url", name: "alert-webhook-url", type: "url", autocomplete: "off", placeholder: "https://example.com/pryv-hook", value: (current.alerts && current.alerts.webhookUrl) ?? "" }),
      "Optional: a signed balance.low event is POSTed here each time credit falls below the threshold."),
    current.alerts && current.alerts.webhookSecret
      ? el("p", { class: "help" }, "Signing secret (Pryv-Signature header): ", el("code", { id: "alert-webhook-secret" }, current.alerts.webhookSecret))
      : null);

  const save = el("button", { type: "submit", id: "save-settings" }, "Save settings");
  const form = el("form", { id: "settings-form" }, modes, entities, detection, consent, alerts,
    el("div", { class: "actions" }, save, el("span", { class: "help" }, "Your wallet will ask you to sign action=settings.")));

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    busy(save, "Waiting for your signature…", async () => {
      const value = (id) => form.elements[id].value;
      const pages = value("pdf-pages").trim();
      const body = {
        privacy: {
          mode: form.elements.mode.value,
          piiConfig: {
            text: { threshold: Number(value("text-threshold")) },
            image: { ocr: form.elements["image-ocr"].checked, threshold: Number(value("image-threshold")), faces: { blur: value("face-blur") } },
            pdf: { threshold: Number(value("pdf-threshold")), ...(pages ? { pages: Number(pages) } : {}) },
          },
        },
        consent: {
          analytics: form.elements["consent-analytics"].checked,
          marketing: form.elements["consent-marketing"].checked,
        },
        alerts: {
          lowBalanceUsd: value("low-balance-usd").trim() || null,
          webhookUrl: value("alert-webhook-url").trim() || null,
        },
      };
      if (!form.elements["entities-default"].checked) {
        body.privacy.piiEntities = Array.from(entities.querySelectorAll("input[data-entity]:checked"), (b) => b.dataset.entity);
      }
      const signed = await signAction(state.session, "settings");
      await api("/app/api/settings", { method: "PUT", body: { ...body, ...signed } });
      announce("Settings saved. New requests use them within 5 seconds.");
    });
  });

  main.replaceChildren(heading("Settings"),
    el("p", { class: "muted" }, "Defaults for every request of your account that does not set its own privacy controls."),
    el("section", { class: "panel" }, form));
}
