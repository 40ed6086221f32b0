/* Rendering helpers: every element is built with DOM calls (textContent, never innerHTML), so
 * names, column names and categories that came from uploaded data are shown as text, not run
 * as markup. */

export function h(tag, attrs, ...children) {
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
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

export const $ = (id) => document.getElementById(id);
export const enc = encodeURIComponent;

export function fmt(value, digits = 4) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    if (Math.abs(value) >= 1000) return value.toLocaleString("en-US", { maximumFractionDigits: 1 });
    return Number(value.toPrecision(digits)).toString();
  }
  return String(value);
}

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

export function percent(share) {
  return share > 0 && share < 0.0001 ? "<0.01%" : `${fmt(100 * share, 3)}%`;
}

export function table(headers, rows, attrs) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((c) => h("th", typeof c === "string" ? { text: c } : c)))),
    h("tbody", {}, rows));
}

export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", { text: title }) : null, children);
}

export function bars(entries, opts = {}) {
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

export function badge(alias) {
  return h("span", { class: `badge ${alias}`, "data-alias": alias, text: alias });
}

export function crumbs(...parts) {
  return h("div", { class: "crumbs" }, parts.map((p, i) => [i ? " / " : "", p]));
}
