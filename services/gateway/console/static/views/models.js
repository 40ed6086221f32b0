/* The models: the list, and one model (its versions' metrics over time, its aliases, promotion
 * and rollback, its rollouts (views/rollouts.js), its monitoring (views/monitoring.js), and its
 * history: who did what, why and when). */

import { api } from "../shared/api.js";
import { badge, card, crumbs, enc, fmt, h, table, when } from "../shared/dom.js";
import { actionFailed, banner, newChart, rerender } from "../shared/page.js";
import { monitoringCard } from "./monitoring.js";
import { rolloutsCard } from "./rollouts.js";

export async function viewModels() {
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

const HISTORY_SHOWN = 10;

/** One history entry's change in a few words: an alias move, a policy change, a monitoring action. */
function what(entry) {
  const d = entry.details || {};
  if (entry.action === "alias.moved") {
    return [badge(d.alias), ` ${d.from ? `v${d.from}` : "–"} → ${d.to ? `v${d.to}` : "removed"} (${d.cause})`];
  }
  if (entry.action === "policy.changed") return `promotion policy ${d.from?.mode ?? "?"} → ${d.to?.mode ?? "?"}`;
  if (entry.action.startsWith("rollout.") && d.rollout) {
    // The rollout's moves: which one, and for a step or a decision what it was.
    const detail = d.kind || d.decision || (d.candidate ? `v${d.candidate}` : "");
    return [badge(d.rollout), ` ${entry.action.slice("rollout.".length).replace("_", " ")}${detail ? ` (${detail})` : ""}`];
  }
  return entry.action;
}

function primaryMetric(model) {
  return model.policy?.metric || (model.task === "regression" ? "r2" : "accuracy");
}

/** The metrics that are better lower, as the API says (GET /api/metrics): asked once. */
let lowerIsBetter = null;

async function betterLower() {
  if (!lowerIsBetter) lowerIsBetter = new Set((await api("/api/metrics")).lower_is_better);
  return lowerIsBetter;
}

export async function viewModel(name) {
  const [model, better, history] = await Promise.all([
    api(`/api/models/${enc(name)}`), betterLower(), api(`/api/models/${enc(name)}/history?limit=${HISTORY_SHOWN}`)]);
  const metric = primaryMetric(model);
  const lower = better.has(metric);
  const metricNames = [...new Set(model.versions.flatMap((v) => Object.keys(v.metrics || {})))];
  const champion = model.aliases?.champion;

  const promote = (version) => async () => {
    try {
      const moved = await api(`/api/models/${enc(name)}/aliases/champion`, { method: "PUT", body: { version } });
      await rerender();
      banner(`champion moved to v${moved.version}${moved.previous ? ` (was v${moved.previous})` : ""}`, "info");
    } catch (exc) { actionFailed(exc); }
  };
  const rollback = async () => {
    try {
      const moved = await api(`/api/models/${enc(name)}/rollback`, { method: "POST" });
      await rerender();
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

  const entries = history.entries.map((e) =>
    h("tr", { "data-seq": e.seq },
      h("td", { text: when(e.at) }), h("td", { "data-actor": e.actor, text: e.actor }),
      h("td", {}, what(e)), h("td", { text: e.reason || "–" })));

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
          h("span", { class: "muted", text: "moving aliases needs an admin key" })))),
    rolloutsCard(model),
    monitoringCard(model),
    card("History", entries.length
      ? [table(["when", "who", "what", "why"], entries, { id: "history" }),
        h("p", { class: "muted", text: `latest ${entries.length} of ${history.total}; all of it: daprml models history ${name}` })]
      : h("p", { class: "muted", text: "Nothing done to this model yet." })),
    card("Versions", table(["version", "aliases", "estimator", "trained on", metricNames.map((k) => ({ class: "num", text: k })), "created", ""].flat(), rows, { id: "versions" })),
  ];
}
