// Processes and sockets for the browser suite: free ports, children that are always
// ended, bounded waits. Loopback only.
import { spawn, execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import net from 'node:net';

/** Ports free on every address right now (bound to 0.0.0.0:0 and read back). */
export async function freePorts(n) {
  const servers = [];
  for (let i = 0; i < n; i++) {
    const s = net.createServer();
    await new Promise((ok, fail) => s.once('error', fail).listen(0, '0.0.0.0', ok));
    servers.push(s);
  }
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  return ports;
}

/** Polls `check` every `everyMs` until it returns a truthy value or `ms` pass. */
export async function until(what, ms, check, everyMs = 100) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** Whether a TCP connection to host:port is accepted. */
export function accepts(host, port) {
  return new Promise((ok) => {
    const s = net.connect({ host, port, timeout: 1000 });
    const done = (v) => {
      s.destroy();
      ok(v);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.once('timeout', () => done(false));
  });
}

/** The children this suite started, ended (TERM, then KILL) by `stopAll`. */
const children = new Set();

/** Starts a long-running child with its output in `logPath`. */
export function start(cmd, args, { cwd, env, logPath }) {
  const log = createWriteStream(logPath);
  const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  child.exited = new Promise((ok) => child.once('exit', ok));
  children.add(child);
  return child;
}

/** Ends one child and everything it started (its process group), bounded in time. */
export async function stop(child) {
  if (!children.delete(child) || child.exitCode !== null) return;
  const signal = (sig) => {
    try {
      process.kill(-child.pid, sig);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const exited = await Promise.race([child.exited.then(() => true), sleep(3000)]);
  if (!exited) signal('SIGKILL');
}

export async function stopAll() {
  await Promise.all([...children].map(stop));
}

/** Runs a command to its end (bounded), resolving with its output; rejects on failure. */
export function run(cmd, args, { env, timeoutMs = 60000 } = {}) {
  return new Promise((ok, fail) => {
    execFile(cmd, args, { env, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) fail(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`));
      else ok(stdout + stderr);
    });
  });
}
