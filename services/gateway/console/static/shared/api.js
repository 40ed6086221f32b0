/* The gateway's public API, called with the user's API key.
 *
 * The key lives in this module's variable only, never in the browser's storage, which every
 * page of this origin (the API docs at /docs too) could read: a reload signs out. */

let apiKey = null;

export function signIn(key) {
  apiKey = key;
}

export function signOut() {
  apiKey = null;
}

export function signedIn() {
  return apiKey;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function detailOf(status, body) {
  if (body && typeof body === "object") {
    const detail = body.detail ?? body.error;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).join(" ")}: ${d.msg}`).join("; ");
  }
  return `HTTP ${status}`;
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${signedIn() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let reply;
  try {
    reply = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (exc) {
    throw new ApiError(0, `the gateway did not answer (${exc.message}); is the stack up?`);
  }
  const text = await reply.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!reply.ok) {
    const message = detailOf(reply.status, data);
    throw new ApiError(reply.status, reply.status >= 500 ? `${message} (HTTP ${reply.status})` : message);
  }
  return data;
}
