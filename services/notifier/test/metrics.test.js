'use strict';
// node --test services/notifier/test   (run by tests/unit/notifier/test_node.py too)

const assert = require('node:assert/strict');
const http = require('node:http');
const { test } = require('node:test');
const { CONTENT_TYPE, Counter, NotifierMetrics, createMetricsServer } = require('../metrics');
const { EVENT_TYPE, SCHEMA_FILE, Notifier, loadConfig, loadEvent } = require('../notifier');
const { createServer } = require('../server');

const event = loadEvent(SCHEMA_FILE);
const moved = (payload = {}) => ({
  specversion: '1.0',
  id: `e-${Math.random()}`,
  source: '/daprml/registry',
  type: EVENT_TYPE,
  data: { model: 'iris', alias: 'champion', from: 1, to: 2, reason: 'api', ...payload },
});

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

/** The value of one series in Prometheus text, or undefined when there is no such line. */
function sample(text, series) {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('the text format: HELP and TYPE per family, _total on counters, labels escaped', () => {
  const counter = new Counter('x_things', 'Things\nseen', ['kind']);
  counter.inc({ kind: 'a"b\\c\nd' }, 2);
  counter.inc({ kind: 'plain' });
  assert.equal(counter.get({ kind: 'plain' }), 1);
  assert.deepEqual(counter.lines(), [
    '# HELP x_things Things\\nseen',
    '# TYPE x_things counter',
    'x_things_total{kind="a\\"b\\\\c\\nd"} 2',
    'x_things_total{kind="plain"} 1',
  ]);
  assert.throws(() => counter.inc({ kind: 'a' }, -1), /only goes up/);
  assert.throws(() => counter.inc({}), /label kind missing/);
});

test('the settings: DAPRML_METRICS_PORT is optional, a port, and never the app port', () => {
  assert.equal(loadConfig({}).metricsPort, null);
  assert.equal(loadConfig({ DAPRML_METRICS_PORT: '8105' }).metricsPort, 8105);
  assert.throws(() => loadConfig({ APP_PORT: '8005', DAPRML_METRICS_PORT: '8005' }), /must not be the app port/);
  assert.throws(() => loadConfig({ DAPRML_METRICS_PORT: 'x' }), /not a port/);
});

test('each delivery counts once by outcome; notifications by whether inference answered', async (t) => {
  let answer = () => ({ status: 200, text: async () => JSON.stringify({ versions: ['3'], inputs: [{}] }) });
  const sidecar = { invoke: async () => answer(), healthy: async () => true };
  const settings = { ...loadConfig({}), appToken: '' };
  const notifier = new Notifier(settings, event, sidecar);
  const metrics = new NotifierMetrics(() => notifier.table.size);
  const server = createServer(settings, notifier, sidecar, metrics);
  const url = `http://127.0.0.1:${await listen(server)}`;
  t.after(() => server.close());
  const deliver = async (body) =>
    (await fetch(`${url}/internal/events/model-aliases`, { method: 'POST', body: JSON.stringify(body) })).json();

  for (let i = 0; i < 3; i++) assert.deepEqual(await deliver(moved()), { status: 'SUCCESS' });
  assert.deepEqual(await deliver(moved({ alias: 'challenger' })), { status: 'SUCCESS' }); // not followed up
  assert.deepEqual(await deliver({ specversion: '1.0' }), { status: 'DROP' });
  assert.deepEqual(await deliver({ specversion: '1.0' }), { status: 'DROP' });
  answer = () => Promise.reject(new TypeError('fetch failed'));
  assert.deepEqual(await deliver(moved()), { status: 'RETRY' });

  const of = (outcome) => metrics.events.get({ type: EVENT_TYPE, outcome });
  assert.deepEqual([of('success'), of('dropped'), of('retry'), of('error')], [4, 2, 1, 0]);
  assert.equal(metrics.notifications.get({ outcome: 'sent' }), 3);
  assert.equal(metrics.notifications.get({ outcome: 'failed' }), 1);
  const text = metrics.render();
  assert.equal(sample(text, `daprml_notifier_events_total{type="${EVENT_TYPE}",outcome="success"}`), 4);
  assert.equal(sample(text, 'daprml_notifier_champions'), 1);
  assert.equal(sample(text, 'daprml_notifier_up'), 1);
  assert.ok(!text.includes('iris'), 'no model name is a label');
  // The app port has no /metrics.
  assert.equal((await fetch(`${url}/metrics`)).status, 404);
});

test('the metrics server answers GET /metrics in the text format, and nothing else', async (t) => {
  const metrics = new NotifierMetrics(() => 2, () => 1_700_000_000_000);
  metrics.delivered(EVENT_TYPE, { status: 'SUCCESS', notified: 'sent' });
  metrics.delivered(EVENT_TYPE, undefined); // the handler threw
  const server = createMetricsServer(metrics);
  const url = `http://127.0.0.1:${await listen(server)}`;
  t.after(() => server.close());
  const reply = await fetch(`${url}/metrics`);
  assert.equal(reply.status, 200);
  assert.equal(reply.headers.get('content-type'), CONTENT_TYPE);
  const text = await reply.text();
  assert.equal(sample(text, 'daprml_notifier_start_time_seconds'), 1_700_000_000);
  assert.equal(sample(text, 'daprml_notifier_champions'), 2);
  assert.equal(sample(text, `daprml_notifier_events_total{type="${EVENT_TYPE}",outcome="error"}`), 1);
  assert.equal(sample(text, 'daprml_notifier_notifications_total{outcome="sent"}'), 1);
  assert.match(text, /^# TYPE daprml_notifier_events counter$/m);
  assert.equal((await fetch(`${url}/`)).status, 404);
  assert.equal((await fetch(`${url}/metrics`, { method: 'POST' })).status, 405);
});

test('the process serves metrics on DAPRML_METRICS_PORT, bound to its host', async (t) => {
  const { spawn } = require('node:child_process');
  const path = require('node:path');
  const probe = http.createServer();
  const metricsPort = await listen(probe);
  await new Promise((resolve) => probe.close(resolve));
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'server.js')], {
    env: { ...process.env, APP_PORT: '0', DAPR_HTTP_PORT: '1', DAPRML_METRICS_PORT: String(metricsPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let text;
  for (let i = 0; i < 100 && text === undefined; i++) {
    try {
      text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  assert.ok(text !== undefined, 'no answer on the metrics port');
  assert.equal(sample(text, 'daprml_notifier_up'), 1);
});
