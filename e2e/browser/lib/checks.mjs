import { consoleLines } from './browser.mjs';

// One check: a name, a function, its timings; the tally and the summary line.

const timings = [];
const results = { passed: 0, failed: 0 };

/** Records a measured duration (ms) under a label, for the summary. */
export function timing(label, ms) {
  timings.push([label, Math.round(ms)]);
  console.log(`  time ${label}: ${Math.round(ms)} ms`);
}

/** Times `fn` and records it. */
export async function timed(label, fn) {
  const t0 = performance.now();
  const v = await fn();
  timing(label, performance.now() - t0);
  return v;
}

/** Runs one check, bounded in time; a failure is reported (with the pages' last
 * console lines) and the suite goes on. BROWSER_E2E_ONLY=text runs only the checks whose
 * name contains it. */
export async function check(name, fn, limitMs = 60000) {
  const only = process.env.BROWSER_E2E_ONLY;
  if (only && !name.includes(only)) return;
  const t0 = performance.now();
  let timer;
  const limit = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`check exceeded ${limitMs} ms`)), limitMs);
  });
  try {
    await Promise.race([fn(), limit]);
    results.passed++;
    console.log(`PASS ${name} (${Math.round(performance.now() - t0)} ms)`);
  } catch (e) {
    results.failed++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
    console.log(`  last console lines:\n    ${consoleLines.slice(-15).join('\n    ')}`);
  } finally {
    clearTimeout(timer);
  }
}

export function assert(cond, what) {
  if (!cond) throw new Error(what);
}

/** A page's console errors, less the ones a check expects; none may be left. */
export function noConsoleErrors(page, expected = []) {
  const left = page.errors.filter((e) => !expected.some((x) => x.test(e)));
  assert(left.length === 0, `console errors: ${JSON.stringify(left)}`);
}

export const failures = () => results.failed;

/** A failure outside a check (the proxy's stop at the end): reported and counted. */
export function failed(name, why) {
  results.failed++;
  console.log(`FAIL ${name}: ${why}`);
}

export function summary(totalMs) {
  console.log('timings (ms):');
  for (const [label, ms] of timings) console.log(`  ${label.padEnd(52)} ${String(ms).padStart(6)}`);
  console.log(`  ${'whole suite'.padEnd(52)} ${String(Math.round(totalMs)).padStart(6)}`);
  console.log(`${results.passed} passed, ${results.failed} failed`);
  return results.failed === 0;
}
