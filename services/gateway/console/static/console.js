/* daprml console: one page, hash routes, the gateway's public API with the user's API key.
 *
 * The entry module: the routes to the views (views/, one module each), and signing in and out.
 * What every view uses is in shared/: the API and the key (api.js), DOM helpers (dom.js) and
 * the page around the views (page.js). Native ES modules, no bundler: the page's policy runs
 * scripts from the gateway's own files only.
 */

import { signIn, signedIn } from "./shared/api.js";
import { $, fill, h } from "./shared/dom.js";
import { banner, cleanUp, failed, onRender, page, showLogin } from "./shared/page.js";
import { viewDataset, viewDatasets, viewDatasetVersion } from "./views/datasets.js";
import { viewJobs } from "./views/jobs.js";
import { viewModel, viewModels } from "./views/models.js";
import { viewOperations } from "./views/operations.js";
import { viewPredict } from "./views/predict.js";
import { viewTrace } from "./views/trace.js";
import { viewModelVersion } from "./views/version.js";

const STORED_KEY = "daprml.apiKey"; // where earlier versions kept it: removed at start

const routes = [
  [/^datasets$/, viewDatasets],
  [/^datasets\/([^/]+)$/, viewDataset],
  [/^datasets\/([^/]+)\/versions\/([^/]+)$/, viewDatasetVersion],
  [/^jobs$/, viewJobs],
  [/^models$/, viewModels],
  [/^models\/([^/]+)$/, viewModel],
  [/^models\/([^/]+)\/versions\/([^/]+)$/, viewModelVersion],
  [/^models\/([^/]+)\/predict$/, viewPredict],
  [/^operations$/, viewOperations],
  [/^operations\/traces\/([0-9a-f]{32})$/, viewTrace],
];

onRender(render);

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
    const mine = page.generation;
    try {
      const content = await fn(...match.slice(1).map(decodeURIComponent), new URLSearchParams(query || ""));
      if (mine === page.generation) fill(view, content);
    } catch (exc) {
      if (mine === page.generation) {
        view.replaceChildren();
        failed(exc);
      }
    }
    return;
  }
  view.replaceChildren(h("p", { text: `No page ${path}. ` }, h("a", { href: "#/models", text: "Models" })));
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

// A module runs once the page is parsed (as a deferred script does), before DOMContentLoaded.
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
    signIn(key);
    banner("");
    if (!location.hash || location.hash === "#" || location.hash === "#/") location.hash = "#/models"; // renders
    else render();
  });
  $("signout").addEventListener("click", () => { banner(""); showLogin(); });
  window.addEventListener("hashchange", () => { banner(""); render(); });
  render();
});
