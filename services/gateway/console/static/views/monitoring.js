/* The model page's Monitoring card: live accuracy (RMSE for regressors) per day against the
 * champion's holdout value, the live window's metrics with the pairs they rest on, the last
 * drift report's PSI per feature against the threshold, the policy, and "Run check now".
 *
 * It loads on its own after the page is drawn (GET /api/models/{name}/monitoring): a monitor
 * that is down or slow leaves the rest of the model page as it is, and the card says so. */

import { api, ApiError } from "../shared/api.js";
import { card, enc, fill, fmt, h, percent, table, when } from "../shared/dom.js";
import { actionFailed, banner, newChart, page } from "../shared/page.js";

const DAYS_SHOWN = 30;
const ACTIONS_SHOWN = 5;
const COLORS = ["#2f6fdf", "#1d8a4e", "#7b4bc4", "#138a9e", "#b7791f", "#d0527f"];
const DRIFTED = "#c2372f";
const CALM = "#2f6fdf";

/** The card, empty at first: it fills itself once the monitor answered (or did not). `model` is
 * the registry's answer the page already has (its versions' holdout metrics, its champion). */
export function monitoringCard(model) {
  const body = h("div", { id: "monitoring", "data-state": "loading" }, h("p", { class: "muted", text: "Loading…" }));
  const mine = page.generation;
  const charts = [];

  function dropCharts() {
    charts.splice(0).forEach((c) => {
      c.destroy();
      page.charts = page.charts.filter((x) => x !== c);
    });
  }

  async function load() {
    let view;
    try {
      view = await api(`/api/models/${enc(model.name)}/monitoring`);
    } catch (exc) {
      if (mine !== page.generation) return;
      dropCharts();
      const why = exc instanceof ApiError && exc.status === 403 ? `not allowed: ${exc.message}` : exc.message;
      body.dataset.state = "unavailable";
      fill(body, h("p", { class: "notice", "data-unavailable": "monitoring", text: `Monitoring is unavailable (${why}).` }));
      return;
    }
    if (mine !== page.generation) return;
    dropCharts();
    draw(view);
  }

  async function checkNow(button) {
    button.disabled = true;
    try {
      const result = await api(`/api/models/${enc(model.name)}/monitoring/check`, { method: "POST" });
      if (mine !== page.generation) return;
      await load();
      banner(checked(result), "info");
    } catch (exc) {
      if (mine === page.generation) actionFailed(exc);
    } finally {
      button.disabled = false;
    }
  }

  function draw(view) {
    const live = view.live;
    const empty = !view.policy && !view.reports.length && !view.checks.length && !(live && (live.pairs || live.held_predictions));
    const run = h("button", { id: "monitoring-check", class: "secondary", title: "needs an admin key", text: "Run check now" });
    run.addEventListener("click", () => checkNow(run));
    const actions = h("div", { class: "actions" }, run, h("span", { class: "muted", text: "checking needs an admin key" }));
    if (empty) {
      body.dataset.state = "empty";
      fill(body,
        h("p", { class: "muted", id: "monitoring-empty" },
          "Not monitored yet. Predictions are captured as they are made; send the actual values back ",
          h("code", { text: `POST /api/models/${model.name}/feedback` }), " for live accuracy, set a policy ",
          h("code", { text: `PUT /api/models/${model.name}/monitoring` }), " for scheduled drift checks, or run one now."),
        actions);
      return;
    }
    body.dataset.state = "shown";
    const liveBox = h("div", { class: "chart-cell" });
    const driftBox = h("div", { class: "chart-cell" });
    fill(body,
      h("div", { class: "chart-row" }, liveBox, driftBox),
      h("div", { class: "row" },
        h("div", { class: "monitoring-part" }, h("h3", { text: "Live window" }), liveTable(live)),
        h("div", { class: "monitoring-part" }, h("h3", { text: "Policy" }), policyList(view))),
      actionsTable(view.actions),
      actions);
    drawLive(liveBox, live);
    drawDrift(driftBox, lastReport(view.reports, model.aliases?.champion));
  }

  function drawLive(box, live) {
    const metric = live?.primary;
    const versions = (live?.versions || []).filter((v) => v.daily.some((d) => d.metrics[metric]));
    if (!metric || !versions.length) {
      fill(box, h("h3", { text: "Live accuracy per day" }),
        h("p", { class: "muted", id: "live-empty", text: "No predictions with their actual values yet: send feedback to see live metrics." }));
      return;
    }
    const days = [...new Set(versions.flatMap((v) => v.daily.map((d) => d.day)))].sort().slice(-DAYS_SHOWN);
    const champion = model.aliases?.champion;
    const holdout = model.versions.find((v) => v.version === champion)?.metrics?.[metric] ?? null;
    const canvas = h("canvas", { id: "live-chart", "aria-label": `live ${metric} per day` });
    fill(box, h("h3", { text: `Live ${metric} per day (UTC)` }), h("div", { class: "chart-box small" }, canvas),
      h("p", { class: "muted", id: "live-summary", "data-metric": metric, "data-holdout": holdout ?? "",
        text: holdout === null ? "no holdout value to compare with" : `dashed: champion v${champion}'s holdout ${metric} ${fmt(holdout)}` }));
    const datasets = versions.map((v, i) => {
      const byDay = new Map(v.daily.map((d) => [d.day, d.metrics[metric]]));
      const color = COLORS[i % COLORS.length];
      return {
        label: `v${v.version} live`, borderColor: color, backgroundColor: color, tension: 0, pointRadius: 3, spanGaps: true,
        data: days.map((d) => byDay.get(d)?.value ?? null), counts: days.map((d) => byDay.get(d)?.count ?? 0),
      };
    });
    if (holdout !== null) {
      datasets.push({ label: `v${champion} holdout`, data: days.map(() => holdout), borderColor: "#e0a100", borderDash: [6, 4], pointRadius: 0, borderWidth: 1.5 });
    }
    const chart = newChart(canvas, {
      type: "line",
      data: { labels: days, datasets },
      options: {
        maintainAspectRatio: false, animation: false,
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12, font: { size: 11 } } },
          tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${fmt(c.parsed.y, 3)}${c.dataset.counts ? ` (${c.dataset.counts[c.dataIndex]} pairs)` : ""}` } } },
        scales: { y: { title: { display: true, text: metric } } },
      },
    });
    if (chart) charts.push(chart);
  }

  function drawDrift(box, report) {
    if (!report) {
      fill(box, h("h3", { text: "Drift per feature" }),
        h("p", { class: "muted", id: "drift-empty", text: "No drift check yet: run one, or give the policy a schedule." }));
      return;
    }
    const entries = [...Object.entries(report.features), ...(report.output ? [["output", report.output]] : [])];
    const canvas = h("canvas", { id: "drift-chart", "aria-label": "PSI per feature" });
    const rows = entries.map(([name, f]) =>
      h("tr", { "data-feature": name, "data-drifted": f.drifted ? "yes" : "no", class: f.drifted ? "failed" : null },
        h("td", { text: name }), h("td", { class: "num", text: f.psi === null ? "too few rows" : fmt(f.psi, 3) }),
        h("td", { class: "num", text: percent(f.missing_share) }), h("td", { class: "num", text: percent(f.unseen_share) }),
        h("td", { text: f.drifted ? "drifted" : "–" })));
    fill(box,
      h("h3", { text: `Drift per feature: v${report.version}, ${when(report.at)}` }),
      h("div", { class: "chart-box small" }, canvas),
      h("p", { class: "muted", id: "drift-summary", "data-version": report.version, "data-drifted": report.drifted.join(","),
        text: `${fmt(report.rows)} rows (${when(report.window_from)} – ${when(report.window_to)}); PSI above ${fmt(report.threshold)} is drift (dashed); ` +
          (report.drifted.length ? `drifted: ${report.drifted.join(", ")}` : "nothing drifted") }),
      table(["feature", { class: "num", text: "PSI" }, { class: "num", text: "missing" }, { class: "num", text: "unseen" }, ""], rows,
        { id: "drift-table", class: "compact" }));
    const chart = newChart(canvas, {
      type: "bar",
      data: {
        labels: entries.map(([name]) => name),
        datasets: [
          { type: "bar", label: "PSI", data: entries.map(([, f]) => f.psi), backgroundColor: entries.map(([, f]) => (f.drifted ? DRIFTED : CALM)) },
          { type: "line", label: "threshold", data: entries.map(() => report.threshold), borderColor: "#5f6b7d", borderDash: [6, 4], pointRadius: 0, borderWidth: 1.5 },
        ],
      },
      options: {
        maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: (c) => `${c.dataset.label} ${fmt(c.parsed.y, 3)}` } } },
        scales: { y: { beginAtZero: true, title: { display: true, text: "PSI" } }, x: { ticks: { autoSkip: false, maxRotation: 30 } } },
      },
    });
    if (chart) charts.push(chart);
  }

  // After the page is in the document: the charts measure their boxes.
  queueMicrotask(load);
  return card("Monitoring", body);
}

/** The report to show: the most recent check's, the champion's among those of that check. */
function lastReport(reports, champion) {
  if (!reports.length) return null;
  const latest = reports.reduce((a, b) => (b.at > a.at ? b : a)).at;
  const of = reports.filter((r) => r.at === latest);
  return of.find((r) => r.version === champion) || of[0];
}

function metricCell(m) {
  return m ? `${fmt(m.value, 3)} (${fmt(m.count)})` : "–";
}

/** Each version's metrics over the sliding window, and today's (UTC) primary metric. */
function liveTable(live) {
  if (!live || !live.versions.length) return h("p", { class: "muted", text: "No live metrics: no feedback joined yet." });
  const names = [...new Set(live.versions.flatMap((v) => Object.keys(v.window.metrics)))];
  const today = new Date().toISOString().slice(0, 10);
  const primary = live.primary || "metric";
  const rows = live.versions.map((v) => {
    const day = v.daily.find((d) => d.day === today);
    return h("tr", { "data-live-version": v.version },
      h("td", { text: `v${v.version}` }), h("td", { class: "num", "data-pairs": v.window.count, text: fmt(v.window.count) }),
      names.map((n) => h("td", { class: "num", "data-metric": n, "data-value": v.window.metrics[n]?.value ?? "", text: metricCell(v.window.metrics[n]) })),
      h("td", { class: "num", text: day ? metricCell(day.metrics[primary]) : "–" }));
  });
  const span = live.settings ? `last ${fmt(live.settings.window_pairs)} pairs of ${fmt(live.settings.window_hours)} h` : "window";
  return [
    table(["version", { class: "num", text: "pairs" }, names.map((n) => ({ class: "num", text: n })), { class: "num", text: `today's ${primary}` }].flat(),
      rows, { id: "live-table", class: "compact" }),
    h("p", { class: "muted", text: `${span}; each value (pairs it rests on). ${fmt(live.pending)} actuals wait for their prediction${live.truncated ? "; older pairs were let go (truncated)" : ""}.` }),
  ];
}

function policyList(view) {
  const p = view.policy;
  if (!p) return h("p", { class: "muted", id: "policy", text: "No policy: checks run only when asked, with the defaults." });
  const span = [p.window_rows ? `${fmt(p.window_rows)} rows` : null, p.window_hours ? `${fmt(p.window_hours)} h` : null].filter(Boolean).join(", ");
  const pairs = [
    ["schedule", p.schedule || "only when asked"],
    ["window", span || "–"],
    ["drift threshold", `PSI > ${fmt(p.drift_threshold)}; missing +${percent(p.missing_rise)}; at least ${fmt(p.min_rows)} rows`],
    ["on drift", p.on_drift],
    ["on accuracy drop", `${p.on_accuracy_drop} (more than ${fmt(p.accuracy_drop)} below holdout)`],
    ["changed", `${when(view.changed_at)} by ${view.changed_by || "–"}`],
  ];
  return h("dl", { class: "stats", id: "policy", "data-schedule": p.schedule || "" }, pairs.map(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]));
}

function actionsTable(actions) {
  if (!actions.length) return null;
  const rows = actions.slice(0, ACTIONS_SHOWN).map((a) =>
    h("tr", { "data-action": a.action }, h("td", { text: when(a.at) }), h("td", { text: `v${a.version}` }),
      h("td", { text: a.action }), h("td", { text: a.reason })));
  return [h("h3", { text: "Latest actions" }), table(["when", "version", "action", "why"], rows, { id: "monitoring-actions", class: "compact" })];
}

function checked(result) {
  const drifted = result.reports.filter((r) => r.drifted.length).map((r) => `v${r.version}: ${r.drifted.join(", ")}`);
  const skipped = result.skipped.map((s) => `v${s.version} skipped (${s.reason})`);
  return [`check done: ${fmt(result.rows_read)} rows read`, drifted.length ? `drifted ${drifted.join("; ")}` : "nothing drifted", ...skipped].join("; ");
}
