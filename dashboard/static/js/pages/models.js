// Models: the catalog with prices per 1M tokens, context length and the test-only flag.
import { api } from "../http.js";
import { el, heading, usd, scrollRegion } from "../ui.js";

export async function render(main) {
  const { data } = await api("/app/api/models");
  const headers = ["Model", "Input / 1M", "Output / 1M", "Context", "Max output", "Access"];
  // data-label: on narrow screens each row becomes a card and every cell names its column.
  const cell = (i, cls, ...content) => el("td", { class: cls, "data-label": headers[i] }, ...content);
  const rows = data.map((m) => el("tr", { "data-model": m.id },
    el("th", { scope: "row", class: "model-name" }, el("code", {}, m.id), m.description ? el("p", { class: "help" }, m.description) : null),
    cell(1, "num", usd(m.pricing.input_per_million_usd)),
    cell(2, "num", usd(m.pricing.output_per_million_usd)),
    cell(3, "num", m.context_length.toLocaleString("en-US")),
    cell(4, "num", m.max_output_tokens.toLocaleString("en-US")),
    cell(5, undefined, m.test_only ? el("span", { class: "badge test" }, "test keys only") : el("span", { class: "badge live" }, "live keys"))));
  main.replaceChildren(
    heading("Models"),
    el("p", { class: "muted" }, "Test keys call test-only models with test credit; live keys call the others. A key may be narrowed to some models when you create it."),
    el("section", { class: "panel" },
      scrollRegion("Models and prices",
        el("table", { id: "models-table", class: "stack-narrow" },
          el("caption", {}, "Prices in USD per 1M tokens"),
          el("thead", {}, el("tr", {}, ...headers.map((h, i) => el("th", { scope: "col", class: i > 0 && i < 5 ? "num" : undefined }, h)))),
          el("tbody", {}, rows)))),
  );
}
