'use strict';
// What the notifier knows and does, apart from HTTP serving: it reads the `model alias changed`
// CloudEvents, keeps the latest champion of each model, and asks inference (through its own
// sidecar) what that champion looks like. No Python code is shared: the event's topic and payload
// schema come from services/common/events.schema.json, which the Python events module writes.

const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { compile } = require('./schema');

// The one event this service consumes; everything else about it comes from the schema file.
const EVENT_TYPE = 'io.daprml.model.alias.changed.v1';
const CHAMPION = 'champion';
const SCHEMA_FILE = path.join(__dirname, '..', 'common', 'events.schema.json');
const TOPIC_PREFIX = /^[A-Za-z0-9._-]{0,64}$/; // as ServiceSettings.topic_prefix
// A DNS name: dot-separated labels of letters, digits and inner hyphens (RFC 1123).
const HOST_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Whether a value names a host on its own: an IP address or a DNS name (no scheme, port or path). */
function isHost(value) {
  if (net.isIP(value)) return true;
  return value.length <= 253 && value.split('.').every((label) => HOST_LABEL.test(label));
}

class InvalidEvent extends Error {}

/** The settings, from the environment the dapr CLI gives every app. */
function loadConfig(env = process.env) {
  const config = {
    appId: env.APP_ID || 'notifier',
    appPort: Number(env.APP_PORT || 8005),
    host: env.DAPRML_HOST || '127.0.0.1',
    // Where this app's sidecar is, as ServiceSettings.dapr_host: on the same host locally and in a
    // Kubernetes pod, another container found by name in compose (e.g. notifier-daprd).
    daprHost: env.DAPRML_DAPR_HOST || '127.0.0.1',
    daprHttpPort: Number(env.DAPR_HTTP_PORT || 3500),
    appToken: env.APP_API_TOKEN || '',
    daprToken: env.DAPR_API_TOKEN || '',
    topicPrefix: env.DAPRML_TOPIC_PREFIX || '',
    pubsub: env.DAPRML_PUBSUB || 'pubsub',
    inferenceAppId: env.DAPRML_INFERENCE_APP_ID || 'inference',
    schemaFile: env.DAPRML_EVENTS_SCHEMA || SCHEMA_FILE,
    callTimeoutMs: Number(env.DAPRML_NOTIFIER_CALL_TIMEOUT_MS || 10000),
    // The metrics' own port (none: no metrics server); never the app port.
    metricsPort: env.DAPRML_METRICS_PORT ? Number(env.DAPRML_METRICS_PORT) : null,
  };
  const problems = [];
  for (const key of ['appPort', 'daprHttpPort', 'callTimeoutMs']) {
    if (!Number.isInteger(config[key]) || config[key] < 0) problems.push(`${key}: not a whole number`);
  }
  if (config.metricsPort !== null) {
    if (!Number.isInteger(config.metricsPort) || config.metricsPort < 1) problems.push('DAPRML_METRICS_PORT: not a port');
    else if (config.metricsPort === config.appPort) problems.push(`DAPRML_METRICS_PORT: must not be the app port ${config.appPort}`);
  }
  if (!TOPIC_PREFIX.test(config.topicPrefix)) problems.push('DAPRML_TOPIC_PREFIX: letters, digits, ".", "_" and "-" only');
  if (!isHost(config.daprHost)) {
    problems.push(
      `DAPRML_DAPR_HOST: ${JSON.stringify(config.daprHost)} is not a host name or IP address ` +
        '(say e.g. 127.0.0.1 or notifier-daprd: no scheme, port or path; the port is DAPR_HTTP_PORT)',
    );
  }
  if (problems.length) throw new Error(`invalid settings: ${problems.join('; ')}`);
  return config;
}

/** The event's entry of the schema file: {type, topic, schema}, its compiled validator, and the
 * deployment's dead-letter topic (without the prefix), which every subscription names. */
function loadEvent(schemaFile, type = EVENT_TYPE) {
  const file = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));
  const entry = file.events && file.events[type];
  if (!entry) throw new Error(`${schemaFile} describes no ${type} event`);
  const deadLetters = file.envelope.dead_letter_topic;
  if (typeof deadLetters !== 'string' || !deadLetters) throw new Error(`${schemaFile} names no dead-letter topic`);
  return {
    type: entry.type,
    topic: entry.topic,
    validate: compile(entry.schema),
    specversion: file.envelope.specversion,
    deadLetterTopic: deadLetters,
  };
}

/** The CloudEvent's attributes and payload, or InvalidEvent saying why not. */
function decode(body, event) {
  let envelope = body;
  if (Buffer.isBuffer(body) || typeof body === 'string') {
    try {
      envelope = JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw new InvalidEvent(`event body is not JSON: ${e.message}`);
    }
  }
  if (envelope === null || typeof envelope !== 'object' || Array.isArray(envelope)) {
    throw new InvalidEvent('event body is not a JSON object');
  }
  if (envelope.specversion !== event.specversion) {
    throw new InvalidEvent(`expected CloudEvents specversion ${event.specversion}, got ${JSON.stringify(envelope.specversion)}`);
  }
  for (const name of ['id', 'source']) {
    if (typeof envelope[name] !== 'string' || envelope[name] === '') throw new InvalidEvent(`the CloudEvent has no ${name}`);
  }
  if (envelope.type !== event.type) {
    throw new InvalidEvent(`expected event type ${event.type}, got ${JSON.stringify(envelope.type)}`);
  }
  const contentType = envelope.datacontenttype;
  if (contentType !== undefined && !/^application\/([a-z.+-]+\+)?json\b/i.test(String(contentType))) {
    throw new InvalidEvent(`expected JSON data, got datacontenttype ${JSON.stringify(contentType)}`);
  }
  let data = envelope.data;
  if (typeof data === 'string') {
    // Some publishers send the payload as a JSON string rather than an object (as events.decode reads it).
    try {
      data = JSON.parse(data);
    } catch {
      throw new InvalidEvent('event data is a string that is not JSON');
    }
  }
  if (data === undefined) throw new InvalidEvent('the CloudEvent has no data');
  const problems = event.validate(data);
  if (problems.length) throw new InvalidEvent(`invalid ${event.type} payload: ${problems.join('; ')}`);
  const attributes = { ...envelope };
  delete attributes.data;
  delete attributes.data_base64;
  return { attributes, payload: data };
}

/** Calls to this app's own sidecar, with the Dapr API token when there is one. */
class Sidecar {
  constructor(config, fetchImpl = globalThis.fetch) {
    // An IPv6 address goes in brackets in a URL.
    const host = net.isIP(config.daprHost) === 6 ? `[${config.daprHost}]` : config.daprHost;
    this.base = `http://${host}:${config.daprHttpPort}`;
    this.headers = config.daprToken ? { 'dapr-api-token': config.daprToken } : {};
    this.timeoutMs = config.callTimeoutMs;
    this.fetch = fetchImpl;
  }

  get(route, extraHeaders = {}) {
    return this.fetch(`${this.base}${route}`, {
      headers: { ...this.headers, ...extraHeaders },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
  }

  async healthy() {
    try {
      const reply = await this.get('/v1.0/healthz/outbound');
      return reply.status >= 200 && reply.status < 300;
    } catch {
      return false;
    }
  }

  /** The sidecar's metadata: its runtime version and the components it loaded (null if it does not answer). */
  async info() {
    try {
      const reply = await this.get('/v1.0/metadata');
      return reply.status === 200 ? await reply.json() : null;
    } catch {
      return null;
    }
  }

  /** GET a method of another app through service invocation. */
  invoke(appId, method, extraHeaders = {}) {
    return this.get(`/v1.0/invoke/${encodeURIComponent(appId)}/method/${method}`, extraHeaders);
  }
}

class Unreachable extends Error {}

class Notifier {
  constructor(config, event, sidecar, now = () => new Date()) {
    this.config = config;
    this.event = event;
    this.sidecar = sidecar;
    this.now = now;
    this.table = new Map(); // model -> {version, alias_changed_at, event_id, inference}
    this.asked = new Map(); // model -> how many metadata requests were started
    this.applied = new Map(); // model -> the number of the request whose answer is in the table
  }

  get topic() {
    return `${this.config.topicPrefix}${this.event.topic}`;
  }

  get route() {
    return `/internal/events/${this.event.topic}`;
  }

  /** The deployment's dead-letter topic: where Dapr moves what this service DROPs, or what it
   * still answers RETRY for after the resiliency policy's retries (the log says why). */
  get deadLetterTopic() {
    return `${this.config.topicPrefix}${this.event.deadLetterTopic}`;
  }

  /** What GET /dapr/subscribe answers: one programmatic subscription. */
  subscriptions() {
    return [{ pubsubname: this.config.pubsub, topic: this.topic, route: this.route, deadLetterTopic: this.deadLetterTopic }];
  }

  champions() {
    return Object.fromEntries([...this.table.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  /**
   * One delivery: {status: SUCCESS | RETRY | DROP, line, notified} (the line is what gets logged;
   * notified: `sent` when inference's answer was recorded, `failed` when it could not be asked).
   * Events come late, twice or out of order, so the event only says which model to look at:
   * the champion's version is what inference (which asks the registry) says it is now.
   */
  async deliver(body, headers = {}) {
    let attributes;
    let payload;
    try {
      ({ attributes, payload } = decode(body, this.event));
    } catch (e) {
      if (!(e instanceof InvalidEvent)) throw e;
      return { status: 'DROP', line: `dropping an invalid ${this.event.type} event (to ${this.deadLetterTopic}): ${e.message}` };
    }
    const what = `event ${attributes.id} (${payload.model} ${payload.alias} ${payload.from} -> ${payload.to}, ${payload.reason})`;
    if (payload.alias !== CHAMPION) return { status: 'SUCCESS', line: `${what}: not the champion, ignored` };

    const changedAt = validTime(attributes.time) || this.now().toISOString();
    const entry = this.table.get(payload.model) || { version: null, alias_changed_at: null, event_id: null, inference: null };
    if (!entry.alias_changed_at || changedAt >= entry.alias_changed_at) {
      entry.alias_changed_at = changedAt;
      entry.event_id = attributes.id;
    }
    this.table.set(payload.model, entry);

    const number = (this.asked.get(payload.model) || 0) + 1;
    this.asked.set(payload.model, number);
    let seen;
    try {
      seen = await this.askInference(payload.model, headers);
    } catch (e) {
      if (!(e instanceof Unreachable)) throw e;
      if (number > (this.applied.get(payload.model) || 0)) {
        entry.inference = { error: e.message, at: this.now().toISOString() };
      }
      return { status: 'RETRY', notified: 'failed', line: `${what}: will be retried (then moved to ${this.deadLetterTopic}), inference cannot be reached: ${e.message}` };
    }
    if (number < (this.applied.get(payload.model) || 0)) {
      return { status: 'SUCCESS', line: `${what}: a later answer of inference is recorded already` };
    }
    this.applied.set(payload.model, number);
    const before = entry.version;
    entry.version = seen.version === undefined ? null : seen.version;
    entry.inference = seen;
    const change =
      before === entry.version ? `champion still ${named(entry.version)}` : `champion ${named(before)} -> ${named(entry.version)}`;
    const detail = seen.error ? `inference: ${seen.error}` : `inference serves v${seen.version} with ${seen.inputs} inputs`;
    return { status: 'SUCCESS', notified: 'sent', line: `${what}: ${change}; ${detail}` };
  }

  /**
   * The champion's OIP model metadata from inference, through this app's sidecar:
   * {version, inputs, at}, or {error, at} when inference says the model has no champion.
   * Unreachable when it cannot be asked (its sidecar or app down, a timeout, a 5xx).
   */
  async askInference(model, headers) {
    const forward = {};
    for (const name of ['traceparent', 'tracestate']) if (headers[name]) forward[name] = headers[name];
    let reply;
    let text;
    try {
      reply = await this.sidecar.invoke(this.config.inferenceAppId, `v2/models/${encodeURIComponent(model)}`, forward);
      text = await reply.text();
    } catch (e) {
      throw new Unreachable(e.cause && e.cause.code ? `${e.message} (${e.cause.code})` : e.message);
    }
    const at = this.now().toISOString();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      // reported below
    }
    if (reply.status === 404 || reply.status === 400) {
      const error = (body && (body.error || body.detail || body.message)) || text.slice(0, 200);
      return { error: `${reply.status}: ${error}`, at };
    }
    if (reply.status !== 200 || !body || typeof body !== 'object') {
      const detail = body && (body.errorCode || body.error || body.message);
      throw new Unreachable(`inference answered ${reply.status}${detail ? ` ${detail}` : ''}`);
    }
    const versions = Array.isArray(body.versions) ? body.versions : [];
    const version = versions.length ? Number(versions[0]) : null;
    return {
      version: Number.isInteger(version) ? version : null,
      inputs: Array.isArray(body.inputs) ? body.inputs.length : 0,
      at,
    };
  }
}

function named(version) {
  return version === null ? 'none' : `v${version}`;
}

function validTime(value) {
  if (typeof value !== 'string') return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

module.exports = { EVENT_TYPE, SCHEMA_FILE, InvalidEvent, Notifier, Sidecar, decode, loadConfig, loadEvent };
