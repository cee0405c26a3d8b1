// Keys: create (secret shown once), list (prefix…last4 only), revoke with a confirmation dialog.
import { api } from "../http.js";
import { announce, busy, el, field, heading, showError, when, scrollRegion } from "../ui.js";
import { signAction } from "../wallet.js";

const PAGE = 20;

function numberInput(id, attrs = {}) {
  return el("input", { id, name: id, type: "number", inputmode: "numeric", min: "1", step: "1", ...attrs });
}

function optional(form, name, convert = (v) => v) {
  const value = form.elements[name].value.trim();
  return value === "" ? undefined : convert(value);
}

function modelOptions(select, catalog, env) {
  const usable = catalog.filter((m) => m.test_only === (env === "test"));
  select.replaceChildren(...usable.map((m) => el("option", { value: m.id }, m.id)));
  if (usable.length === 0) select.append(el("option", { disabled: true, value: "" }, `No ${env} models in the catalog yet`));
}

function createForm(state, catalog, onCreated) {
  const envChoice = (value, label, checked) =>
    el("div", { class: "choice" },
      el("input", { type: "radio", id: `env-${value}`, name: "env", value, checked }),
      el("label", { for: `env-${value}` }, label));
  // Default to the environment that has models (the embedded default has only test ones).
  const initial = catalog.some((m) => !m.test_only) || catalog.length === 0 ? "live" : "test";
  const models = el("select", { id: "key-models", name: "models", multiple: true });
  modelOptions(models, catalog, initial);
  const submit = el("button", { type: "submit", id: "create-key" }, "Create key");
  const form = el(
    "form",
    { id: "create-key-form", novalidate: false },
    el("div", { class: "row" },
      field("Name", el("input", { id: "key-name", name: "name", type: "text", required: true, maxlength: "100", value: "Secret key", autocomplete: "off" })),
      el("fieldset", {}, el("legend", {}, "Environment"),
        envChoice("live", "Live (spends live credit)", initial === "live"),
        envChoice("test", "Test (test credit and test models only)", initial === "test"))),
    field("Models", models, "None selected: every model of the key's environment. Ctrl/⌘-click selects several."),
    el("div", { class: "row" },
      field("Requests per minute", numberInput("key-rpm", { max: "1000000" }), "Empty: the platform default."),
      field("Tokens per minute", numberInput("key-tpm", { max: "1000000000" }), "Empty: the platform default."),
      field("Monthly budget (USD)", el("input", { id: "key-budget", name: "key-budget", type: "text", inputmode: "decimal", pattern: "^[0-9]+(\\.[0-9]{1,6})?$", autocomplete: "off" }), "Empty: no budget."),
      field("Expires after (days)", numberInput("key-expiry", { max: "3650" }), "Empty: never expires.")),
    el("div", { class: "actions" }, submit, el("span", { class: "help" }, "Your wallet will ask you to sign action=create.")),
  );
  form.addEventListener("change", (event) => {
    if (event.target.name === "env") modelOptions(models, catalog, event.target.value);
  });
  form.addEventListener("reset", () => {
    window.setTimeout(() => modelOptions(models, catalog, form.elements.env.value)); // after the reset applies
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    busy(submit, "Waiting for your signature…", async () => {
      const body = {
        name: form.elements.name.value.trim(),
        env: form.elements.env.value,
        models: Array.from(models.selectedOptions, (o) => o.value),
        rpm: optional(form, "key-rpm", Number),
        tpm: optional(form, "key-tpm", Number),
        monthlyBudgetUsd: optional(form, "key-budget"),
        expiresInDays: optional(form, "key-expiry", Number),
      };
      const signed = await signAction(state.session, "create");
      const created = await api("/app/api/keys", { method: "POST", body: { ...body, ...signed } });
      onCreated(created);
    });
  });
  return form;
}

function secretPanel(created, onDone) {
  const copy = el("button", { type: "button", id: "copy-secret" }, "Copy key");
  const done = el("button", { type: "button", class: "secondary", id: "secret-done" }, "I have stored it");
  const panel = el(
    "section",
    { class: "panel secret", id: "new-secret", "aria-labelledby": "secret-title" },
    el("h2", { id: "secret-title", tabindex: "-1" }, `Your new key “${created.name}”`),
    el("p", { class: "notice" }, el("strong", {}, "Copy it now. "), "This is the only time the full key is shown: Pryv stores only a hash and cannot show or recover it. Store it in a secret manager, never in code."),
    el("code", { id: "secret-value", "data-testid": "secret" }, created.key),
    el("div", { class: "actions" }, copy, done),
  );
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      announce("Key copied to the clipboard.");
    } catch {
      showError({ code: "clipboard_unavailable", message: "Copying failed; select the key and copy it by hand." });
    }
  });
  done.addEventListener("click", () => {
    panel.remove(); // the secret leaves the page for good
    onDone();
  });
  return panel;
}

function revokeDialog() {
  const dialog = el("dialog", { id: "revoke-dialog", "aria-labelledby": "revoke-title", "aria-describedby": "revoke-text" });
  const text = el("p", { id: "revoke-text" });
  const confirm = el("button", { type: "button", class: "danger", id: "revoke-confirm" }, "Revoke key");
  const cancel = el("button", { type: "button", class: "secondary", id: "revoke-cancel" }, "Cancel");
  dialog.append(el("h2", { id: "revoke-title" }, "Revoke this key?"), text, el("div", { class: "actions" }, confirm, cancel));
  cancel.addEventListener("click", () => dialog.close("cancel"));
  return {
    dialog,
    ask(key) {
      text.textContent = `“${key.name}” (${key.prefix}…${key.last4}) will stop working on every Pryv instance immediately. This cannot be undone.`;
      return new Promise((resolve) => {
        const onConfirm = () => dialog.close("confirm");
        confirm.addEventListener("click", onConfirm, { once: true });
        dialog.addEventListener("close", () => {
          confirm.removeEventListener("click", onConfirm);
          resolve(dialog.returnValue === "confirm");
        }, { once: true });
        dialog.returnValue = "";
        dialog.showModal();
        cancel.focus();
      });
    },
  };
}

// A modal form: resolves with its fields when submitted, null when cancelled.
function formDialog(id, title, fields, submitLabel) {
  const dialog = el("dialog", { id, "aria-labelledby": `${id}-title` });
  const form = el("form", { method: "dialog" });
  const submit = el("button", { type: "submit", id: `${id}-confirm`, value: "confirm" }, submitLabel);
  const cancel = el("button", { type: "button", class: "secondary", id: `${id}-cancel` }, "Cancel");
  const text = el("p", { id: `${id}-text` });
  form.append(text, ...fields, el("div", { class: "actions" }, submit, cancel));
  dialog.append(el("h2", { id: `${id}-title` }, title), form);
  cancel.addEventListener("click", () => dialog.close("cancel"));
  return {
    dialog,
    ask(description, fill = () => {}) {
      text.textContent = description;
      fill(form);
      return new Promise((resolve) => {
        dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm" ? form : null), { once: true });
        dialog.returnValue = "";
        dialog.showModal();
      });
    },
  };
}

const GRACE_CHOICES = [["0", "Now"], ["3600", "In 1 hour"], ["86400", "In 24 hours"], ["604800", "In 7 days"]];

function rollDialog() {
  const grace = el("select", { id: "roll-grace", name: "grace" },
    ...GRACE_CHOICES.map(([value, label]) => el("option", { value, selected: value === "86400" }, label)));
  return formDialog("roll-dialog", "Roll this key?", [field("The current secret stops working", grace)], "Roll key");
}

function editDialog() {
  return formDialog("edit-dialog", "Edit key", [
    field("Name", el("input", { id: "edit-name", name: "name", type: "text", required: true, maxlength: "100", autocomplete: "off" })),
    field("Requests per minute", numberInput("edit-rpm", { max: "1000000" }), "Empty: the platform default."),
    field("Tokens per minute", numberInput("edit-tpm", { max: "1000000000" }), "Empty: the platform default."),
    field("Monthly budget (USD)", el("input", { id: "edit-budget", name: "edit-budget", type: "text", inputmode: "decimal", pattern: "^[0-9]+(\\.[0-9]{1,6})?$", autocomplete: "off" }), "Empty: no budget."),
  ], "Save");
}

function keyRow(key) {
  // An MCP client's connection is a key whose secret nobody holds: marked, revocable the same way.
  const name = key.kind === "mcp_connection"
    ? el("td", {}, key.name, " ", el("span", { class: "badge connection", title: `Scopes: ${(key.scopes || []).join(" ")}` }, "MCP"))
    : el("td", {}, key.name);
  name.dataset.label = "Name";
  return el("tr", { "data-key-id": key.id },
    name,
    el("td", { "data-label": "Key" }, el("code", { class: "key-id" }, `${key.prefix}_…${key.last4}`)),
    el("td", { "data-label": "Env" }, el("span", { class: `badge ${key.env}` }, key.env)),
    el("td", { "data-label": "Status" }, el("span", { class: `badge ${key.status}` }, key.status)),
    el("td", { "data-label": "Created" }, when(key.createdAt)),
    el("td", { "data-label": "Last used" }, when(key.lastUsedAt)),
    el("td", { "data-testid": "month-spend", "data-label": "This month" }, spend(key)));
}

// What the key (or connection) spent this month, against its monthly budget when it has one.
function spend(key) {
  if (key.monthSpendUsd === undefined) return "—";
  const spent = `$${Number(key.monthSpendUsd).toFixed(2)}`;
  return key.monthlyBudgetUsd ? `${spent} of $${Number(key.monthlyBudgetUsd).toFixed(2)}` : spent;
}

export async function render(main, state) {
  const [catalog] = await Promise.all([api("/app/api/models").then((r) => r.data)]);
  const listBody = el("tbody", { id: "keys-body" });
  const more = el("button", { type: "button", class: "secondary", id: "keys-more", hidden: true }, "Load more");
  const secretSlot = el("div", { id: "secret-slot" });
  const confirmer = revokeDialog();
  const roller = rollDialog();
  const editor = editDialog();
  let cursor = null;

  function redraw(key) {
    const current = listBody.querySelector(`tr[data-key-id="${CSS.escape(key.id)}"]`);
    if (current) current.replaceWith(row(key));
  }

  async function roll(key, button) {
    const form = await roller.ask(`“${key.name}” (${key.prefix}…${key.last4}) gets a new secret; the current one keeps working until the time you choose, then every Pryv instance refuses it.`);
    if (!form) return;
    await busy(button, "Signing…", async () => {
      const signed = await signAction(state.session, "rotate", key.id);
      const rolled = await api(`/app/api/keys/${encodeURIComponent(key.id)}/rotate`, {
        method: "POST", body: { ...signed, gracePeriodSeconds: Number(form.elements.grace.value) } });
      secretSlot.replaceChildren(secretPanel(rolled, () => announce("The key is no longer shown.")));
      secretSlot.querySelector("h2").focus();
      announce(`Key “${key.name}” rolled. Copy the new secret now: it is shown once.`);
      redraw({ ...key, ...rolled });
    });
  }

  async function edit(key, button) {
    const form = await editor.ask(`Change “${key.name}” (${key.prefix}…${key.last4}); empty fields clear their limit.`, (f) => {
      f.elements.name.value = key.name;
      f.elements["edit-rpm"].value = key.rpm ?? "";
      f.elements["edit-tpm"].value = key.tpm ?? "";
      f.elements["edit-budget"].value = key.monthlyBudgetUsd ?? "";
    });
    if (!form) return;
    await busy(button, "Signing…", async () => {
      const value = (name, convert = (v) => v) => (form.elements[name].value.trim() === "" ? null : convert(form.elements[name].value.trim()));
      const signed = await signAction(state.session, "update", key.id);
      const changed = await api(`/app/api/keys/${encodeURIComponent(key.id)}`, {
        method: "PATCH",
        body: { ...signed, name: form.elements.name.value.trim(), rpm: value("edit-rpm", Number), tpm: value("edit-tpm", Number), monthlyBudgetUsd: value("edit-budget") },
      });
      announce(`Key “${changed.name}” saved.`);
      redraw({ ...key, ...changed });
    });
  }

  async function revoke(key, button) {
    if (!(await confirmer.ask(key))) return;
    await busy(button, "Signing…", async () => {
      const signed = await signAction(state.session, "revoke", key.id);
      const revoked = await api(`/app/api/keys/${encodeURIComponent(key.id)}`, { method: "DELETE", body: signed });
      announce(`Key “${key.name}” revoked.`);
      // The DELETE's answer is the truth (the key list may not have applied it yet): redraw
      // this row from it rather than re-reading a list that can still say "active".
      const current = listBody.querySelector(`tr[data-key-id="${CSS.escape(key.id)}"]`);
      if (current) current.replaceWith(row({ ...key, ...revoked }));
    });
  }

  function row(key) {
    const tr = keyRow(key);
    const cell = el("td", { "data-label": "Actions", class: "actions-cell" });
    const action = key.status === "active"
      ? el("button", { type: "button", class: "secondary", "aria-label": `Revoke key ${key.name}`, "data-revoke": key.id }, "Revoke")
      : el("span", { class: "muted" }, "—");
    if (key.status === "active") {
      action.addEventListener("click", () => revoke(key, action));
      const editing = el("button", { type: "button", class: "secondary", "aria-label": `Edit key ${key.name}`, "data-edit": key.id }, "Edit");
      editing.addEventListener("click", () => edit(key, editing));
      cell.append(editing, " ");
      if (key.kind !== "mcp_connection") {
        const rolling = el("button", { type: "button", class: "secondary", "aria-label": `Roll key ${key.name}`, "data-roll": key.id }, "Roll");
        rolling.addEventListener("click", () => roll(key, rolling));
        cell.append(rolling, " ");
      }
    }
    cell.append(action);
    tr.append(cell);
    return tr;
  }

  async function load(reset) {
    if (reset) cursor = null;
    const page = await api(`/app/api/keys?limit=${PAGE}${cursor ? `&cursor=${cursor}` : ""}`);
    if (reset) listBody.replaceChildren();
    for (const key of page.data) listBody.append(row(key));
    if (listBody.children.length === 0) {
      listBody.append(el("tr", {}, el("td", { colspan: "8", class: "muted" }, "No keys yet: create one above.")));
    }
    cursor = page.nextCursor;
    more.hidden = !page.hasMore;
  }
  more.addEventListener("click", () => busy(more, "Loading…", () => load(false)));

  const form = createForm(state, catalog, async (created) => {
    form.reset();
    secretSlot.replaceChildren(secretPanel(created, () => announce("The key is no longer shown.")));
    secretSlot.querySelector("h2").focus();
    announce(`Key “${created.name}” created. Copy it now: it is shown once.`);
    await load(true);
  });

  main.replaceChildren(
    heading("API keys"),
    secretSlot,
    el("section", { class: "panel", "aria-labelledby": "create-title" }, el("h2", { id: "create-title" }, "Create a key"), form),
    el("section", { class: "panel", "aria-labelledby": "list-title" },
      el("h2", { id: "list-title" }, "Your keys"),
      scrollRegion("Your keys",
        el("table", { id: "keys-table", class: "stack-narrow" },
          el("caption", { class: "sr-only" }, "API keys, newest first. Secrets are never shown here."),
          el("thead", {}, el("tr", {}, ...["Name", "Key", "Env", "Status", "Created", "Last used", "This month", "Actions"].map((h) => el("th", { scope: "col" }, h)))),
          listBody)),
      el("div", { class: "actions" }, more)),
    confirmer.dialog,
    roller.dialog,
    editor.dialog,
  );
  await load(true);
}
