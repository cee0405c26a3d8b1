// Small DOM helpers: element builder, announcements, errors, formatting.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A table's horizontal scroller: focusable and named, so a keyboard can scroll it (WCAG 2.1.1).
export function scrollRegion(label, ...children) {
  return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": label }, ...children);
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function announce(text) {
  const region = document.getElementById("status");
  region.textContent = "";
  // A fresh text node so screen readers announce a repeated message too.
  window.setTimeout(() => { region.textContent = text; }, 30);
}

export function clearMessages() {
  document.getElementById("status").textContent = "";
  document.getElementById("alert").textContent = "";
}

export function showError(error) {
  const region = document.getElementById("alert");
  region.textContent = "";
  const code = (error && error.code) || "error";
  const message = (error && error.message) || String(error);
  region.append(el("code", { class: "error-code" }, code), ": ", message);
}

export function clearError() {
  document.getElementById("alert").textContent = "";
}

// Run an async action with its button disabled and a busy state; errors go to the alert region.
export async function busy(button, label, action) {
  const previous = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = label;
  clearMessages();
  try {
    return await action();
  } catch (error) {
    showError(error);
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = previous;
  }
}

// "12.340000" -> "$12.34"; keeps sub-cent digits when there are any ("0.000123" -> "$0.000123").
export function usd(value) {
  if (value === null || value === undefined) return "—";
  let text = String(value);
  const negative = text.startsWith("-");
  if (negative) text = text.slice(1);
  let [whole, frac = ""] = text.split(".");
  frac = frac.replace(/0+$/, "");
  if (frac.length < 2) frac = frac.padEnd(2, "0");
  return `${negative ? "−" : ""}$${whole}.${frac}`;
}

export function when(iso) {
  if (!iso) return el("span", { class: "muted" }, "never");
  const date = new Date(iso);
  return el("time", { datetime: iso, title: iso }, date.toLocaleString());
}

export function shortAddress(address) {
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}

export function heading(text) {
  return el("h1", { tabindex: "-1" }, text);
}

export function field(labelText, input, help) {
  const id = input.id;
  const helpId = help ? `${id}-help` : undefined;
  if (helpId) input.setAttribute("aria-describedby", helpId);
  return el(
    "div",
    { class: "field" },
    el("label", { for: id }, labelText),
    input,
    help ? el("p", { class: "help", id: helpId }, help) : null,
  );
}
