#!/usr/bin/env bash
# The real-browser suite (see README.md here): installs what it needs, only when it is
# missing (Debian's chromium with apt; this folder's npm packages with `npm ci` when
# node_modules does not match package-lock.json), then runs run.mjs under a time bound.
# env: CMUX_PROXY_BIN (default target/release-tests/cmux-proxy), CMUX_SHIM,
#      BROWSER_E2E_TIMEOUT=240 (seconds), BROWSER_E2E_ONLY=text, BROWSER_E2E_KEEP=1,
#      SCREENSHOT_502=FILE (a copy of the 502 page's screenshot)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE"
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
  echo "browser suite: needs Node.js 20 or later (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
if ! command -v "${CHROMIUM_BIN:-chromium}" >/dev/null 2>&1; then
  echo "browser suite: installing chromium (Debian package)" >&2
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# npm writes node_modules/.package-lock.json on every install: older than the lock file
# (or missing) means node_modules does not match it.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "browser suite: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
rm -rf .run-* # what an interrupted run left
# The proxy's settings (CMUX_LISTEN, CMUX_AUTH_TOKEN_FILE, ...) from the caller's shell
# must not reach the daemon: only this suite's own CMUX_PROXY_BIN and CMUX_SHIM stay.
for var in $(compgen -e); do
  case $var in CMUX_PROXY_BIN | CMUX_SHIM) ;; CMUX_*) unset "$var" ;; esac
done
exec timeout -k 10 "${BROWSER_E2E_TIMEOUT:-240}" node run.mjs
