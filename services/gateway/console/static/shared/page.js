/* The page around the views: the banner, the sign-in form, what a failed call shows, and what
 * a view leaves behind when another replaces it (its charts, its polling). */

import { ApiError, signOut } from "./api.js";
import { $, h } from "./dom.js";

/** The view on show: a view that polls keeps its timer here, and checks that `generation` is
 * still the one it started in before it touches the page (the user may have moved on). */
export const page = { generation: 0, pollTimer: null, charts: [] };
let renderer = null;

/** The router registers how to draw the current view; an action that changed it draws again. */
export function onRender(render) {
  renderer = render;
}

export function rerender() {
  return renderer();
}

export function cleanUp() {
  page.charts.forEach((c) => c.destroy());
  page.charts = [];
  clearTimeout(page.pollTimer);
  page.pollTimer = null;
  page.generation += 1;
}

export function banner(message, kind) {
  const el = $("banner");
  el.textContent = message;
  el.className = "banner" + (kind === "info" ? " info" : "");
  el.hidden = !message;
}

export function showLogin(message) {
  signOut();
  $("view").replaceChildren();
  $("signout").hidden = true;
  $("login").hidden = false;
  const err = $("login-error");
  err.textContent = message || "";
  err.hidden = !message;
  $("login-key").value = "";
  $("login-key").focus();
}

/** A failed read of a page: a key refused (401) or not allowed to read (403) asks for a key again. */
export function failed(exc) {
  if (exc instanceof ApiError && (exc.status === 401 || exc.status === 403)) {
    showLogin(`${exc.status === 401 ? "Refused" : "Not allowed"}: ${exc.message}`);
  } else {
    banner(exc.message || String(exc));
  }
}

/** A failed action (promote, train, predict): a refused key asks again; anything else, a 403 included, is shown. */
export function actionFailed(exc) {
  if (exc instanceof ApiError && exc.status === 401) showLogin(`Refused: ${exc.message}`);
  else banner(exc instanceof ApiError && exc.status === 403 ? `Not allowed: ${exc.message}` : exc.message);
}

/** A Chart.js chart (the vendored library, loaded before the modules), destroyed with its view. */
export function newChart(canvas, config) {
  if (!window.Chart) {
    canvas.replaceWith(h("p", { class: "error", text: "the chart library did not load" }));
    return null;
  }
  const chart = new window.Chart(canvas, config);
  page.charts.push(chart);
  return chart;
}
