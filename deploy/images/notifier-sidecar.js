'use strict';
// Loaded before the notifier in its image (node --require): in compose each daprd runs in a
// container of its own, while the notifier calls its sidecar at 127.0.0.1:DAPR_HTTP_PORT
// (services/notifier has no setting for the sidecar's host). When DAPRML_DAPR_HOST names another
// host, this forwards that loopback port there, byte for byte; otherwise it does nothing.
const net = require('node:net');

const host = process.env.DAPRML_DAPR_HOST;
const port = Number(process.env.DAPR_HTTP_PORT || 3500);

if (host && host !== '127.0.0.1' && host !== 'localhost') {
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.on('error', (e) => {
    process.stderr.write(`notifier-sidecar: cannot forward 127.0.0.1:${port} to ${host}: ${e.message}\n`);
    process.exit(1);
  });
  server.listen(port, '127.0.0.1');
  server.unref(); // the notifier's own servers keep the process alive, not this one
}
