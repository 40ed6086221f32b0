/* The model page's Rollouts card: the latest rollout (its status, the step it is in of its plan,
 * the traffic it set, its gates' readings against the champion, its outcome), refreshed every
 * few seconds while it runs; the older ones in a line each; Approve / Reject (a rollout waiting
 * for a person) and Abort (one not finished), each asking for a reason; and a form to start one
 * with a JSON plan. The buttons need an admin key: others are told so by the banner.
 *
 * It loads on its own after the page is drawn (GET /api/models/{name}/rollouts, the contract in
 * services/common/contracts/rollouts.py): a registry that is slow or restarting leaves the rest of
 * the page as it is, and a rollout being followed is asked again at the next tick. */

import { api } from "../shared/api.js";
import { card, enc, fill, fmt, h, table, when } from "../shared/dom.js";
import { actionFailed, banner, page } from "../shared/page.js";

const POLL_MS = 3000;
const OLDER_SHOWN = 10;
const FINISHED = new Set(["promoted", "completed", "rolled_back", "failed"]);
const DEFAULT_FOR = "10m"; // the contract's, for a step that does not say
const KINDS = ["shadow", "canary", "approval", "promote"];
// The job list's colours: running amber, done green, rolled back or failed red.
const STATUS_CLASS = {
  running: "status-RUNNING", waiting_for_approval: "status-RUNNING", promoted: "status-COMPLETED",
  completed: "status-COMPLETED", rolled_back: "status-FAILED", failed: "status-FAILED",
};

/** The card, empty at first. `model` is the registry's answer the page already has. */
export function rolloutsCard(model) {
  const body = h("div", { id: "rollouts", "data-state": "loading", "data-polling": "no" }, h("p", { class: "muted", text: "Loading…" }));
  const mine = page.generation;
  const base = `/api/models/${enc(model.name)}/rollouts`;
  let shown = null; // the last answer drawn: a failed refresh keeps it on show

  async function load() {
    clearTimeout(page.pollTimer);
    let answer;
    try {
      answer = await api(base);
    } catch (exc) {
      if (mine !== page.generation) return;
      if (shown && following(shown)) {
        // Mid-rollout the registry may be restarting: say so, keep what was shown, ask again.
        fill(body.querySelector("#rollouts-live") || body, `refresh failed (${exc.message}); trying again`);
        page.pollTimer = setTimeout(load, POLL_MS);
        return;
      }
      body.dataset.state = "unavailable";
      body.dataset.polling = "no";
      fill(body, h("p", { class: "notice", "data-unavailable": "rollouts", text: `Rollouts are unavailable (${exc.message}).` }));
      return;
    }
    if (mine !== page.generation) return;
    shown = answer;
    draw(answer.rollouts);
    if (following(answer)) page.pollTimer = setTimeout(load, POLL_MS);
  }

  async function decide(rollout, action) {
    const reason = window.prompt(`Why ${action} rollout ${rollout.id}? (kept in the model's history; may be empty)`, "");
    if (reason === null) return; // cancelled
    const query = reason.trim() ? `?reason=${enc(reason.trim())}` : "";
    try {
      const after = await api(`${base}/${enc(rollout.id)}/${action}${query}`, { method: "POST" });
      if (mine !== page.generation) return;
      banner(`rollout ${after.id}: ${words(after.status)}`, "info");
    } catch (exc) {
      if (mine === page.generation) actionFailed(exc);
    }
    if (mine === page.generation) await load();
  }

  async function start(textarea, button) {
    let request;
    try {
      request = JSON.parse(textarea.value);
    } catch (exc) {
      banner(`The plan is not valid JSON: ${exc.message}`);
      return;
    }
    button.disabled = true;
    try {
      const started = await api(base, { method: "POST", body: request });
      if (mine !== page.generation) return;
      banner(`rollout ${started.id} started: v${started.candidate}, ${started.plan.length} steps`, "info");
      await load();
    } catch (exc) {
      if (mine === page.generation) actionFailed(exc);
    } finally {
      button.disabled = false;
    }
  }

  function draw(rollouts) {
    const [latest, ...older] = rollouts;
    const live = h("span", { id: "rollouts-live", class: "muted" });
    const polling = latest && !FINISHED.has(latest.status);
    body.dataset.polling = polling ? "yes" : "no";
    live.textContent = polling ? `live: refreshed every ${POLL_MS / 1000} s while it runs` : `updated ${new Date().toLocaleTimeString()}`;
    if (!latest) {
      body.dataset.state = "empty";
      fill(body,
        h("p", { class: "muted", id: "rollouts-empty" },
          "No rollouts yet. A rollout brings a version to champion in steps (shadow, canary, approval, promote), " +
          "each held to gates on live evidence against the champion; from the terminal: ",
          h("code", { text: `daprml rollouts start ${model.name} --candidate V --plan shadow=20:10m,canary=30:200,approval,promote` })),
        startForm(start, model));
      return;
    }
    body.dataset.state = "shown";
    fill(body,
      current(latest, decide, live),
      older.length ? olderTable(older.slice(0, OLDER_SHOWN), rollouts.length - 1) : null,
      FINISHED.has(latest.status) ? startForm(start, model) : null);
  }

  queueMicrotask(load);
  return card("Rollouts", body);
}

/** Whether the answer's latest rollout is still going: the card asks again while it is. */
function following(answer) {
  const latest = answer.rollouts[0];
  return Boolean(latest && !FINISHED.has(latest.status));
}

function words(status) {
  return status.replaceAll("_", " ");
}

function kindOf(step) {
  return KINDS.find((k) => step[k] !== undefined && step[k] !== null && step[k] !== false);
}

/** One step in a few words: "canary 30% for 200 predictions", "approval (timeout 2h)". */
export function stepWords(step) {
  const kind = kindOf(step);
  const timeout = step.timeout ? ` (timeout ${step.timeout})` : "";
  if (kind === "shadow" || kind === "canary") {
    const lasts = typeof step.for === "number" ? `${fmt(step.for)} predictions` : step.for || DEFAULT_FOR;
    return `${kind} ${fmt(step[kind])}% for ${lasts}${timeout}`;
  }
  return `${kind}${timeout}`;
}

function weights(rollout) {
  const traffic = rollout.traffic || {};
  const canaries = traffic.canary || [];
  const shadows = traffic.shadows || [];
  const champion = 100 - canaries.reduce((sum, c) => sum + c.percent, 0);
  const served = [`champion${rollout.champion ? ` v${rollout.champion}` : ""} ${fmt(champion)}%`,
    ...canaries.map((c) => `canary v${c.version} ${fmt(c.percent)}%`)];
  const copied = shadows.length ? shadows.map((s) => `v${s.version} ${fmt(s.percent)}%`).join(", ") : "none";
  return h("p", { id: "rollout-weights", "data-champion-percent": champion, "data-canary": JSON.stringify(canaries), "data-shadows": JSON.stringify(shadows) },
    h("strong", { text: "Traffic: " }), `${served.join(", ")}; shadows (copies): ${copied}`);
}

function current(r, decide, live) {
  const index = r.step;
  const step = index !== null && index !== undefined ? r.plan[index] : null;
  const planItems = r.plan.map((s, i) =>
    h("li", { "data-step-index": i, class: i === index ? "current" : (index !== null && i < index ? "done" : "pending") }, stepWords(s)));
  const gates = (r.gate_results || []).map((g) => {
    const state = g.passed === null || g.passed === undefined ? "pending" : (g.passed ? "yes" : "no");
    return h("tr", { "data-gate": g.gate, "data-passed": state, class: state === "no" ? "failed" : null },
      h("td", { text: g.gate }),
      h("td", { class: "num", "data-candidate": g.candidate ?? "", text: fmt(g.candidate) }),
      h("td", { class: "num", text: fmt(g.champion) }),
      h("td", { class: "num", text: fmt(g.bound) }),
      h("td", { class: "num", "data-samples": g.samples, text: fmt(g.samples) }),
      h("td", { text: state === "pending" ? "not yet" : state }));
  });
  const buttons = [];
  if (r.status === "waiting_for_approval") {
    buttons.push(h("button", { id: "rollout-approve", "data-action": "approve", title: "needs an admin key", text: "Approve", onclick: () => decide(r, "approve") }));
    buttons.push(h("button", { id: "rollout-reject", class: "secondary", "data-action": "reject", title: "needs an admin key", text: "Reject", onclick: () => decide(r, "reject") }));
  }
  if (!FINISHED.has(r.status)) {
    buttons.push(h("button", { id: "rollout-abort", class: "secondary", "data-action": "abort", title: "needs an admin key", text: "Abort", onclick: () => decide(r, "abort") }));
  }
  return h("div", { id: "rollout-current", "data-rollout": r.id, "data-status": r.status },
    h("p", {},
      h("span", { class: STATUS_CLASS[r.status] || null, "data-rollout-status": r.status, text: words(r.status) }),
      ` · v${r.candidate} against champion ${r.champion ? `v${r.champion}` : "none"} · `,
      h("span", { class: "mono", text: r.id }), ` · started ${when(r.started_at)} by ${r.started_by}`,
      r.reason ? ` · ${r.reason}` : "", " · ", live),
    h("p", { id: "rollout-step", "data-step": index ?? "", "data-kind": step ? kindOf(step) : "" },
      h("strong", { text: step ? `Step ${index + 1} of ${r.plan.length}: ${stepWords(step)}` : `${r.plan.length} steps` }),
      step && (kindOf(step) === "shadow" || kindOf(step) === "canary")
        ? ` · ${fmt(r.step_predictions)} predictions of the candidate in this step, since ${when(r.step_started_at)}` : "",
      r.deadline && !FINISHED.has(r.status) ? ` · times out ${when(r.deadline)}` : ""),
    r.status === "waiting_for_approval"
      ? h("p", { class: "notice", id: "rollout-waiting", text: "Waiting for a person: approve to go on, reject to roll back." }) : null,
    h("ol", { id: "rollout-plan", class: "plan" }, planItems),
    weights(r),
    gates.length
      ? table(["gate", { class: "num", text: "candidate" }, { class: "num", text: "champion" }, { class: "num", text: "bound" },
        { class: "num", text: "samples" }, "passed"], gates, { id: "rollout-gates", class: "compact" })
      : h("p", { class: "muted", id: "rollout-no-gates", text: "No gate readings in this step." }),
    r.outcome ? h("p", { id: "rollout-outcome", "data-outcome": r.outcome }, h("strong", { text: "Outcome: " }), r.outcome) : null,
    buttons.length ? h("div", { class: "actions" }, buttons, h("span", { class: "muted", text: "deciding needs an admin key" })) : null);
}

function olderTable(rollouts, total) {
  const rows = rollouts.map((r) =>
    h("tr", { "data-rollout": r.id, "data-status": r.status },
      h("td", { class: "mono", text: r.id }), h("td", { text: `v${r.candidate}` }),
      h("td", { class: STATUS_CLASS[r.status] || null, text: words(r.status) }),
      h("td", { text: when(r.started_at) }), h("td", { text: r.started_by }), h("td", { text: r.outcome || "–" })));
  return [
    h("h3", { text: "Earlier rollouts" }),
    table(["rollout", "version", "status", "started", "by", "outcome"], rows, { id: "rollouts-older", class: "compact" }),
    total > rollouts.length ? h("p", { class: "muted", text: `latest ${rollouts.length} of ${total}; all: daprml rollouts list ${rollouts[0].model}` }) : null,
  ];
}

/** A plan to start from: the challenger (or the newest version that is not champion). */
function samplePlan(model) {
  const champion = model.aliases?.champion;
  const others = (model.versions || []).map((v) => v.version).filter((v) => v !== champion);
  const candidate = model.aliases?.challenger ?? (others.length ? Math.max(...others) : 2);
  return JSON.stringify({
    candidate,
    plan: [{ shadow: 20, for: "10m" }, { canary: 30, for: 200 }, { approval: true }, { promote: true }],
    reason: "",
  }, null, 2);
}

function startForm(start, model) {
  const textarea = h("textarea", { id: "rollout-request", rows: 9, cols: 70, spellcheck: "false", "aria-label": "the rollout: candidate, plan, reason (JSON)" });
  textarea.value = samplePlan(model);
  const button = h("button", { id: "rollout-start", title: "needs an admin key", text: "Start rollout" });
  button.addEventListener("click", () => start(textarea, button));
  return h("details", { id: "rollout-start-form" },
    h("summary", { text: "Start a rollout" }),
    h("p", { class: "muted", text: "The body of POST /api/models/{name}/rollouts: a step is {\"shadow\": PERCENT, \"for\": \"10m\"} " +
      "(or a number of predictions), {\"canary\": PERCENT, \"for\": ...}, {\"approval\": true} or {\"promote\": true} (last); " +
      "\"gates\" sets the gates. Needs an admin key." }),
    textarea,
    h("div", { class: "actions" }, button));
}
