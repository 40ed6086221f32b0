/* One trace as a waterfall: a row per span in start order, indented by its depth, its bar placed
 * by when it started and sized by how long it took, coloured by the service (app id) that
 * recorded it; failed spans marked. From GET /api/operations/traces/{id}, which keeps a few safe
 * attributes of each span (click a row for them).
 *
 * Why here: the Jaeger that `make up` builds from its Go module has no web UI (its UI is built
 * with npm elsewhere), only the query API the gateway reads. */

import { api, ApiError } from "../shared/api.js";
import { card, crumbs, fmt, h, when } from "../shared/dom.js";

const COLORS = ["#2f6fdf", "#1d8a4e", "#b7791f", "#7b4bc4", "#138a9e", "#d0527f", "#5f6b7d", "#8a5a2b"];
const TICKS = [0, 0.25, 0.5, 0.75, 1];

export async function viewTrace(traceId) {
  const head = [crumbs(h("a", { href: "#/operations", text: "Operations" }), "trace"),
    h("h1", {}, "Trace ", h("span", { class: "mono", text: traceId }))];
  let trace;
  try {
    trace = await api(`/api/operations/traces/${encodeURIComponent(traceId)}`);
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 404) return [...head, h("p", { class: "notice", id: "trace-missing", text: exc.message })];
    throw exc;
  }
  if (!trace.available) return [...head, h("p", { class: "notice", "data-unavailable": "trace", text: trace.reason })];
  const color = new Map(trace.services.map((s, i) => [s, COLORS[i % COLORS.length]]));
  const failures = trace.spans.filter((s) => s.error).length;
  return [
    ...head,
    h("p", { class: "muted" },
      `${when(trace.started_at)} · `, h("strong", { id: "trace-duration", text: `${ms(trace.duration_ms)}` }),
      ` · ${trace.spans.length} spans`, trace.truncated ? " (the first ones shown)" : "",
      failures ? h("span", { class: "error" }, ` · ${failures} failed`) : ""),
    h("p", { class: "wf-legend" }, trace.services.map((s) =>
      h("span", { class: "wf-key", "data-legend": s }, h("span", { class: "wf-swatch", style: { background: color.get(s) } }), s))),
    card(null, waterfall(trace, color),
      h("p", { class: "muted small", text: "A row per span, in start order, indented under the span it is part of. An app and its Dapr sidecar share the app id; the sidecar's spans are its calls (CallLocal/…, pub/sub, state). Click a row for its attributes." })),
  ];
}

function waterfall(trace, color) {
  const total = Math.max(trace.duration_ms, 0.001);
  const axis = h("div", { class: "wf-row wf-axis" }, h("div", { class: "wf-label muted small", text: "service · operation" }),
    h("div", { class: "wf-track" }, TICKS.map((t) =>
      h("span", { class: "wf-tick", style: t === 1 ? { right: "0" } : { left: `${t * 100}%` }, text: ms(t * total) }))));
  const rows = trace.spans.flatMap((span) => {
    const left = (100 * span.start_ms) / total;
    const width = Math.min((100 * span.duration_ms) / total, 100 - left);
    // Its time: right of the bar if there is room, else left of it, else inside its end.
    const place = left + width <= 75 ? "after" : left >= 15 ? "before" : "inside";
    const at = { after: { left: `${left + width}%` }, before: { right: `${100 - left}%` }, inside: { right: `${100 - left - width}%` } }[place];
    const detail = h("div", { class: "wf-detail", hidden: true }, details(span));
    const toggle = () => { detail.hidden = !detail.hidden; };
    const row = h("div", {
      class: `wf-row${span.error ? " wf-error" : ""}`, tabindex: "0", role: "button", "aria-expanded": "false",
      "data-span": span.span_id, "data-service": span.service, "data-depth": span.depth, "data-error": String(span.error),
      title: `${span.service}: ${span.operation} (${ms(span.duration_ms)})`,
      onclick: () => { toggle(); row.setAttribute("aria-expanded", String(!detail.hidden)); },
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); row.click(); } },
    },
    h("div", { class: "wf-label", style: { paddingLeft: `${Math.min(span.depth, 12) * 14 + 4}px` } },
      h("span", { class: "wf-swatch", style: { background: color.get(span.service) } }),
      span.error ? h("span", { class: "wf-failed", title: "failed", text: "!" }) : null,
      h("span", { class: "wf-service", text: span.service }),
      h("span", { class: "wf-op mono", text: span.operation })),
    h("div", { class: "wf-track" },
      h("div", { class: "wf-bar", "data-start-ms": span.start_ms, "data-duration-ms": span.duration_ms,
        style: { left: `${left}%`, width: `${width}%`, background: color.get(span.service) } }),
      h("span", { class: `wf-time wf-time-${place}`, style: at, text: ms(span.duration_ms) })));
    return [row, detail];
  });
  return h("div", { class: "waterfall", id: "trace-waterfall" }, axis, rows);
}

function details(span) {
  const facts = [
    ["service", span.service], ["operation", span.operation], ["span", span.span_id], ["parent", span.parent_id || "–"],
    ["starts at", ms(span.start_ms)], ["took", ms(span.duration_ms)], ["failed", span.error ? "yes" : "no"],
    ...Object.entries(span.tags),
  ];
  return h("dl", { class: "wf-facts" }, facts.map(([k, v]) => [h("dt", { text: k }), h("dd", { class: "mono", text: String(v) })]));
}

function ms(value) {
  return value >= 1000 ? `${fmt(value / 1000, 3)} s` : `${fmt(value, 3)} ms`;
}
