/* A prediction from a form built from the model's features, with the training data's values as hints. */

import { api } from "../shared/api.js";
import { bars, card, crumbs, enc, fill, fmt, h } from "../shared/dom.js";
import { actionFailed, banner } from "../shared/page.js";

function parseInput(raw, datatype, type) {
  const text = raw.trim();
  if (text === "") return null; // missing: the pipeline imputes it
  if (datatype === "BOOL" || type === "boolean") return ["true", "1", "yes"].includes(text.toLowerCase());
  if (/^(FP|INT|UINT)/.test(datatype) && type !== "category" && type !== "text") {
    const n = Number(text);
    if (!Number.isFinite(n)) throw new Error(`${text} is not a number`);
    return n;
  }
  return text;
}

export async function viewPredict(name, params) {
  const model = await api(`/api/models/${enc(name)}`);
  const chosen = params.get("version") || "";
  const ref = chosen || "champion";
  const [meta, version] = await Promise.all([
    api(`/v2/models/${enc(name)}${chosen ? `/versions/${enc(chosen)}` : ""}`),
    api(`/api/models/${enc(name)}/versions/${enc(ref)}`),
  ]);
  const types = Object.fromEntries((version.card?.features || []).map((f) => [f.name, f.type]));
  let profile = {};
  try {
    const lin = version.lineage;
    profile = (await api(`/api/datasets/${enc(lin.dataset)}/versions/${lin.dataset_version}`)).profile?.columns || {};
  } catch (exc) {
    if (exc.status === 401) throw exc; // hints only: a key without the reader role still predicts
  }

  const versionSelect = h("select", { id: "predict-version", onchange: (e) => { location.hash = `#/models/${enc(name)}/predict${e.target.value ? `?version=${e.target.value}` : ""}`; } },
    h("option", { value: "", text: `champion (v${model.aliases?.champion ?? "?"})` }),
    model.versions.slice().reverse().map((v) => h("option", { value: v.version, selected: String(v.version) === chosen, text: `v${v.version} ${(v.aliases || []).join(" ")}` })));

  const fields = meta.inputs.map((input, i) => {
    const type = types[input.name] || input.datatype;
    const p = profile[input.name] || {};
    const id = `feature-${i}`;
    let control;
    let hint = "";
    if (p.counts) {
      const values = Object.entries(p.counts).sort((a, b) => b[1] - a[1]).map(([k]) => k);
      const list = h("datalist", { id: `${id}-values` }, values.map((x) => h("option", { value: x })));
      control = [h("input", { id, name: input.name, "data-feature": input.name, "data-datatype": input.datatype, "data-type": type, list: `${id}-values`, value: values[0] ?? "" }), list];
      hint = `${type}: ${values.slice(0, 4).join(", ")}${values.length > 4 ? ", …" : ""}`;
    } else {
      const typical = typeof p.mean !== "number" ? "" : type === "integer" ? Math.round(p.mean) : Number(p.mean.toPrecision(3));
      control = h("input", { id, name: input.name, "data-feature": input.name, "data-datatype": input.datatype, "data-type": type, inputmode: "decimal", value: typical });
      hint = typeof p.min === "number" ? `${type}: ${fmt(p.min)} … ${fmt(p.max)}, mean ${fmt(p.mean)}` : type;
    }
    return [h("label", { for: id, class: "mono", text: input.name }), control, h("span", { class: "hint", text: hint })];
  });

  const result = h("div", { id: "prediction" });
  const submit = async (event) => {
    event.preventDefault();
    const record = {};
    try {
      for (const input of event.target.querySelectorAll("input[data-feature]")) {
        record[input.dataset.feature] = parseInput(input.value, input.dataset.datatype, input.dataset.type);
      }
    } catch (exc) { return banner(exc.message); }
    const body = { records: [record] };
    if (chosen) body.version = Number(chosen);
    try {
      const out = await api(`/api/models/${enc(name)}/predict`, { method: "POST", body });
      banner("");
      const probs = out.probabilities?.[0];
      fill(result,
        h("p", {}, "prediction of ", h("strong", { text: `v${out.version}` }), ":"),
        h("p", { class: "prediction", id: "prediction-value", "data-value": JSON.stringify(out.predictions[0]), text: fmt(out.predictions[0]) }),
        probs ? [h("h2", { text: "Probabilities" }), bars(Object.entries(probs).sort((a, b) => b[1] - a[1]), { percent: true, name: "probabilities" })] : null);
    } catch (exc) {
      result.replaceChildren();
      actionFailed(exc);
    }
  };

  return [
    crumbs(h("a", { href: "#/models", text: "Models" }), h("a", { href: `#/models/${enc(name)}`, text: name })),
    h("h1", { text: `Predict with ${name}` }),
    h("p", { class: "muted", text: "One record. Fields start at the training data's mean or most frequent value; leave one empty to send it as missing." }),
    h("div", { class: "row" },
      card(null,
        h("form", { id: "predict-form", class: "predict", onsubmit: submit },
          h("label", { for: "predict-version", text: "version" }), versionSelect, h("span"),
          fields,
          h("span"), h("button", { type: "submit", id: "predict-submit", text: "Predict" }), h("span"))),
      card("Result", result)),
  ];
}
