/* daprml console: one page, hash routes, the gateway's public API with the user's API key.
 *
 * Everything shown is built with DOM calls (textContent, never innerHTML), so names, column
 * names and categories that came from uploaded data are shown as text, not run as markup.
 */
"use strict";

// The API key lives in this variable only, never in the browser's storage, which every page of
// this origin (the API docs at /docs too) could read: a reload signs out.
let apiKey = null;
const STORED_KEY = "daprml.apiKey"; // where earlier versions kept it: removed at start
const POLL_MS = 2000;
const LOWER_IS_BETTER = new Set(["rmse", "mae", "mse", "log_loss"]);
const ACTIVE = new Set(["PENDING", "RUNNING"]);

// ---------------------------------------------------------------- small DOM helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "style") Object.assign(el.style, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's children by these (arrays flattened, null and false left out). */
function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

function fmt(value, digits = 4) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    if (Math.abs(value) >= 1000) return value.toLocaleString("en-US", { maximumFractionDigits: 1 });
    return Number(value.toPrecision(digits)).toString();
  }
  return String(value);
}

function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

function percent(share) {
  return share > 0 && share < 0.0001 ? "<0.01%" : `${fmt(100 * share, 3)}%`;
}

function table(headers, rows, attrs) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((c) => h("th", typeof c === "string" ? { text: c } : c)))),
    h("tbody", {}, rows));
}

function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", { text: title }) : null, children);
}

function bars(entries, opts = {}) {
  // entries: [label, value]; one row per entry, the bar's length relative to the largest.
  const max = Math.max(1, ...entries.map(([, v]) => v));
  return h("div", { class: "bars " + (opts.class || ""), "data-chart": opts.name || null },
    entries.map(([label, value]) => [
      h("span", { class: "label", title: label, text: label }),
      h("span", { class: "bar" + (opts.missing ? " missing" : "") },
        h("span", { style: { width: `${(100 * value) / max}%` } })),
      h("span", { class: "value", "data-value": value, text: opts.percent ? percent(value) : fmt(value) }),
    ]));
}

function badge(alias) {
  return h("span", { class: `badge ${alias}`, "data-alias": alias, text: alias });
}

// ---------------------------------------------------------------- messages and sign-in

function banner(message, kind) {
  const el = $("banner");
  el.textContent = message;
  el.className = "banner" + (kind === "info" ? " info" : "");
  el.hidden = !message;
}

function showLogin(message) {
  apiKey = null;
  $("view").replaceChildren();
  $("signout").hidden = true;
  $("login").hidden = false;
  const err = $("login-error");
  err.textContent = message || "";
  err.hidden = !message;
  $("login-key").value = "";
  $("login-key").focus();
}

function signedIn() {
  return apiKey;
}

/** Opened by a page of this origin that kept a handle on this window (window.open without
 * noopener): that page could read what is typed here. A link, a bookmark or a new tab has none;
 * a page of another origin cannot read this one anyway (reading its location throws). */
function openedBySameOrigin() {
  try {
    return Boolean(window.opener && window.opener.location.href);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function detailOf(status, body) {
  if (body && typeof body === "object") {
    const detail = body.detail ?? body.error;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).join(" ")}: ${d.msg}`).join("; ");
  }
  return `HTTP ${status}`;
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${signedIn() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let reply;
  try {
    reply = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (exc) {
    throw new ApiError(0, `the gateway did not answer (${exc.message}); is the stack up?`);
  }
  const text = await reply.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!reply.ok) {
    const message = detailOf(reply.status, data);
    throw new ApiError(reply.status, reply.status >= 500 ? `${message} (HTTP ${reply.status})` : message);
  }
  return data;
}

/** A failed read of a page: a key refused (401) or not allowed to read (403) asks for a key again. */
function failed(exc) {
  if (exc instanceof ApiError && (exc.status === 401 || exc.status === 403)) {
    showLogin(`${exc.status === 401 ? "Refused" : "Not allowed"}: ${exc.message}`);
  } else {
    banner(exc.message || String(exc));
  }
}

/** A failed action (promote, train, predict): a refused key asks again; anything else, a 403 included, is shown. */
function actionFailed(exc) {
  if (exc instanceof ApiError && exc.status === 401) showLogin(`Refused: ${exc.message}`);
  else banner(exc instanceof ApiError && exc.status === 403 ? `Not allowed: ${exc.message}` : exc.message);
}

// ---------------------------------------------------------------- routing

let charts = [];
let pollTimer = null;
let generation = 0;

function cleanUp() {
  charts.forEach((c) => c.destroy());
  charts = [];
  clearTimeout(pollTimer);
  pollTimer = null;
  generation += 1;
}

const routes = [
  [/^datasets$/, viewDatasets],
  [/^datasets\/([^/]+)$/, viewDataset],
  [/^datasets\/([^/]+)\/versions\/([^/]+)$/, viewDatasetVersion],
  [/^jobs$/, viewJobs],
  [/^models$/, viewModels],
  [/^models\/([^/]+)$/, viewModel],
  [/^models\/([^/]+)\/versions\/([^/]+)$/, viewModelVersion],
  [/^models\/([^/]+)\/predict$/, viewPredict],
];

async function render() {
  cleanUp();
  if (!signedIn()) return showLogin();
  $("login").hidden = true;
  $("signout").hidden = false;
  const raw = location.hash.replace(/^#\/?/, "") || "models";
  const [path, query] = raw.split("?");
  const section = path.split("/")[0];
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.section === section));
  const view = $("view");
  view.replaceChildren(h("p", { class: "muted", text: "Loading…" }));
  for (const [pattern, fn] of routes) {
    const match = path.match(pattern);
    if (!match) continue;
    const mine = generation;
    try {
      const content = await fn(...match.slice(1).map(decodeURIComponent), new URLSearchParams(query || ""));
      if (mine === generation) fill(view, content);
    } catch (exc) {
      if (mine === generation) {
        view.replaceChildren();
        failed(exc);
      }
    }
    return;
  }
  view.replaceChildren(h("p", { text: `No page ${path}. ` }, h("a", { href: "#/models", text: "Models" })));
}

function crumbs(...parts) {
  return h("div", { class: "crumbs" }, parts.map((p, i) => [i ? " / " : "", p]));
}

function newChart(canvas, config) {
  if (!window.Chart) {
    canvas.replaceWith(h("p", { class: "error", text: "the chart library did not load" }));
    return null;
  }
  const chart = new window.Chart(canvas, config);
  charts.push(chart);
  return chart;
}

// ---------------------------------------------------------------- datasets

async function viewDatasets() {
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

async function viewDataset(name) {
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

async function viewDatasetVersion(name, version) {
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

// ---------------------------------------------------------------- training jobs

async function viewJobs(params) {
  const dataset = params.get("dataset");
  const query = new URLSearchParams({ limit: "200" });
  if (dataset) query.set("dataset", dataset);
  const mine = generation;
  const list = h("div", { id: "jobs-list" });
  const live = h("span", { id: "jobs-live", class: "muted" });

  async function refresh(first) {
    let data;
    try {
      data = await api(`/api/training/jobs?${query}`);
    } catch (exc) {
      if (first) throw exc;
      if (mine === generation) failed(exc);
      return;
    }
    if (mine !== generation) return;
    const running = data.jobs.some((j) => ACTIVE.has(j.status));
    live.textContent = running ? `live: refreshing every ${POLL_MS / 1000} s while a job runs` : `updated ${new Date().toLocaleTimeString()}`;
    live.dataset.polling = running ? "yes" : "no";
    list.replaceChildren(data.jobs.length ? jobsTable(data.jobs, cancel) : h("p", { class: "muted", text: "No training jobs." }));
    if (running) pollTimer = setTimeout(() => refresh(false), POLL_MS);
  }

  // DELETE needs the train role; a key without it is told so, and the list stays as it was.
  async function cancel(job) {
    try {
      const done = await api(`/api/training/jobs/${enc(job.id)}`, { method: "DELETE" });
      banner(`job ${done.id} ${done.status === "CANCELED" ? "canceled" : "is being canceled"}`, "info");
    } catch (exc) { actionFailed(exc); }
    if (mine !== generation) return;
    clearTimeout(pollTimer);
    await refresh(false);
  }
  await refresh(true);
  return [
    h("h1", { text: "Training jobs" }),
    h("p", {}, dataset ? ["for dataset ", h("a", { href: `#/datasets/${enc(dataset)}`, text: dataset }), " · ", h("a", { href: "#/jobs", text: "all" }), " · "] : null, live),
    card(null, list),
  ];
}

function jobsTable(jobs, cancel) {
  const rows = jobs.map((j) => {
    const r = j.result;
    return h("tr", { "data-job": j.id, "data-status": j.status },
      h("td", { class: "mono", text: j.id }),
      h("td", {}, h("a", { href: `#/datasets/${enc(j.dataset)}/versions/${j.version}`, text: `${j.dataset} v${j.version}` })),
      h("td", { text: j.estimator }),
      h("td", { class: `status-${j.status}`, text: j.status }),
      h("td", { "data-stage": j.stage }, h("span", { class: "progress" }, h("span", { style: { width: `${Math.round(100 * (j.progress || 0))}%` } })), j.stage || ""),
      h("td", {}, r ? [h("a", { href: `#/models/${enc(r.model)}/versions/${r.version}`, text: `${r.model} v${r.version}` }), " ", r.promotion ? badge(r.promotion.alias) : null] : (j.error ? h("span", { class: "error", text: j.error }) : "")),
      h("td", { text: when(j.created_at) }),
      h("td", {}, ACTIVE.has(j.status)
        ? h("button", { class: "small secondary", "data-cancel": j.id, title: "stop this job (needs the train role)", text: "Cancel", onclick: () => cancel(j) })
        : null));
  });
  return table(["job", "dataset", "estimator", "status", "stage", "result", "created", ""], rows, { id: "jobs" });
}

// ---------------------------------------------------------------- models

async function viewModels() {
  const { models, total } = await api("/api/models?limit=500");
  const rows = models.map((m) =>
    h("tr", { "data-model": m.name },
      h("td", {}, h("a", { href: `#/models/${enc(m.name)}`, text: m.name })),
      h("td", { text: m.task }),
      h("td", { class: "num", text: fmt(m.versions) }),
      h("td", {}, Object.entries(m.aliases || {}).map(([a, v]) => [badge(a), `v${v} `])),
      h("td", {}, h("a", { href: `#/models/${enc(m.name)}/predict`, text: "predict" })),
      h("td", { text: when(m.created_at) })));
  return [
    h("h1", { text: "Models" }),
    h("p", { class: "muted", text: `${total} model${total === 1 ? "" : "s"}` }),
    card(null, models.length
      ? table(["name", "task", { class: "num", text: "versions" }, "aliases", "", "created"], rows, { id: "models" })
      : h("p", { class: "muted", text: "No models yet: upload a dataset and its first version is trained." })),
  ];
}

function primaryMetric(model) {
  return model.policy?.metric || (model.task === "regression" ? "r2" : "accuracy");
}

async function viewModel(name) {
  const model = await api(`/api/models/${enc(name)}`);
  const metric = primaryMetric(model);
  const lower = LOWER_IS_BETTER.has(metric);
  const metricNames = [...new Set(model.versions.flatMap((v) => Object.keys(v.metrics || {})))];
  const champion = model.aliases?.champion;

  const promote = (version) => async () => {
    try {
      const moved = await api(`/api/models/${enc(name)}/aliases/champion`, { method: "PUT", body: { version } });
      await render();
      banner(`champion moved to v${moved.version}${moved.previous ? ` (was v${moved.previous})` : ""}`, "info");
    } catch (exc) { actionFailed(exc); }
  };
  const rollback = async () => {
    try {
      const moved = await api(`/api/models/${enc(name)}/rollback`, { method: "POST" });
      await render();
      banner(`champion rolled back to v${moved.version ?? moved.to ?? "?"}`, "info");
    } catch (exc) { actionFailed(exc); }
  };

  const values = model.versions.map((v) => v.metrics?.[metric] ?? null);
  const present = values.filter((x) => x !== null);
  const best = present.length ? (lower ? Math.min(...present) : Math.max(...present)) : null;
  const rows = model.versions.slice().reverse().map((v) =>
    h("tr", { "data-version": v.version, class: v.version === champion ? "best" : null },
      h("td", {}, h("a", { href: `#/models/${enc(name)}/versions/${v.version}`, text: `v${v.version}` })),
      h("td", {}, (v.aliases || []).map(badge)),
      h("td", { text: v.estimator }),
      h("td", {}, h("a", { href: `#/datasets/${enc(v.dataset)}/versions/${v.dataset_version}`, text: `${v.dataset} v${v.dataset_version}` })),
      metricNames.map((k) => h("td", { class: "num", "data-metric": k, text: fmt(v.metrics?.[k]) })),
      h("td", { text: when(v.created_at) }),
      h("td", {}, v.version === champion ? null
        : h("button", { class: "small secondary", "data-promote": v.version, title: "needs an admin key", onclick: promote(v.version), text: "Make champion" }))));

  const canvas = h("canvas", { id: "metric-chart", "aria-label": `${metric} over versions` });
  queueMicrotask(() => newChart(canvas, {
    type: "line",
    data: {
      labels: model.versions.map((v) => `v${v.version}`),
      datasets: [{
        label: metric, data: values, borderColor: "#2f6fdf", backgroundColor: "#2f6fdf", tension: 0,
        pointRadius: model.versions.map((v) => (v.version === champion ? 7 : 4)),
        pointBackgroundColor: model.versions.map((v) => (v.version === champion ? "#e0a100" : "#2f6fdf")),
      }],
    },
    options: {
      maintainAspectRatio: false, animation: false,
      plugins: { legend: { display: false }, tooltip: { callbacks: { label: (c) => `${metric} ${fmt(c.parsed.y)}` } } },
      scales: { y: { title: { display: true, text: `${metric} (${lower ? "lower" : "higher"} is better)` } } },
    },
  }));

  const history = (model.history || []).slice(-8).reverse().map((e) =>
    h("tr", {}, h("td", {}, badge(e.alias)), h("td", { text: `${e.from ? `v${e.from}` : "–"} → ${e.to ? `v${e.to}` : "removed"}` }),
      h("td", { text: e.reason }), h("td", { text: when(e.at) })));

  return [
    crumbs(h("a", { href: "#/models", text: "Models" })),
    h("h1", { text: model.name }),
    h("p", { class: "muted" }, `${model.task} · promotion ${model.policy?.mode || "manual"} on ${metric} · `,
      h("a", { href: `#/models/${enc(name)}/predict`, text: "predict" }), " · ",
      h("a", { href: `#/jobs?dataset=${enc(model.versions[0]?.dataset || name)}`, text: "training jobs" })),
    h("div", { class: "row" },
      card(`${metric} over versions`, h("div", { class: "chart-box" }, canvas),
        h("p", { class: "muted", id: "metric-summary", "data-metric": metric, "data-values": JSON.stringify(values),
          text: `best ${fmt(best)}; champion ${champion ? `v${champion}: ${fmt(values[model.versions.findIndex((v) => v.version === champion)])}` : "none"}` })),
      card("Aliases",
        h("div", { id: "aliases" }, Object.entries(model.aliases || {}).map(([a, v]) =>
          h("p", { "data-alias-row": a }, badge(a), " ", h("a", { href: `#/models/${enc(name)}/versions/${v}`, "data-alias-version": v, text: `v${v}` })))),
        h("div", { class: "actions" },
          h("button", { id: "rollback", class: "secondary", title: "needs an admin key", onclick: rollback, disabled: !champion, text: "Roll back champion" }),
          h("span", { class: "muted", text: "moving aliases needs an admin key" })),
        history.length ? [h("h2", { text: "Alias history" }), table(["alias", "move", "by", "when"], history)] : null)),
    card("Versions", table(["version", "aliases", "estimator", "trained on", metricNames.map((k) => ({ class: "num", text: k })), "created", ""].flat(), rows, { id: "versions" })),
  ];
}

function perClass(cm) {
  const n = cm.labels.length;
  return cm.labels.map((label, i) => {
    const tp = cm.counts[i][i];
    const support = cm.counts[i].reduce((a, b) => a + b, 0);
    const predicted = cm.counts.reduce((a, row) => a + row[i], 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { label, precision, recall, f1, support, n };
  });
}

function heatmap(cm) {
  const max = Math.max(1, ...cm.counts.flat());
  return table(
    [{ class: "true", text: "true ↓ / predicted →" }, ...cm.labels.map((l) => ({ text: l, class: "mono" }))],
    cm.counts.map((row, i) => h("tr", {},
      h("th", { class: "true mono", text: cm.labels[i] }),
      row.map((count, j) => {
        const share = count / max;
        const hue = i === j ? 215 : 8;
        return h("td", {
          class: "cell", "data-count": count, "data-true": cm.labels[i], "data-predicted": cm.labels[j],
          title: `true ${cm.labels[i]}, predicted ${cm.labels[j]}: ${count}`,
          style: { background: count ? `hsl(${hue} 70% ${92 - 50 * share}%)` : "#f6f7f9", color: share > 0.55 ? "#fff" : "#1d2433" },
          text: count,
        });
      }))),
    { class: "heatmap", id: "confusion" });
}

async function viewModelVersion(name, version) {
  const v = await api(`/api/models/${enc(name)}/versions/${enc(version)}`);
  const lin = v.lineage || {};
  const cm = v.confusion_matrix;
  const metrics = Object.entries(v.metrics || {});
  const classes = cm && cm.labels?.length ? perClass(cm) : null;
  return [
    crumbs(h("a", { href: "#/models", text: "Models" }), h("a", { href: `#/models/${enc(name)}`, text: name })),
    h("h1", {}, `${name} v${v.version} `, (v.aliases || []).map(badge)),
    h("p", { class: "muted" }, `${lin.estimator} on `, h("a", { href: `#/datasets/${enc(lin.dataset)}/versions/${lin.dataset_version}`, text: `${lin.dataset} v${lin.dataset_version}` }),
      ` · ${when(v.created_at)} · job `, h("code", { text: lin.job_id || "–" })),
    h("div", { class: "row" },
      card("Holdout metrics", h("dl", { class: "stats", id: "version-metrics" }, metrics.map(([k, x]) => [h("dt", { text: k }), h("dd", { "data-metric": k, text: fmt(x) })])),
        v.card ? h("p", { class: "muted", text: `${fmt(v.card.training_rows)} training rows, ${fmt(v.card.holdout_rows)} holdout rows, seed ${v.card.seed}` }) : null),
      card("Parameters", h("dl", { class: "stats" }, Object.entries(lin.params || {}).map(([k, x]) => [h("dt", { text: k }), h("dd", { class: "mono", text: JSON.stringify(x) })])))),
    cm ? h("div", { class: "row" },
      card("Confusion matrix (holdout)", heatmap(cm)),
      card("Per class", table(["class", { class: "num", text: "precision" }, { class: "num", text: "recall" }, { class: "num", text: "f1" }, { class: "num", text: "support" }],
        classes.map((c) => h("tr", { "data-class": c.label }, h("td", { class: "mono", text: c.label }),
          h("td", { class: "num", text: fmt(c.precision, 3) }), h("td", { class: "num", text: fmt(c.recall, 3) }),
          h("td", { class: "num", text: fmt(c.f1, 3) }), h("td", { class: "num", text: fmt(c.support) }))), { id: "per-class" })))
      : card("Confusion matrix", h("p", { class: "muted", text: v.card?.task === "regression" ? "A regression model: no confusion matrix (see rmse, mae, r2 above)." : "This version's record has no confusion matrix." })),
    v.card ? card("Features", table(["feature", "type"], (v.card.features || []).map((f) => h("tr", {}, h("td", { class: "mono", text: f.name }), h("td", { text: f.type })))),
      v.card.classes ? h("p", { class: "muted", text: `classes: ${v.card.classes.join(", ")}` }) : null) : null,
    h("p", {}, h("a", { href: `#/models/${enc(name)}/predict?version=${v.version}`, text: `Predict with v${v.version}` })),
  ];
}

// ---------------------------------------------------------------- predict

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

async function viewPredict(name, params) {
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

// ---------------------------------------------------------------- start

document.addEventListener("DOMContentLoaded", () => {
  sessionStorage.removeItem(STORED_KEY);
  if (openedBySameOrigin()) {
    $("login-form").addEventListener("submit", (event) => event.preventDefault());
    showLogin("This console was opened by another page, which could read your key: open it in a tab of its own.");
    $("login-key").disabled = $("login-submit").disabled = true;
    return;
  }
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("login-key").value.trim();
    if (!key) return;
    apiKey = key;
    banner("");
    if (!location.hash || location.hash === "#" || location.hash === "#/") location.hash = "#/models"; // renders
    else render();
  });
  $("signout").addEventListener("click", () => { banner(""); showLogin(); });
  window.addEventListener("hashchange", () => { banner(""); render(); });
  render();
});
