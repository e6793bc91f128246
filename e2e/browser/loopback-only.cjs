// Preloaded (`node --require`) into every Node process of the browser suite: a name
// lookup for anything but a loopback name fails at once (ENOTFOUND), so no dev server
// (Next.js checks npm for a newer version, say) ever resolves a public name from a test.
'use strict';
const dns = require('node:dns');

const LOOPBACK_NAME = /^(localhost|[a-z0-9._-]+\.localhost)\.?$/i;
const IP_LITERAL = /^(\d{1,3}(\.\d{1,3}){3}|\[?[0-9a-f:.]*:[0-9a-f:.]*\]?)$/i;

function allowed(host) {
  return typeof host === 'string' && (LOOPBACK_NAME.test(host) || IP_LITERAL.test(host));
}

function refusal(host) {
  const e = new Error(`getaddrinfo ENOTFOUND ${host} (browser suite: loopback names only)`);
  e.code = 'ENOTFOUND';
  e.hostname = host;
  return e;
}

const lookup = dns.lookup;
dns.lookup = function guardedLookup(host, options, callback) {
  if (allowed(host)) return lookup.call(this, host, options, callback);
  const cb = typeof options === 'function' ? options : callback;
  process.nextTick(cb, refusal(host));
  return {};
};
const promisesLookup = dns.promises.lookup;
dns.promises.lookup = function guardedPromisesLookup(host, options) {
  if (allowed(host)) return promisesLookup.call(this, host, options);
  return Promise.reject(refusal(host));
};
