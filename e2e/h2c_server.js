// A plain h2c (HTTP/2 without TLS) server for the gRPC e2e script: it answers every
// request with one line: path, HTTP version, the Via it got, whether the proxy's
// X-Cmux-Upstream-Protocol reached it, the X-Forwarded-Host it got, and the number of the connection it came on.
// usage: node h2c_server.js HOST   (listens on port 0; prints "listening on HOST:PORT")
'use strict';
const http2 = require('http2');

const host = process.argv[2] || '127.0.0.1';
let sessions = 0;
const server = http2.createServer();
server.on('session', (session) => {
  sessions += 1;
  session.cmuxId = sessions;
});
server.on('stream', (stream, headers) => {
  const line = [
    headers[':path'],
    '2.0',
    `via=${headers.via || '-'}`,
    `proto-header=${headers['x-cmux-upstream-protocol'] || '-'}`,
    `xfh=${headers['x-forwarded-host'] || '-'}`,
    `session=${stream.session.cmuxId}`,
  ].join(' ');
  stream.respond({ ':status': 200, 'content-type': 'text/plain' });
  stream.end(line + '\n');
});
server.listen(0, host, () => {
  console.log(`listening on ${host}:${server.address().port}`);
});
