'use strict';
// The notifier: a Node.js service behind its own daprd, with no npm dependencies (node:http and
// fetch only), proving that a service needs nothing of our Python code to take part. It hears
// of every champion move (`model alias changed`, subscribed programmatically), asks inference
// through its sidecar what the champion now is, and keeps a table of them.
//
//   GET  /healthz                          alive (open: the sidecar's app health probe)
//   GET  /readyz                           ready when its sidecar answers (open)
//   GET  /dapr/subscribe                   the subscription the sidecar asks for at start
//   POST /internal/events/model-aliases    the delivery route: {"status": SUCCESS | RETRY | DROP}
//   GET  /api/champions                    model -> {version, alias_changed_at, event_id, inference}
//
// Its metrics (metrics.js) are served on a port of their own, DAPRML_METRICS_PORT, never here.
//
// As the Python services do it: every route but the two health routes wants the app token
// (header dapr-api-token = APP_API_TOKEN) when one is set, else 401; every call to the sidecar
// carries DAPR_API_TOKEN. Listens on $DAPRML_HOST:$APP_PORT (127.0.0.1 by default); its sidecar is at
// $DAPRML_DAPR_HOST:$DAPR_HTTP_PORT (127.0.0.1 by default; another container's name in compose).

const crypto = require('node:crypto');
const http = require('node:http');
const { NotifierMetrics, createMetricsServer } = require('./metrics');
const { Notifier, Sidecar, loadConfig, loadEvent } = require('./notifier');

const OPEN_PATHS = new Set(['/healthz', '/readyz']);
const MAX_BODY_BYTES = 1024 * 1024;

function log(message) {
  process.stdout.write(`${new Date().toISOString()} notifier: ${message}\n`);
}

function digest(text) {
  return crypto.createHash('sha256').update(text, 'utf8').digest();
}

/** Whether a request carries the app token; the digests make the comparison constant-time
 * whatever the lengths (timingSafeEqual wants equal lengths). */
function hasToken(request, token) {
  if (!token) return true;
  const given = request.headers['dapr-api-token'];
  return typeof given === 'string' && crypto.timingSafeEqual(digest(given), digest(token));
}

function send(response, status, body) {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

function readBody(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    request.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(Object.assign(new Error('request body too large'), { status: 413 }));
        request.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function createServer(config, notifier, sidecar, metrics = new NotifierMetrics()) {
  const routes = {
    'GET /healthz': async () => [200, { status: 'ok' }],
    // As the Python services answer it (services/common/app.py), so the gateway's status reads it alike.
    'GET /readyz': async () => {
      const info = (await sidecar.healthy()) ? await sidecar.info() : null;
      if (!info) {
        const reason = `sidecar on port ${config.daprHttpPort} does not answer /v1.0/healthz/outbound`;
        return [503, { ready: false, app_id: config.appId, reason }];
      }
      const components = (info.components || []).map((c) => `${c.name} (${c.type})`).sort();
      return [200, { ready: true, app_id: config.appId, runtime_version: info.runtimeVersion || '', components }];
    },
    'GET /dapr/subscribe': async () => [200, notifier.subscriptions()],
    [`POST ${notifier.route}`]: async (request) => {
      const started = process.hrtime.bigint();
      let outcome;
      try {
        outcome = await notifier.deliver(await readBody(request), request.headers);
      } finally {
        metrics.delivered(notifier.event.type, outcome);
      }
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log(`${outcome.status} ${outcome.line} (${ms.toFixed(0)} ms)`);
      return [200, { status: outcome.status }];
    },
    'GET /api/champions': async () => [200, notifier.champions()],
  };

  return http.createServer(async (request, response) => {
    const route = new URL(request.url, 'http://notifier').pathname;
    try {
      if (!OPEN_PATHS.has(route) && !hasToken(request, config.appToken)) {
        send(response, 401, { detail: 'this service answers only its Dapr sidecar (no valid dapr-api-token)' });
        return;
      }
      const handler = routes[`${request.method} ${route}`];
      if (!handler) {
        const known = Object.keys(routes).some((key) => key.endsWith(` ${route}`));
        send(response, known ? 405 : 404, { detail: known ? 'method not allowed' : 'not found' });
        return;
      }
      const [status, body] = await handler(request);
      send(response, status, body);
    } catch (e) {
      log(`${request.method} ${route} failed: ${e.stack || e}`);
      if (!response.headersSent) send(response, e.status || 500, { detail: e.status ? e.message : 'internal error' });
    }
  });
}

function main() {
  let config;
  let event;
  try {
    config = loadConfig();
    event = loadEvent(config.schemaFile);
  } catch (e) {
    process.stderr.write(`notifier: cannot start: ${e.message}\n`);
    process.exit(1);
  }
  const sidecar = new Sidecar(config);
  const notifier = new Notifier(config, event, sidecar);
  const metrics = new NotifierMetrics(() => notifier.table.size);
  const server = createServer(config, notifier, sidecar, metrics);
  const metricsServer = config.metricsPort === null ? null : createMetricsServer(metrics);
  if (metricsServer) {
    metricsServer.on('error', (e) => {
      process.stderr.write(`notifier: cannot serve metrics on ${config.host}:${config.metricsPort}: ${e.message}\n`);
      process.exit(1);
    });
    metricsServer.listen(config.metricsPort, config.host, () => log(`metrics on ${config.host}:${config.metricsPort}/metrics`));
  }
  server.listen(config.appPort, config.host, () => {
    log(
      `listening on ${config.host}:${server.address().port}; subscribed to ${config.pubsub}/${notifier.topic} ` +
        `(${event.type}), dead letters to ${notifier.deadLetterTopic}; inference is app ${config.inferenceAppId} through the sidecar at ${sidecar.base}` +
        `${config.appToken ? '; app token required' : ''}`,
    );
  });
  const stop = (signal) => {
    log(`${signal}: stopping`);
    if (metricsServer) metricsServer.close();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (require.main === module) main();

module.exports = { createServer, hasToken };
