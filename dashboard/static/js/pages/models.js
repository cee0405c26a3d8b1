// Models: the catalog with prices per 1M tokens, context length and the test-only flag.
import { api } from "../http.js";
import { el, heading, usd } from "../ui.js";

export async function render(main) {
  const { data } = await api("/app/api/models");
  const rows = data.map((m) => el("tr", { "data-model": m.id },
    el("th", { scope: "row" }, el("code", {}, m.id), m.description ? el("p", { class: "help" }, m.description) : null),
    el("td", { class: "num" }, usd(m.pricing.input_per_million_usd)),
    el("td", { class: "num" }, usd(m.pricing.output_per_million_usd)),
    el("td", { class: "num" }, m.context_length.toLocaleString("en-US")),
    el("td", { class: "num" }, m.max_output_tokens.toLocaleString("en-US")),
    el("td", {}, m.test_only ? el("span", { class: "badge test" }, "test keys only") : el("span", { class: "badge live" }, "live keys"))));
  main.replaceChildren(
    heading("Models"),
    el("p", { class: "muted" }, "Test keys call test-only models with test credit; live keys call the others. A key may be narrowed to some models when you create it."),
    el("section", { class: "panel" },
      el("div", { class: "table-wrap" },
        el("table", { id: "models-table" },
          el("caption", {}, "Prices in USD per 1M tokens"),
          el("thead", {}, el("tr", {}, ...["Model", "Input / 1M", "Output / 1M", "Context", "Max output", "Access"].map((h, i) => el("th", { scope: "col", class: i > 0 && i < 5 ? "num" : undefined }, h)))),
          el("tbody", {}, rows)))),
  );
}
