'use strict';
// The notifier's metrics in Prometheus' text format (version 0.0.4), with no dependencies: a few
// counters and gauges, served at /metrics on a port of their own (DAPRML_METRICS_PORT, on the
// app's host: 127.0.0.1), never on the app port. Labels are fixed words and the one event type
// it consumes: never a model name (an event names those).

const http = require('node:http');

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function escapeLabel(value) {
  return String(value).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(text) {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value) {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** One metric and its series, one per set of label values. */
class Family {
  constructor(name, help, type, labelNames) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.labelNames = labelNames;
    this.series = new Map(); // JSON of the label values -> value
    this.read = null; // a gauge read when scraped
  }

  key(labels) {
    const values = this.labelNames.map((name) => {
      if (!(name in labels)) throw new Error(`${this.name}: label ${name} missing`);
      return String(labels[name]);
    });
    return JSON.stringify(values);
  }

  lines() {
    const out = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    const name = this.type === 'counter' ? `${this.name}_total` : this.name;
    if (this.read) {
      out.push(`${name} ${formatValue(this.read())}`);
      return out;
    }
    for (const [key, value] of this.series) {
      const values = JSON.parse(key);
      const labels = this.labelNames.map((label, i) => `${label}="${escapeLabel(values[i])}"`).join(',');
      out.push(`${name}${labels ? `{${labels}}` : ''} ${formatValue(value)}`);
    }
    return out;
  }
}

class Counter extends Family {
  constructor(name, help, labelNames = []) {
    super(name, help, 'counter', labelNames);
  }

  inc(labels = {}, by = 1) {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter only goes up`);
    const key = this.key(labels);
    this.series.set(key, (this.series.get(key) || 0) + by);
  }

  get(labels = {}) {
    return this.series.get(this.key(labels)) || 0;
  }
}

class Gauge extends Family {
  constructor(name, help, read) {
    super(name, help, 'gauge', []);
    this.read = read;
  }
}

/** The notifier's metrics; `champions` says how many models the table holds. */
class NotifierMetrics {
  constructor(champions = () => 0, now = () => Date.now()) {
    const started = now() / 1000;
    this.events = new Counter(
      'daprml_notifier_events',
      'Event deliveries by type and outcome: success, dropped (invalid: dead-lettered at once), retry (failed: delivered again, then dead-lettered), error (the handler broke: answered 500)',
      ['type', 'outcome'],
    );
    this.notifications = new Counter(
      'daprml_notifier_notifications',
      "Champion changes followed up with inference: sent (the champion's metadata read and recorded), failed (inference could not be asked)",
      ['outcome'],
    );
    this.families = [
      new Gauge('daprml_notifier_up', 'Whether the notifier process runs (1)', () => 1),
      new Gauge('daprml_notifier_start_time_seconds', 'When the process started, in seconds since the epoch', () => started),
      new Gauge('daprml_notifier_champions', 'Models whose champion the notifier follows', champions),
      this.events,
      this.notifications,
    ];
  }

  /** One delivery's outcome as the route answered it ({status, notified}), or a handler that threw. */
  delivered(type, outcome) {
    const status = outcome ? { SUCCESS: 'success', DROP: 'dropped', RETRY: 'retry' }[outcome.status] || 'error' : 'error';
    this.events.inc({ type, outcome: status });
    if (outcome && outcome.notified) this.notifications.inc({ outcome: outcome.notified });
  }

  render() {
    return `${this.families.flatMap((family) => family.lines()).join('\n')}\n`;
  }
}

/** The metrics server: GET /metrics only. */
function createMetricsServer(metrics) {
  return http.createServer((request, response) => {
    const route = new URL(request.url, 'http://notifier').pathname;
    if (route !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' });
      response.end('not found\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' });
      response.end('method not allowed\n');
      return;
    }
    const text = metrics.render();
    response.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
    response.end(request.method === 'HEAD' ? undefined : text);
  });
}

module.exports = { CONTENT_TYPE, Counter, Gauge, NotifierMetrics, createMetricsServer };
