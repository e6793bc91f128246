// What the checks run against: cmux-proxy as a daemon (scripts/cmux-proxyctl), and real
// dev servers in workspaces under the LD_PRELOAD shim, every one on ports picked at run
// time. Everything lives in a temporary folder beside this file (so that the apps
// resolve this suite's node_modules), removed at the end.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { accepts, freePorts, run, start, until } from './procs.mjs';

export const HERE = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(HERE, '../..');
const fromRepo = (p) => resolve(REPO, p);
const PROXY_BIN = fromRepo(process.env.CMUX_PROXY_BIN || 'target/release-tests/cmux-proxy');
const SHIM = fromRepo(process.env.CMUX_SHIM || 'ldpreload/libworkspace_net.so');
const CTL = join(REPO, 'scripts/cmux-proxyctl');
const GUARD = join(HERE, 'loopback-only.cjs');
const VITE_BIN = join(HERE, 'node_modules/vite/bin/vite.js');
const NEXT_BIN = join(HERE, 'node_modules/next/dist/bin/next');

/** `workspace-N`'s address, by the name rule (spec/routing.md). */
export const wsAddress = (n) => `127.18.${n >> 8}.${n & 255}`;

/** The environment of a process inside workspace-N: the shim, and no public names. */
function workspaceEnv(n) {
  const env = { ...process.env };
  for (const k of ['http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY']) {
    delete env[k];
  }
  return {
    ...env,
    LD_PRELOAD: SHIM,
    CMUX_WORKSPACE_INTERNAL: `workspace-${n}`,
    NODE_OPTIONS: `--require ${GUARD}`,
    NEXT_TELEMETRY_DISABLED: '1',
    // Next.js asks the npm registry whether it is outdated: a closed loopback port.
    npm_config_registry: 'http://127.0.0.1:9/',
    BROWSER: 'none',
  };
}

export async function setUp() {
  const tmp = mkdtempSync(join(HERE, '.run-'));
  const [proxyPort, adminPort, vitePort, nextPort] = await freePorts(4);
  const conf = join(tmp, 'cmux-proxy.yaml');
  writeFileSync(
    conf,
    `version: 1
threads: 2
pid_file: ${tmp}/proxy.pid
error_log: ${tmp}/proxy.err.log
upgrade_sock: ${tmp}/upgrade.sock
grace_period_seconds: 1
graceful_shutdown_timeout_seconds: 2
cmux_proxy:
  listen: ["127.0.0.1:${proxyPort}"]
  admin_listen: "127.0.0.1:${adminPort}"
  access_log: ${tmp}/access.log
  # The public names the suite opens (Chromium maps them to loopback): on the Host
  # allow list, as a real preview domain would be.
  public_hosts: ["*.preview.test"]
`,
  );
  // No CMUX_* setting of the caller's reaches cmux-proxyctl or the proxy (run.sh unsets
  // them too); the binary is the one under test.
  const ctlEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('CMUX_')),
  );
  ctlEnv.CMUX_PROXY_BIN = PROXY_BIN;
  const ctl = (...args) => run(CTL, [...args, '-c', conf], { env: ctlEnv, timeoutMs: 40000 });
  return { tmp, conf, ctl, proxyPort, vitePort, nextPort };
}

/** Starts Vite in workspace-N from `dir`, on `port`; resolves once it accepts. */
export async function startVite(stack, n, dir, port) {
  const child = start(process.execPath, [VITE_BIN, '--port', String(port)], {
    cwd: dir,
    env: workspaceEnv(n),
    logPath: join(stack.tmp, `vite-${n}.log`),
  });
  return { child, ready: waitListening(child, n, port, 30000) };
}

/** Starts `next dev` in workspace-N from `dir`; `ready` resolves once it accepts. */
export function startNext(stack, n, dir, port) {
  const args = [NEXT_BIN, 'dev', '--port', String(port), '--hostname', 'localhost'];
  const child = start(process.execPath, args, {
    cwd: dir,
    env: workspaceEnv(n),
    logPath: join(stack.tmp, `next-${n}.log`),
  });
  return { child, ready: waitListening(child, n, port, 60000) };
}

function waitListening(child, n, port, ms) {
  return until(`a server in workspace-${n} on ${wsAddress(n)}:${port}`, ms, async () => {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
    return accepts(wsAddress(n), port);
  });
}

export function tearDown(stack, keep) {
  if (!keep) rmSync(stack.tmp, { recursive: true, force: true });
}
