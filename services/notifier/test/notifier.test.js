'use strict';
// node --test services/notifier/test   (run by tests/unit/notifier/test_node.py too)

const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const { test } = require('node:test');
const { compile } = require('../schema');
const { EVENT_TYPE, SCHEMA_FILE, Notifier, Sidecar, decode, loadConfig, loadEvent } = require('../notifier');
const { createServer } = require('../server');

const event = loadEvent(SCHEMA_FILE);
const moved = (payload, extra = {}) => ({
  specversion: '1.0',
  id: extra.id || `e-${Math.random()}`,
  source: '/daprml/registry',
  type: EVENT_TYPE,
  datacontenttype: 'application/json',
  data: { model: 'iris', alias: 'champion', from: 1, to: 2, reason: 'api', ...payload },
  ...extra,
});

test('every schema the events module exports compiles (no keyword this validator lacks)', () => {
  const file = JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8'));
  assert.ok(Object.keys(file.events).length >= 5);
  for (const entry of Object.values(file.events)) compile(entry.schema);
  assert.equal(event.topic, 'model-aliases');
});

test('an unknown schema keyword fails at compile time, not silently', () => {
  assert.throws(() => compile({ type: 'object', oneOf: [] }), /oneOf/);
});

test('the alias payload schema accepts what the registry sends and refuses the rest', () => {
  assert.deepEqual(event.validate({ model: 'iris', alias: 'champion', from: null, to: 2, reason: 'promotion' }), []);
  const bad = [
    { model: 'iris', alias: 'champion', from: null, reason: 'api' }, // no `to`
    { model: 'Iris!', alias: 'champion', from: null, to: 2, reason: 'api' }, // model name
    { model: 'iris', alias: 'champion', from: null, to: '2', reason: 'api' }, // a string
    { model: 'iris', alias: 'champion', from: 1.5, to: 2, reason: 'api' }, // not an integer
    { model: 'iris', alias: 7, from: null, to: 2, reason: 'api' },
    [],
  ];
  for (const payload of bad) assert.notDeepEqual(event.validate(payload), [], JSON.stringify(payload));
});

test('other schemas: minimum, lengths, date-time, arrays, additionalProperties', () => {
  const file = JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8'));
  const logged = compile(file.events['io.daprml.inference.prediction.logged.v1'].schema);
  const good = {
    model: 'iris', version: 1, request_id: 'r', at: '2025-01-02T03:04:05.123456Z', records: 1,
    inputs: [{ a: 1 }], predictions: [0], latency_ms: 1.5,
  };
  assert.deepEqual(logged(good), []);
  assert.notDeepEqual(logged({ ...good, at: 'yesterday' }), []);
  assert.notDeepEqual(logged({ ...good, version: 0 }), []);
  assert.notDeepEqual(logged({ ...good, inputs: [1] }), []);
  const registered = compile(file.events['io.daprml.model.version.registered.v1'].schema);
  const model = { model: 'm', version: 1, dataset: 'd', dataset_version: 1, estimator: 'e', job_id: 'j', artifact_sha256: 'x' };
  assert.deepEqual(registered({ ...model, metrics: { accuracy: 0.9 } }), []);
  assert.notDeepEqual(registered({ ...model, metrics: { accuracy: 'high' } }), []);
});

test('decode checks the CloudEvent envelope and reads data sent as a JSON string', () => {
  assert.equal(decode(Buffer.from(JSON.stringify(moved({}))), event).payload.to, 2);
  const stringData = moved({});
  stringData.data = JSON.stringify(stringData.data);
  assert.equal(decode(stringData, event).payload.model, 'iris');
  assert.throws(() => decode(Buffer.from('not json'), event), /not JSON/);
  assert.throws(() => decode({ ...moved({}), type: 'io.daprml.roundtrip.ping.v1' }, event), /expected event type/);
  assert.throws(() => decode({ ...moved({}), id: '' }, event), /no id/);
  assert.throws(() => decode({ ...moved({}), specversion: '0.3' }, event), /specversion/);
  const noData = moved({});
  delete noData.data;
  assert.throws(() => decode(noData, event), /no data/);
});

function fakeSidecar(answer) {
  const calls = [];
  return {
    calls,
    async invoke(appId, method) {
      calls.push([appId, method]);
      return answer(appId, method);
    },
    async healthy() {
      return true;
    },
  };
}

const reply = (status, body) => ({ status, text: async () => JSON.stringify(body) });
const metadata = (version, inputs = 4) =>
  reply(200, { name: 'iris', versions: [String(version)], inputs: Array(inputs).fill({}), outputs: [] });
const config = (extra = {}) => ({ ...loadConfig({}), topicPrefix: 'run1.', inferenceAppId: 'inference-run1', ...extra });

test('a champion event records what inference says, not what the event says', async () => {
  const sidecar = fakeSidecar(() => metadata(3));
  const notifier = new Notifier(config(), event, sidecar);
  const outcome = await notifier.deliver(moved({ to: 2 }, { time: '2025-01-01T00:00:00Z' }));
  assert.equal(outcome.status, 'SUCCESS');
  assert.deepEqual(sidecar.calls, [['inference-run1', 'v2/models/iris']]);
  const row = notifier.champions().iris;
  assert.equal(row.version, 3);
  assert.equal(row.alias_changed_at, '2025-01-01T00:00:00.000Z');
  assert.equal(row.inference.version, 3);
  assert.equal(row.inference.inputs, 4);
});

test('other aliases are ignored; an invalid event is dropped', async () => {
  const sidecar = fakeSidecar(() => metadata(3));
  const notifier = new Notifier(config(), event, sidecar);
  assert.equal((await notifier.deliver(moved({ alias: 'challenger' }))).status, 'SUCCESS');
  assert.equal((await notifier.deliver(Buffer.from('{"specversion":"1.0"}'))).status, 'DROP');
  assert.deepEqual(sidecar.calls, []);
  assert.deepEqual(notifier.champions(), {});
});

test('inference out of reach means RETRY; a model without a champion is recorded as such', async () => {
  let answer = () => Promise.reject(new TypeError('fetch failed'));
  const notifier = new Notifier(config(), event, fakeSidecar((...a) => answer(...a)));
  assert.equal((await notifier.deliver(moved({}))).status, 'RETRY');
  assert.match(notifier.champions().iris.inference.error, /fetch failed/);
  answer = () => reply(500, { errorCode: 'ERR_DIRECT_INVOKE', message: 'no app' });
  assert.equal((await notifier.deliver(moved({}))).status, 'RETRY');
  answer = () => reply(404, { error: "model 'iris' version 'champion' does not exist" });
  assert.equal((await notifier.deliver(moved({ to: null }))).status, 'SUCCESS');
  assert.equal(notifier.champions().iris.version, null);
  assert.match(notifier.champions().iris.inference.error, /^404: .*does not exist/);
});

test('answers that come back out of order: the one asked last wins; the latest event time stays', async () => {
  const pending = [];
  const notifier = new Notifier(config(), event, fakeSidecar(() => new Promise((resolve) => pending.push(resolve))));
  const first = notifier.deliver(moved({ to: 2 }, { time: '2025-01-01T00:00:02Z' }));
  const second = notifier.deliver(moved({ to: 1 }, { time: '2025-01-01T00:00:01Z' })); // older, delivered late
  await new Promise((resolve) => setImmediate(resolve));
  pending[1](metadata(2)); // the second question sees the truth now
  assert.equal((await second).status, 'SUCCESS');
  pending[0](metadata(1)); // an older answer arriving after it changes nothing
  assert.equal((await first).status, 'SUCCESS');
  const row = notifier.champions().iris;
  assert.equal(row.version, 2);
  assert.equal(row.alias_changed_at, '2025-01-01T00:00:02.000Z');
});

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

test('over HTTP: the app token, the subscription, a delivery through a (fake) sidecar', async (t) => {
  const seen = [];
  const sidecarServer = http.createServer((request, response) => {
    seen.push([request.url, request.headers['dapr-api-token']]);
    const answers = {
      '/v1.0/healthz/outbound': [204, ''],
      '/v1.0/metadata': [200, { id: 'notifier-run1', runtimeVersion: '1.18.2', components: [{ name: 'pubsub', type: 'pubsub.redis' }] }],
    };
    const [status, body] = answers[request.url] || [200, { versions: ['5'], inputs: [{}, {}] }];
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(body === '' ? '' : JSON.stringify(body));
  });
  const daprHttpPort = await listen(sidecarServer);
  t.after(() => sidecarServer.close());
  const settings = config({ daprHttpPort, appToken: 'app-secret', daprToken: 'dapr-secret' });
  const sidecar = new Sidecar(settings);
  const server = createServer(settings, new Notifier(settings, event, sidecar), sidecar);
  const port = await listen(server);
  t.after(() => server.close());
  const url = `http://127.0.0.1:${port}`;
  const token = { 'dapr-api-token': 'app-secret' };

  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  const ready = await fetch(`${url}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), {
    ready: true, app_id: 'notifier', runtime_version: '1.18.2', components: ['pubsub (pubsub.redis)'],
  });
  assert.equal((await fetch(`${url}/api/champions`)).status, 401);
  assert.equal((await fetch(`${url}/api/champions`, { headers: { 'dapr-api-token': 'app-secre' } })).status, 401);
  const subscribe = await (await fetch(`${url}/dapr/subscribe`, { headers: token })).json();
  assert.deepEqual(subscribe, [
    { pubsubname: 'pubsub', topic: 'run1.model-aliases', route: '/internal/events/model-aliases', deadLetterTopic: 'run1.dead-letters' },
  ]);
  const delivered = await fetch(`${url}/internal/events/model-aliases`, {
    method: 'POST',
    headers: { ...token, 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify(moved({ to: 5 })),
  });
  assert.deepEqual(await delivered.json(), { status: 'SUCCESS' });
  const table = await (await fetch(`${url}/api/champions`, { headers: token })).json();
  assert.equal(table.iris.version, 5);
  assert.equal(table.iris.inference.inputs, 2);
  assert.deepEqual(seen.at(-1), ['/v1.0/invoke/inference-run1/method/v2/models/iris', 'dapr-secret']);
  assert.equal((await fetch(`${url}/nowhere`, { headers: token })).status, 404);
});

test('not ready while the sidecar does not answer', async (t) => {
  const settings = config({ daprHttpPort: 1, callTimeoutMs: 2000 }); // nothing listens on port 1
  const sidecar = new Sidecar(settings);
  const server = createServer(settings, new Notifier(settings, event, sidecar), sidecar);
  const port = await listen(server);
  t.after(() => server.close());
  const reply = await fetch(`http://127.0.0.1:${port}/readyz`);
  assert.equal(reply.status, 503);
  assert.match((await reply.json()).reason, /port 1 does not answer/);
});

test("the sidecar's host is DAPRML_DAPR_HOST (default 127.0.0.1); a value that is no host is refused", () => {
  assert.equal(new Sidecar(loadConfig({})).base, 'http://127.0.0.1:3500');
  const named = loadConfig({ DAPRML_DAPR_HOST: 'notifier-daprd', DAPR_HTTP_PORT: '3515' });
  assert.equal(new Sidecar(named).base, 'http://notifier-daprd:3515');
  assert.equal(new Sidecar(loadConfig({ DAPRML_DAPR_HOST: 'dapr.ns.svc.cluster.local' })).base, 'http://dapr.ns.svc.cluster.local:3500');
  assert.equal(new Sidecar(loadConfig({ DAPRML_DAPR_HOST: '::1' })).base, 'http://[::1]:3500');
  for (const bad of ['http://notifier-daprd', 'notifier-daprd:3515', 'notifier daprd', '-daprd', 'daprd/v1.0', 'a..b', 'x'.repeat(64)]) {
    assert.throws(() => loadConfig({ DAPRML_DAPR_HOST: bad }), (e) => {
      assert.match(e.message, /^invalid settings: DAPRML_DAPR_HOST: ".*" is not a host name or IP address/);
      assert.ok(e.message.includes(JSON.stringify(bad)), e.message);
      return true;
    });
  }
});

test('it calls a sidecar on another host, and not its own loopback', async (t) => {
  // 127.0.0.2 stands for the sidecar's container: nothing listens on 127.0.0.1 at that port.
  const sidecarServer = http.createServer((request, response) => {
    response.writeHead(request.url === '/v1.0/healthz/outbound' ? 204 : 404);
    response.end();
  });
  const listening = await new Promise((resolve) => {
    sidecarServer.once('error', () => resolve(false));
    sidecarServer.listen(0, '127.0.0.2', () => resolve(true));
  });
  if (!listening) {
    t.skip('127.0.0.2 cannot be bound here');
    return;
  }
  t.after(() => sidecarServer.close());
  const port = sidecarServer.address().port;
  const elsewhere = loadConfig({ DAPRML_DAPR_HOST: '127.0.0.2', DAPR_HTTP_PORT: String(port), DAPRML_NOTIFIER_CALL_TIMEOUT_MS: '2000' });
  assert.equal(await new Sidecar(elsewhere).healthy(), true);
  const loopback = loadConfig({ DAPR_HTTP_PORT: String(port), DAPRML_NOTIFIER_CALL_TIMEOUT_MS: '2000' });
  assert.equal(await new Sidecar(loopback).healthy(), false);
});
