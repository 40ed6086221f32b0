/* One model version: its holdout metrics, parameters, confusion matrix and features. */

import { api } from "../shared/api.js";
import { badge, card, crumbs, enc, fmt, h, table, when } from "../shared/dom.js";

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

export async function viewModelVersion(name, version) {
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
