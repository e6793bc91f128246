// Debian's Chromium, headless, driven by playwright-core: loopback only (every name the
// suite uses is mapped to 127.0.0.1, any other name fails to resolve), and each page's
// console errors collected.
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/** Launches Chromium; `names` are mapped to 127.0.0.1, every other name refused.
 * playwright gives each launch a fresh user data directory of its own. */
export function launch(names) {
  const rules = [
    'MAP localhost 127.0.0.1',
    'MAP *.localhost 127.0.0.1',
    ...names.map((n) => `MAP ${n} 127.0.0.1`),
    'MAP * ~NOTFOUND',
    'EXCLUDE 127.0.0.1',
  ].join(', ');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60000,
    env: { ...process.env, http_proxy: '', https_proxy: '', HTTP_PROXY: '', HTTPS_PROXY: '' },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
      `--host-resolver-rules=${rules}`,
    ],
  });
}

/** Every console line of every page, newest last: shown when a check fails. */
export const consoleLines = [];

/** Opens a page that records its console errors and uncaught exceptions in
 * `page.errors`, and its WebSockets (URL, frames received, closed) in `page.sockets`. */
export async function openPage(context) {
  const page = await context.newPage();
  page.errors = [];
  page.sockets = [];
  page.on('websocket', (ws) => {
    const socket = { url: ws.url(), frames: 0, closed: false };
    ws.on('framereceived', () => socket.frames++);
    ws.on('close', () => { socket.closed = true; });
    page.sockets.push(socket);
  });
  page.on('console', (m) => {
    consoleLines.push(`${m.type()}: ${m.text()}`);
    if (m.type() === 'error') page.errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => page.errors.push(`exception: ${e.message}`));
  return page;
}

/** Marks the page's current document, to tell an in-place update from a reload. */
export const mark = (page) => page.evaluate(() => { window.__sameDocument = true; });
export const sameDocument = (page) => page.evaluate(() => window.__sameDocument === true);

export const colorOf = (page, selector) =>
  page.evaluate((s) => {
    const el = document.querySelector(s);
    return el ? getComputedStyle(el).color : null;
  }, selector);

export const textOf = (page, selector) =>
  page.evaluate((s) => document.querySelector(s)?.textContent ?? null, selector);
