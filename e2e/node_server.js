// The e2e suite's Node dev server: listens on "localhost" like Vite or Next do. Under the shim
// getaddrinfo("localhost") answers the workspace address, so that is where it listens.
// usage: node node_server.js PORT      GET / -> "node <workspace dir name> <bound address>"
'use strict';
const http = require('http');
const path = require('path');

const port = Number(process.argv[2]);
const ws = path.basename(process.cwd());
const server = http.createServer((req, res) => {
  const a = server.address();
  res.setHeader('Content-Type', 'text/plain');
  res.end(`node ${ws} ${a.address}:${a.port}\n`);
});
server.on('error', (err) => {
  console.error(`${err.code}: ${err.message}`);
  process.exit(1);
});
server.listen(port, 'localhost', () => {
  const a = server.address();
  console.log(`listening on ${a.address}:${a.port}`);
});
