/* Operations: each service's and each model's traffic (request rate, p50/p99 latency, error
 * rate) as charts over a window, the slowest recent requests linked to their waterfalls, and each
 * replica with its sidecar. All from the gateway's /api/operations endpoints (Prometheus and
 * the trace backend behind them), refreshed while the page is shown. */

import { api, ApiError, signedIn } from "../shared/api.js";
import { card, fill, fmt, h, percent, table, when } from "../shared/dom.js";
import { failed, newChart, page } from "../shared/page.js";

const POLL_MS = 15000;
const WINDOWS = ["15m", "1h", "6h"];
const SERVICES = ["gateway", "ingestion", "training", "registry", "inference", "monitor", "notifier"]; // the traces' filter
const COLORS = ["#2f6fdf", "#1d8a4e", "#c2372f", "#b7791f", "#7b4bc4", "#138a9e", "#d0527f", "#5f6b7d"];
// The three charts of a group: what each shows, and how a value reads.
const PANELS = [
  ["rate", "Request rate (req/s)", (v) => v],
  ["latency", "Latency p99 / p50 dashed (ms)", (v) => (v === null ? null : v * 1000)],
  ["errors", "Error rate (%)", (v) => (v === null ? null : v * 100)],
];

export async function viewOperations(params) {
  const range = WINDOWS.includes(params.get("window")) ? params.get("window") : "1h"; // not `window`: the global
  const reached = SERVICES.includes(params.get("service")) ? params.get("service") : ""; // traces: all, or one service's
  // Traces of one gateway route only (the gateway answers 400 to anything but its own routes):
  // on a busy stack the slowest requests are uploads and training, never a prediction.
  const operation = (params.get("operation") || "").slice(0, 200);
  const route = (w, s, o = operation) =>
    `#/operations?window=${w}${s ? `&service=${s}` : ""}${o ? `&operation=${encodeURIComponent(o)}` : ""}`;
  const mine = page.generation;
  const charts = new Map(); // canvas id -> its chart, updated in place on each refresh
  const live = h("span", { id: "ops-live", class: "muted" });
  const services = h("div", { id: "ops-services" });
  const models = h("div", { id: "ops-models" });
  const traces = h("div", { id: "ops-traces" });
  const replicas = h("div", { id: "ops-replicas" });

  const load = () => Promise.all([
    api(`/api/operations/services?window=${range}`),
    api(`/api/operations/models?window=${range}`),
    api(`/api/operations/traces?window=${range}&limit=10${reached ? `&service=${reached}` : ""}${operation ? `&operation=${encodeURIComponent(operation)}` : ""}`),
    api("/api/operations/replicas"),
  ]);

  function draw([svc, mdl, trc, rep]) {
    drawTraffic(services, "services", svc, svc.services, (s) => s.service, (s) => ({ "data-service": s.service, title: s.app_id }));
    drawTraffic(models, "models", mdl, mdl.models, (m) => `${m.model} v${m.version}`, (m) => ({ "data-model": m.model, "data-version": m.version }));
    fill(traces, tracesTable(trc, (o) => route(range, reached, o))); // an element or a list of them
    fill(replicas, replicasTable(rep));
    live.textContent = `updated ${new Date().toLocaleTimeString()}; refreshing every ${POLL_MS / 1000} s while shown`;
    live.dataset.polling = "yes";
  }

  /** A group's table of current values, and its three charts (made once, then updated). */
  function drawTraffic(box, group, report, entries, label, attrs) {
    if (!report.available) {
      for (const [panel] of PANELS) forget(`ops-${group}-${panel}`);
      box.replaceChildren(h("p", { class: "notice", "data-unavailable": group, text: report.reason }));
      return;
    }
    if (!box.querySelector("canvas")) {
      box.replaceChildren(
        h("div", { class: "current" }),
        h("div", { class: "chart-row" }, PANELS.map(([panel, title]) =>
          h("div", { class: "chart-cell" }, h("h3", { text: title }),
            h("div", { class: "chart-box small" }, h("canvas", { id: `ops-${group}-${panel}`, "aria-label": `${group}: ${title}` }))))));
    }
    const rows = entries.map((e) => h("tr", attrs(e),
      h("td", { text: label(e) }),
      signalCell("rate", e.current.rate, fmt(e.current.rate, 3)),
      signalCell("p50_s", e.current.p50_s, ms(e.current.p50_s)),
      signalCell("p99_s", e.current.p99_s, ms(e.current.p99_s)),
      signalCell("error_share", e.current.error_share, e.current.error_share === null ? "–" : percent(e.current.error_share))));
    box.querySelector(".current").replaceChildren(entries.length
      ? table([group === "models" ? "model" : "service", ...["req/s", "p50", "p99", "errors"].map((t) => ({ class: "num", text: t }))], rows, { id: `ops-${group}-table` })
      : h("p", { class: "muted", text: group === "models" ? "No predictions in this window." : "No requests in this window." }));
    const labels = report.times.map((t) => clock(t, report.step_s));
    for (const [panel, , scale] of PANELS) {
      const datasets = entries.flatMap((e, i) => {
        const color = COLORS[i % COLORS.length];
        const line = (name, values, dashed) => ({
          label: name, data: values.map(scale), borderColor: color, backgroundColor: color,
          borderDash: dashed ? [4, 3] : [], pointRadius: 1.5, borderWidth: 1.5, spanGaps: false, tension: 0,
        });
        if (panel === "latency") return [line(label(e), e.series.p99_s, false), line(`${label(e)} p50`, e.series.p50_s, true)];
        return [line(label(e), panel === "rate" ? e.series.rate : e.series.error_share, false)];
      });
      chartOf(`ops-${group}-${panel}`, labels, datasets, box);
    }
  }

  function forget(id) {
    const chart = charts.get(id);
    if (!chart) return;
    chart.destroy();
    charts.delete(id);
    page.charts = page.charts.filter((c) => c !== chart);
  }

  function chartOf(id, labels, datasets, box) {
    const existing = charts.get(id);
    if (existing) {
      existing.data.labels = labels;
      existing.data.datasets = datasets;
      existing.update("none");
      return;
    }
    const canvas = box.querySelector(`#${id}`);
    const chart = newChart(canvas, {
      type: "line",
      data: { labels, datasets },
      options: {
        maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        // p50 and p99 share their colour: the legend names each service once (p99 solid, p50 dashed).
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12, font: { size: 11 }, filter: (item) => !item.text.endsWith(" p50") } },
          tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${fmt(c.parsed.y, 3)}` } } },
        scales: { x: { ticks: { maxTicksLimit: 6, autoSkip: true, maxRotation: 0 } }, y: { beginAtZero: true } },
      },
    });
    if (chart) charts.set(id, chart);
  }

  async function refresh() {
    page.pollTimer = null;
    if (mine !== page.generation || !signedIn()) return; // moved on, or signed out
    if (!document.hidden) {
      try {
        const data = await load();
        if (mine !== page.generation) return;
        draw(data);
      } catch (exc) {
        if (mine !== page.generation) return;
        failed(exc);
        if (exc instanceof ApiError && (exc.status === 401 || exc.status === 403)) return; // asked to sign in again
      }
    }
    page.pollTimer = setTimeout(refresh, POLL_MS);
  }

  const first = await load();
  // Tables now; the charts once the view is in the page (Chart.js sizes them from it).
  setTimeout(() => {
    if (mine !== page.generation) return;
    draw(first);
    page.pollTimer = setTimeout(refresh, POLL_MS);
  }, 0);

  return [
    h("h1", { text: "Operations" }),
    h("p", { class: "muted" }, "last ", WINDOWS.map((w, i) => [i ? " · " : "",
      w === range ? h("strong", { text: w }) : h("a", { href: route(w, reached), "data-window": w, text: w })]), " · ", live),
    card("Services", h("p", { class: "muted", text: "HTTP requests each service answered (health probes left out); errors are 5xx answers." }), services),
    card("Models", h("p", { class: "muted", text: "Predictions per model version on the inference replicas; errors are requests that failed on the server's side." }), models),
    card("Slowest requests through the gateway",
      h("p", { class: "muted" }, "reaching ", ["", ...SERVICES].map((s, i) => [i ? " · " : "",
        s === reached ? h("strong", { text: s || "any service" }) : h("a", { href: route(range, s), "data-service-filter": s || "any", text: s || "any service" })]),
        operation ? [" · to ", h("strong", { class: "mono", "data-operation-filter": operation, text: operation }), " (",
          h("a", { href: route(range, reached, ""), "data-operation-filter": "any", text: "any operation" }), ")"] : " · any operation (pick one in the table)"),
      traces),
    card("Replicas and sidecars", replicas),
  ];
}

function signalCell(signal, value, text) {
  return h("td", { class: "num", "data-signal": signal, "data-value": value ?? "", text });
}

function ms(seconds) {
  return seconds === null || seconds === undefined ? "–" : `${fmt(seconds * 1000, 3)} ms`;
}

function clock(unix, step) {
  const d = new Date(unix * 1000);
  const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", ...(step < 60 ? { second: "2-digit" } : {}) };
  return d.toLocaleTimeString([], options);
}

function tracesTable(report, filtered) {
  if (!report.available) return h("p", { class: "notice", "data-unavailable": "traces", text: report.reason });
  // Each opens in the console's own trace view (views/trace.js): the Jaeger make up builds has no UI.
  if (!report.traces.length) return h("p", { class: "muted", text: "No traces through the gateway in this window." });
  const rows = report.traces.map((t) => h("tr", { "data-trace": t.trace_id, class: t.error ? "failed" : null },
    h("td", { title: when(t.started_at), text: new Date(t.started_at).toLocaleTimeString() }),
    h("td", { class: "mono" }, h("a", { href: filtered(t.operation), title: `only ${t.operation}`, "data-operation": t.operation, text: t.operation })),
    h("td", { class: "num", "data-duration-ms": t.duration_ms, text: `${fmt(t.duration_ms, 4)} ms` }),
    h("td", { class: "num", text: fmt(t.spans) }),
    h("td", { class: "small", text: t.services.join(", ") }),
    h("td", {}, h("a", { href: `#/operations/traces/${t.trace_id}`, "data-trace-link": t.trace_id, text: t.error ? "open (error)" : "open" }))));
  return table(["started", "operation", { class: "num", text: "duration" }, { class: "num", text: "spans" }, "services", "trace"], rows, { id: "ops-traces-table", class: "compact" });
}

function replicasTable(report) {
  const rows = report.services.map((s) => h("tr", { "data-replicas": s.service, "data-reachable": String(s.reachable) },
    h("td", { title: s.app_id, text: s.service }),
    h("td", {}, state(s.reachable, s.reachable ? "reachable" : "down"), s.error ? h("div", { class: "error small", text: s.error }) : null),
    h("td", { class: "mono", text: s.runtime_version || "–" }),
    h("td", {}, s.instances.length ? s.instances.map((i) => h("div", { "data-instance": i.instance, "data-up": String(i.up), title: i.error || `last heartbeat ${i.last_heartbeat_s} s ago` },
      state(i.up, i.up ? "up" : "down"), " ", h("span", { class: "mono", text: i.instance }))) : h("span", { class: "muted", text: "no heartbeats" })),
    h("td", {}, s.targets.length ? s.targets.map((t) => h("div", { "data-target": t.kind, "data-up": String(t.up), title: t.instance },
      state(t.up, t.up ? "up" : "down"), ` ${t.kind}`)) : h("span", { class: "muted", text: "–" }))));
  return [
    table(["service", "Dapr", "daprd", "replicas (heartbeats)", "scraped"], rows, { id: "ops-replicas-table", class: "compact" }),
    report.metrics.available ? null : h("p", { class: "muted small", "data-unavailable": "targets", text: report.metrics.reason }),
  ];
}

function state(ok, text) {
  return h("span", { class: `state ${ok ? "state-up" : "state-down"}`, text });
}
