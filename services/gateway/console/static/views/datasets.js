/* The datasets: the list, one dataset (its versions, its schema, a form to train on it) and one
 * version's profile (missing values, class balance, each column's distribution). */

import { api } from "../shared/api.js";
import { bars, card, crumbs, enc, fmt, h, table, when } from "../shared/dom.js";
import { actionFailed, banner, newChart } from "../shared/page.js";

export async function viewDatasets() {
  const { datasets, total } = await api("/api/datasets?limit=500");
  const rows = datasets.map((d) =>
    h("tr", { "data-dataset": d.name },
      h("td", {}, h("a", { href: `#/datasets/${enc(d.name)}`, text: d.name })),
      h("td", { text: d.task }),
      h("td", { class: "mono", text: d.target }),
      h("td", { class: "num", text: fmt(d.versions) }),
      h("td", { class: "num", text: fmt(d.latest_rows) }),
      h("td", { text: when(d.created_at) })));
  return [
    h("h1", { text: "Datasets" }),
    h("p", { class: "muted", text: `${total} dataset${total === 1 ? "" : "s"}. Upload with the CLI: daprml datasets upload FILE --name N --target T` }),
    card(null, datasets.length
      ? table(["name", "task", "target", { class: "num", text: "versions" }, { class: "num", text: "latest rows" }, "created"], rows, { id: "datasets" })
      : h("p", { class: "muted", text: "No datasets yet." })),
  ];
}

export async function viewDataset(name) {
  const ds = await api(`/api/datasets/${enc(name)}`);
  const versions = [...ds.versions].reverse().map((v) =>
    h("tr", { "data-version": v.version },
      h("td", {}, h("a", { href: `#/datasets/${enc(name)}/versions/${v.version}`, text: `v${v.version}` })),
      h("td", { class: "num", text: fmt(v.row_count) }),
      h("td", { class: "mono", title: v.sha256, text: (v.sha256 || "").slice(0, 12) }),
      h("td", { text: when(v.created_at) })));
  const columns = ds.schema.columns.map((c) =>
    h("tr", {},
      h("td", { class: "mono", text: c.name }),
      h("td", { text: c.type }),
      h("td", { text: c.missing + (c.fill_value !== null && c.fill_value !== undefined ? ` (${c.fill_value})` : "") }),
      h("td", { text: c.name === ds.target ? "target" : "" })));
  return [
    crumbs(h("a", { href: "#/datasets", text: "Datasets" })),
    h("h1", { text: ds.name }),
    h("p", { class: "muted" }, `${ds.task}, target `, h("code", { text: ds.target }), ` · created ${when(ds.created_at)} · `,
      h("a", { href: `#/jobs?dataset=${enc(name)}`, text: "its training jobs" }), " · ",
      h("a", { href: `#/models/${enc(name)}`, text: "its model" })),
    h("div", { class: "row" },
      card("Versions", table(["version", { class: "num", text: "rows" }, "sha256", "created"], versions, { id: "dataset-versions" })),
      card("Schema", table(["column", "type", "missing values", ""], columns))),
    await trainCard(ds),
  ];
}

async function trainCard(ds) {
  let estimators = [];
  try {
    estimators = (await api("/api/training/estimators"))[ds.task] || [];
  } catch (exc) {
    if (exc.status === 401) throw exc;
    return card("Train", h("p", { class: "muted", text: `estimators unavailable: ${exc.message}` }));
  }
  const select = h("select", { id: "train-estimator" }, estimators.map((e) => h("option", { value: e.name, text: `${e.name} — ${e.description}` })));
  const params = h("input", { id: "train-params", class: "mono", size: 40, placeholder: '{"C": 0.5}' });
  const version = h("select", { id: "train-version" }, h("option", { value: "latest", text: "latest" }),
    [...ds.versions].reverse().map((v) => h("option", { value: v.version, text: `v${v.version}` })));
  const submit = async (event) => {
    event.preventDefault();
    let parsed = {};
    try { parsed = params.value.trim() ? JSON.parse(params.value) : {}; } catch (exc) { return banner(`parameters: not JSON (${exc.message})`); }
    const body = { dataset: ds.name, version: version.value === "latest" ? "latest" : Number(version.value), estimator: select.value, params: parsed };
    try {
      const job = await api("/api/training/jobs", { method: "POST", body });
      banner(`job ${job.id} submitted (${job.status})`, "info");
      location.hash = `#/jobs?dataset=${enc(ds.name)}`;
    } catch (exc) { actionFailed(exc); }
  };
  return card("Train a model",
    h("form", { class: "actions", onsubmit: submit },
      h("label", { text: "estimator" }), select,
      h("label", { text: "version" }), version,
      h("label", { text: "parameters (JSON)" }), params,
      h("button", { type: "submit", text: "Train" })));
}

export async function viewDatasetVersion(name, version) {
  const m = await api(`/api/datasets/${enc(name)}/versions/${enc(version)}`);
  const profile = m.profile || { columns: {} };
  const columns = Object.entries(profile.columns || {});
  const missingCanvas = h("canvas", { id: "missing-chart", "aria-label": "missing values per column" });
  const columnCards = columns.map(([col, p]) => columnCard(col, p, profile.rows || m.row_count, col === m.schema.target));
  const view = [
    crumbs(h("a", { href: "#/datasets", text: "Datasets" }), h("a", { href: `#/datasets/${enc(name)}`, text: name })),
    h("h1", { text: `${name} v${m.version}` }),
    h("p", { class: "muted", text: `${fmt(m.row_count)} rows · ${fmt(m.rows_rejected)} rejected · ${fmt(m.duplicates_dropped)} duplicates dropped · ${when(m.created_at)}` }),
    h("div", { class: "row" },
      card("Missing values per column",
        h("div", { class: "chart-box small" }, missingCanvas),
        bars(columns.map(([col, p]) => [col, p.missing || 0]), { missing: true, name: "missing" })),
      profile.class_balance ? card("Class balance",
        bars(Object.entries(profile.class_balance), { percent: true, name: "class-balance" })) : null),
    h("h2", { text: "Columns" }),
    h("div", { class: "grid", id: "profile" }, columnCards),
  ];
  queueMicrotask(() => newChart(missingCanvas, {
    type: "bar",
    data: { labels: columns.map(([c]) => c), datasets: [{ label: "missing", data: columns.map(([, p]) => p.missing || 0), backgroundColor: "#b7791f" }] },
    options: { maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  }));
  return view;
}

function columnCard(name, p, rows, isTarget) {
  const body = [];
  const stats = Object.entries(p).filter(([k, v]) => k !== "counts" && k !== "type" && typeof v !== "object");
  if (p.counts) {
    const entries = Object.entries(p.counts).sort((a, b) => b[1] - a[1]);
    body.push(bars(entries.slice(0, 12), { name: "counts" }));
    if (entries.length > 12) body.push(h("p", { class: "muted", text: `and ${entries.length - 12} more values` }));
  } else if (typeof p.min === "number" && typeof p.max === "number") {
    const span = p.max - p.min || 1;
    const at = (x) => `${Math.min(100, Math.max(0, (100 * (x - p.min)) / span))}%`;
    const lo = (p.mean ?? p.min) - (p.std ?? 0), hi = (p.mean ?? p.min) + (p.std ?? 0);
    body.push(h("div", { class: "range", title: "min … max; the shaded band is mean ± std" },
      h("span", { class: "std", style: { left: at(lo), width: `calc(${at(hi)} - ${at(lo)})` } }),
      p.mean !== undefined ? h("span", { class: "mean", style: { left: at(p.mean) } }) : null));
  }
  body.push(h("dl", { class: "stats" }, stats.map(([k, v]) => [h("dt", { text: k }), h("dd", { "data-stat": k, text: fmt(v) })])));
  return h("section", { class: "card", "data-column": name },
    h("h2", {}, h("span", { class: "mono", text: name }), " ", h("span", { class: "muted", text: `${p.type}${isTarget ? " · target" : ""}` })),
    h("p", { class: p.missing ? "error" : "muted", text: `${fmt(p.missing || 0)} missing of ${fmt(rows)}` }),
    body);
}
