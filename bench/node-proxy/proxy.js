// bench/run.sh's Node target: node-http-proxy, the proxy behind code-server's port proxy and
// webpack's and Vite's dev servers, doing the benchmark's routing: X-Cmux-Port-Internal: P
// goes to 127.0.0.1:P, WebSocket upgrades included (proxy.ws), upstream connections kept
// alive (one agent for every port), X-Forwarded-For/-Proto/-Host added (xfwd).
// Usage: node proxy.js --listen HOST:PORT
'use strict';
const http = require('http');
const httpProxy = require('http-proxy');

const i = process.argv.indexOf('--listen');
if (i < 0 || !process.argv[i + 1]) {
  console.error('usage: node proxy.js --listen HOST:PORT');
  process.exit(2);
}
const listen = process.argv[i + 1];
const sep = listen.lastIndexOf(':');
const host = listen.slice(0, sep);
const port = Number(listen.slice(sep + 1));

// Keep-alive to the upstreams; no cap on sockets, enough idle ones for the benchmark's 50
// client connections.
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256 });
const proxy = httpProxy.createProxyServer({ agent, xfwd: true, ws: true });

// The routing: a valid port header picks the target; anything else is a 400.
function target(req) {
  const p = Number(req.headers['x-cmux-port-internal']);
  if (!Number.isInteger(p) || p < 1 || p > 65535) return null;
  delete req.headers['x-cmux-port-internal'];
  return `http://127.0.0.1:${p}`;
}

proxy.on('error', (err, req, res) => {
  // res is a ServerResponse for HTTP, a socket for WebSocket upgrades.
  if (res && typeof res.writeHead === 'function') {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('bad gateway\n');
  } else if (res && typeof res.destroy === 'function') {
    res.destroy();
  }
});

const server = http.createServer((req, res) => {
  const t = target(req);
  if (!t) {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end('missing or bad X-Cmux-Port-Internal\n');
    return;
  }
  proxy.web(req, res, { target: t });
});
server.on('upgrade', (req, socket, head) => {
  const t = target(req);
  if (!t) {
    socket.destroy();
    return;
  }
  proxy.ws(req, socket, head, { target: t });
});
// Node's defaults close idle keep-alive connections after 5 s and cap requests per socket in
// newer versions; the benchmark holds connections open for minutes.
server.keepAliveTimeout = 600 * 1000;
server.headersTimeout = 610 * 1000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;
server.listen(port, host, () => console.log(`listening ${host}:${port}`));
process.on('SIGTERM', () => process.exit(0));
