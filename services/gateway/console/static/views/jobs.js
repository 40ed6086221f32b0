/* The training jobs: the list (of one dataset, or all), followed live while a job runs. */

import { api } from "../shared/api.js";
import { badge, card, enc, h, table, when } from "../shared/dom.js";
import { actionFailed, banner, failed, page } from "../shared/page.js";

const POLL_MS = 2000;
const ACTIVE = new Set(["PENDING", "RUNNING"]);

export async function viewJobs(params) {
  const dataset = params.get("dataset");
  const query = new URLSearchParams({ limit: "200" });
  if (dataset) query.set("dataset", dataset);
  const mine = page.generation;
  const list = h("div", { id: "jobs-list" });
  const live = h("span", { id: "jobs-live", class: "muted" });

  async function refresh(first) {
    let data;
    try {
      data = await api(`/api/training/jobs?${query}`);
    } catch (exc) {
      if (first) throw exc;
      if (mine === page.generation) failed(exc);
      return;
    }
    if (mine !== page.generation) return;
    const running = data.jobs.some((j) => ACTIVE.has(j.status));
    live.textContent = running ? `live: refreshing every ${POLL_MS / 1000} s while a job runs` : `updated ${new Date().toLocaleTimeString()}`;
    live.dataset.polling = running ? "yes" : "no";
    list.replaceChildren(data.jobs.length ? jobsTable(data.jobs, cancel) : h("p", { class: "muted", text: "No training jobs." }));
    if (running) page.pollTimer = setTimeout(() => refresh(false), POLL_MS);
  }

  // DELETE needs the train role; a key without it is told so, and the list stays as it was.
  async function cancel(job) {
    try {
      const done = await api(`/api/training/jobs/${enc(job.id)}`, { method: "DELETE" });
      banner(`job ${done.id} ${done.status === "CANCELED" ? "canceled" : "is being canceled"}`, "info");
    } catch (exc) { actionFailed(exc); }
    if (mine !== page.generation) return;
    clearTimeout(page.pollTimer);
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
