// The real-browser suite: headless Chromium -> cmux-proxy (a daemon, reloaded once) ->
// real Vite and Next.js dev servers in workspaces under the shim. Each check runs in the
// browser and fails on any console error it does not expect. Prints the timings and
// "N passed, M failed"; exits 1 on any failure. See README.md beside this file.
import { copyFileSync, renameSync, writeFileSync as writeWhole } from 'node:fs';
import { join } from 'node:path';
import { nextPage, titleCss, writeNextApp, writeViteApp } from './lib/apps.mjs';
import { colorOf, launch, mark, openPage, sameDocument, textOf } from './lib/browser.mjs';
import {
  assert,
  check,
  failed,
  failures,
  noConsoleErrors,
  summary,
  timed,
  timing,
} from './lib/checks.mjs';
import { accepts, sleep, stopAll, until } from './lib/procs.mjs';
import { setUp, startNext, startVite, tearDown } from './lib/stack.mjs';

const started = performance.now();
const [WS_A, WS_B, WS_NEXT, WS_LATE] = [161, 162, 163, 164];
const PUBLIC_VITE = `app-${WS_A}.preview.test`;
const PUBLIC_NEXT = `next-${WS_NEXT}.preview.test`;
const stack = await setUp();
const { tmp, proxyPort, vitePort, nextPort } = stack;
const dirOf = (n) => join(tmp, `workspace-${n}`);
const title = (n) => `Workspace ${n}`;
const viaLocalhost = (n, port, path = '/') =>
  `http://workspace-${n}-${port}.localhost:${proxyPort}${path}`;
const viaFront = (name, path = '/') => `http://${name}:${proxyPort}${path}`;

/** What a front (a tunnel, nginx, an app) adds: the routing headers and the override. */
const frontHeaders = (n, port) => ({
  'X-Cmux-Port-Internal': String(port),
  'X-Cmux-Workspace-Internal': `workspace-${n}`,
  'X-Cmux-Host-Override': `localhost:${port}`,
});

/** Until the page's HMR socket (its URL contains `part`) is open and has spoken. */
const hmrReady = (page, part) =>
  until(`HMR socket ${part}`, 30000, () =>
    page.sockets.some((s) => s.url.includes(part) && s.frames > 0 && !s.closed),
  );

const waitText = (page, selector, want, ms = 30000) =>
  until(`${selector} = ${JSON.stringify(want)}`, ms, async () => (await textOf(page, selector)) === want, 20);

/** Edits a CSS file and times until the page shows the new colour, without a reload. */
async function cssEdit(page, file, rgb, label) {
  await mark(page);
  const want = `rgb(${rgb.join(', ')})`;
  writeFileSync(file, titleCss(rgb));
  await timed(label, () =>
    until(`colour ${want}`, 30000, async () => (await colorOf(page, '#title')) === want, 20),
  );
  assert(await sameDocument(page), 'the page reloaded: the CSS edit did not arrive by HMR');
}

/** Writes a JS file and times until the page shows `want` in `selector`, in place. */
async function jsEdit(page, file, source, selector, want, label) {
  await mark(page);
  writeFileSync(file, source);
  await timed(label, () => waitText(page, selector, want));
  assert(await sameDocument(page), 'the page reloaded: the JS edit did not arrive by HMR');
}

/** Writes a file as editors do, whole (a new file renamed over the old one), so that a
 * dev server's watcher never reads it half written. */
function writeFileSync(file, text) {
  writeWhole(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

const message = (text) => `export const message = ${JSON.stringify(text)};\n`;

let browser;
try {
  await stack.ctl('start');
  for (const n of [WS_A, WS_B, WS_LATE]) writeViteApp(dirOf(n), title(n));
  writeNextApp(dirOf(WS_NEXT), title(WS_NEXT));
  // Next.js first: it takes longest to start and to compile its first page.
  const next = startNext(stack, WS_NEXT, dirOf(WS_NEXT), nextPort);
  const vites = await Promise.all([WS_A, WS_B].map((n) => startVite(stack, n, dirOf(n), vitePort)));
  await timed('vite: two dev servers up', () => Promise.all(vites.map((v) => v.ready)));
  browser = await timed('chromium: launch', () => launch([PUBLIC_VITE, PUBLIC_NEXT]));
  const local = await browser.newContext();

  await check('two workspaces, one port: each renders its own page (.localhost form)', async () => {
    assert(!(await accepts('127.0.0.1', vitePort)), 'a dev server leaked onto 127.0.0.1');
    for (const n of [WS_A, WS_B]) {
      const page = await openPage(local);
      await timed(`page load: workspace-${n} via .localhost`, () => page.goto(viaLocalhost(n, vitePort)));
      await waitText(page, '#title', title(n));
      await waitText(page, '#msg', 'message v1');
      noConsoleErrors(page);
      await page.close();
    }
  });

  await check('vite HMR through the .localhost form: CSS and JS edits, no reload', async () => {
    const page = await openPage(local);
    await page.goto(viaLocalhost(WS_A, vitePort));
    await hmrReady(page, 'token=');
    await cssEdit(page, join(dirOf(WS_A), 'style.css'), [4, 5, 6], 'vite HMR delay: CSS (.localhost)');
    const js = message('message v2');
    await jsEdit(page, join(dirOf(WS_A), 'message.js'), js, '#msg', 'message v2', 'vite HMR delay: JS (.localhost)');
    assert((await textOf(page, '#title')) === title(WS_A), 'workspace mixed up');
    noConsoleErrors(page);
    await page.close();
  });

  const viteFront = await browser.newContext({ extraHTTPHeaders: frontHeaders(WS_A, vitePort) });

  await check('vite through a public host name: renders, HMR for CSS and JS', async () => {
    const page = await openPage(viteFront);
    await timed('page load: vite via public host', () => page.goto(viaFront(PUBLIC_VITE)));
    await waitText(page, '#title', title(WS_A));
    await hmrReady(page, 'token=');
    await cssEdit(page, join(dirOf(WS_A), 'style.css'), [7, 8, 9], 'vite HMR delay: CSS (public host)');
    const js = message('message v3');
    await jsEdit(page, join(dirOf(WS_A), 'message.js'), js, '#msg', 'message v3', 'vite HMR delay: JS (public host)');
    noConsoleErrors(page);
    await page.close();
  });

  await check('an app redirect to http://localhost:PORT/next lands on the workspace page', async () => {
    const cases = [
      [local, viaLocalhost(WS_A, vitePort, '/go'), viaLocalhost(WS_A, vitePort, '/next')],
      [viteFront, viaFront(PUBLIC_VITE, '/go'), viaFront(PUBLIC_VITE, '/next')],
    ];
    for (const [context, from, to] of cases) {
      const page = await openPage(context);
      await page.goto(from);
      assert(page.url() === to, `landed on ${page.url()}, want ${to}`);
      await waitText(page, '#title', title(WS_A));
      noConsoleErrors(page);
      await page.close();
    }
  });

  await check('a page opened 3 s before its dev server shows the 502 page, then the app', async () => {
    const page = await openPage(local);
    await page.setViewportSize({ width: 720, height: 310 });
    const opened = performance.now();
    await page.goto(viaLocalhost(WS_LATE, vitePort));
    await until('the 502 page', 10000, async () => (await page.title()).includes('502'));
    const shot = join(tmp, 'port-closed.png');
    await page.screenshot({ path: shot });
    if (process.env.SCREENSHOT_502) copyFileSync(shot, process.env.SCREENSHOT_502);
    await sleep(Math.max(0, 3000 - (performance.now() - opened)));
    const late = await startVite(stack, WS_LATE, dirOf(WS_LATE), vitePort);
    await late.ready;
    const up = performance.now();
    timing('502 page: dev server start to listening', up - opened - 3000);
    await until('the app, by the 502 page reloading itself', 20000, async () => (await page.title()) === title(WS_LATE));
    timing('502 page to app: from the server listening', performance.now() - up);
    timing('502 page to app: from the page opening', performance.now() - opened);
    await waitText(page, '#msg', 'message v1');
    // The 502 document itself is the one error Chromium reports.
    noConsoleErrors(page, [/status of 502/]);
    await page.close();
  });

  await check('next.js through a public host name: renders, HMR (/_next/hmr) for CSS and JS', async () => {
    await timed('next: waiting for its dev server (started with the suite)', () => next.ready);
    const context = await browser.newContext({ extraHTTPHeaders: frontHeaders(WS_NEXT, nextPort) });
    const page = await openPage(context);
    await timed('page load: next via public host (first compile)', () =>
      page.goto(viaFront(PUBLIC_NEXT), { timeout: 90000 }),
    );
    await waitText(page, '#title', `${title(WS_NEXT)} v1`);
    await hmrReady(page, '/_next/');
    const css = join(dirOf(WS_NEXT), 'app/globals.css');
    await cssEdit(page, css, [4, 5, 6], 'next HMR delay: CSS (public host)');
    const want = `${title(WS_NEXT)} v2`;
    await jsEdit(page, join(dirOf(WS_NEXT), 'app/page.js'), nextPage(want), '#title', want, 'next HMR delay: JS (public host)');
    noConsoleErrors(page);
    await context.close();
  }, 120000);

  await check('a graceful proxy reload with the page open: the next edit still arrives', async () => {
    const page = await openPage(local);
    await page.goto(viaLocalhost(WS_B, vitePort));
    await hmrReady(page, 'token=');
    const before = new Set(page.sockets);
    await timed('proxy: cmux-proxyctl reload (until the old process exits)', () => stack.ctl('reload'));
    // The old process closed the page's HMR socket at its shutdown deadline; Vite's client
    // reconnects through the new process and reloads the page. Edit only once that has
    // happened: an edit during that reload can reach neither the old socket nor the new.
    await until('HMR socket through the new process', 30000, () =>
      page.sockets.some((s) => !before.has(s) && s.url.includes('token=') && s.frames > 0 && !s.closed),
    );
    await page.waitForLoadState('load');
    const file = join(dirOf(WS_B), 'message.js');
    const t0 = performance.now();
    writeFileSync(file, message('after the reload'));
    await waitText(page, '#msg', 'after the reload');
    timing('reload recovery: edit after the reload to the page', performance.now() - t0);
    assert((await textOf(page, '#title')) === title(WS_B), 'workspace mixed up');
    noConsoleErrors(page);
    await page.close();
  }, 90000);
} catch (e) {
  console.log(`FAIL set-up: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser?.close().catch(() => {});
  await stopAll();
  // A stop that fails (the daemon does not exit, or cmux-proxyctl errs) fails the suite.
  await stack.ctl('stop').catch((e) => failed('proxy: cmux-proxyctl stop', e.message));
  const keep = process.env.BROWSER_E2E_KEEP === '1' || process.exitCode === 1 || failures() > 0;
  if (keep) console.log(`kept ${tmp} (logs of the proxy and the dev servers)`);
  tearDown(stack, keep);
}
if (!summary(performance.now() - started)) process.exitCode = 1;
