// LeadFlow's own tracker (GET /sdk/ls.js, ingest-gateway/sdk/ls.js) in headless Chromium, on a
// site of another origin than the gateway's (http://127.0.0.1:PAGE_PORT).
//
// MODE=visit: a visitor browses three pages of the site, each loading ls.js from the gateway
// with only data-write-key (the API host is then the script's own origin). Landing: the
// automatic page view and a call queued before the script loaded ("Pricing Viewed"). Pricing:
// the page view, then "Demo Requested" sent as the page hides (sendBeacon). Sign-up: the page
// view, then identify(USER_ID) and "Signed Up". One anonymous id in first-party storage
// throughout. Prints (`RESULT {...}`) the anonymous id and the messageIds sent before and after
// identify, for ingest-gateway/tests/sdk_browser.rs, which checks the known lead's score. Last,
// the gateway's /sdk/test.html sends a track from its button.
//
// MODE=down: the gateway is at a closed port (GATEWAY_URL). A page loads ls.js from the site
// itself with data-api-host pointing there, makes every call (and some with nonsense
// arguments), hides, and waits for the tracker to give up; another page's <script src> of
// ls.js itself fails to load. Neither page may see an error: no 'pageerror', no unhandled
// rejection, window.onerror never called, no console.error or console.warn from a script (the
// browser's own "Failed to load resource" lines for the refused connections are expected).
//
// Env: GATEWAY_URL, WRITE_KEY, PAGE_PORT, MODE, USER_ID (visit), CHROMIUM, SCREENSHOT_DIR.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { logger, required } from './harness.mjs';
import { check, messagesIn, printResult, probeErrors, recordRequests, servePages, waitFor } from './sdk_harness.mjs';

const log = logger('ls.js');
const gateway = required('GATEWAY_URL');
const writeKey = required('WRITE_KEY');
const mode = required('MODE');
const screenshots = required('SCREENSHOT_DIR');

const attr = (text) => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

function sitePage(title, tracker, queued = '') {
  return {
    type: 'text/html; charset=utf-8',
    body: `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>
<script>window.leadflow = window.leadflow || [];${queued}</script>
${tracker}
</head><body><h1>${title}</h1><p>A site that embeds LeadFlow's tracker.</p></body></html>`,
  };
}

const browser = await chromium.launch({ executablePath: required('CHROMIUM') });
const context = await browser.newContext();
const errors = await probeErrors(context);
const recorded = recordRequests(context, gateway);
// Chromium does not show a beacon's Blob body to Playwright: the page keeps a copy of each.
await context.addInitScript(() => {
  const send = navigator.sendBeacon.bind(navigator);
  const copies = [];
  Object.defineProperty(window, '__beaconBodies', { value: copies });
  navigator.sendBeacon = (url, data) => {
    if (data instanceof Blob) data.text().then((text) => copies.push(text));
    return send(url, data);
  };
});
const result = { mode };

// What the page's scripts saw go wrong (besides the browser's own failed-load lines).
async function assertNoPageErrors(page, where) {
  const seen = await errors.read(page);
  const problems = seen.messages.concat(errors.pageErrors);
  check(seen.onerror === 0 && seen.unhandledRejections === 0 && seen.consoleErrors === 0 && errors.pageErrors.length === 0,
    `${where}: the page saw errors: ${JSON.stringify(problems)}`);
  return seen;
}

async function visit() {
  const userId = required('USER_ID');
  const tracker = `<script async src="${attr(gateway)}/sdk/ls.js" data-write-key="${attr(writeKey)}"></script>`;
  const site = await servePages(Number(required('PAGE_PORT')), {
    '/landing': sitePage('Landing', tracker, "leadflow.push(['track', 'Pricing Viewed', { plan: 'pro' }]);"),
    '/pricing': sitePage('Pricing', tracker),
    '/signup': sitePage('Sign up', tracker),
  });
  const batches = () => recorded.requests.filter((r) => r.method === 'POST' && r.url === `${gateway}/v1/batch`);
  const beaconBodies = [];
  const sentMessages = () => batches().flatMap((r) => messagesIn(r.body)).concat(beaconBodies.flatMap(messagesIn));
  const answered = (count) => () => batches().filter((r) => r.status !== null || r.failure).length >= count;
  const page = await context.newPage();
  const anonymousIds = [];
  const loaded = async (path) => {
    await page.goto(`${site.origin}${path}`);
    await page.waitForFunction(() => window.leadflow && window.leadflow.loaded === true, null, { timeout: 30_000 });
    anonymousIds.push(await page.evaluate(() => window.localStorage.getItem('lf_anon_id')));
  };

  await loaded('/landing');
  await waitFor('landing: page view and the queued track sent', 30_000, () => sentMessages().length >= 2 && answered(batches().length)());
  await page.screenshot({ path: join(screenshots, 'lsjs-landing.png') });

  await loaded('/pricing');
  await waitFor('pricing: page view sent', 30_000, () => sentMessages().length >= 3 && answered(batches().length)());
  // The call is made as the page hides: ls.js hands it to sendBeacon at once, not to its timer.
  await page.evaluate(() => {
    window.leadflow.track('Demo Requested', { seats: 5 });
    window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false }));
  });
  beaconBodies.push(...await waitFor('pricing: the beacon sent', 30_000, () => page.evaluate(() => window.__beaconBodies.length && window.__beaconBodies)));
  await waitFor('pricing: the beacon answered', 30_000, () => batches().some((r) => r.resourceType === 'ping' && r.status !== null));

  await loaded('/signup');
  await page.evaluate((id) => {
    window.leadflow.identify(id, { name: 'Ada Lovelace', email: 'ada@example.com' });
    window.leadflow.track('Signed Up', { plan: 'pro' });
  }, userId);
  await waitFor('sign-up: page view, identify and track sent and answered', 30_000,
    () => sentMessages().length >= 7 && answered(batches().length)());
  await page.screenshot({ path: join(screenshots, 'lsjs-signup.png') });

  const script = recorded.requests.filter((r) => r.url === `${gateway}/sdk/ls.js`);
  check(script.length >= 1 && script.every((r) => r.status === 200), `ls.js was not served: ${JSON.stringify(script)}`);
  log(`requests: ${JSON.stringify(batches().map(({ body, ...r }) => r))}`);
  const anonymousId = anonymousIds[0];
  check(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(anonymousId ?? ''), `anonymous id ${anonymousId}`);
  check(anonymousIds.every((id) => id === anonymousId), `the anonymous id changed between pages: ${anonymousIds}`);
  const beacons = batches().filter((r) => r.resourceType === 'ping');
  check(beacons.length === 1 && beacons[0].contentType?.startsWith('text/plain'), `one beacon, as text/plain: ${JSON.stringify(beacons)}`);
  for (const r of batches()) {
    check(r.contentType?.startsWith('text/plain'), `${r.url} sent as ${r.contentType}`);
    // A beacon's answer is not the page's to read: only fetches need the CORS header.
    if (r.resourceType === 'fetch') {
      check(r.status === 200 && r.allowOrigin === site.origin, `a batch answered ${r.status}, Access-Control-Allow-Origin ${r.allowOrigin}`);
    } else {
      check(r.failure === null, `the beacon failed: ${r.failure}`);
    }
  }
  const messages = sentMessages();
  check(new Set(messages.map((m) => m.messageId)).size === messages.length, 'a message was sent twice');
  check(messages.every((m) => m.anonymousId === anonymousId), 'a message without the anonymous id');
  const before = messages.filter((m) => !m.userId);
  const after = messages.filter((m) => m.userId);
  check(after.every((m) => m.userId === userId), `a message with another userId: ${JSON.stringify(after)}`);
  const kinds = (list) => list.map((m) => (m.type === 'track' ? m.event : m.type)).sort();
  check(JSON.stringify(kinds(before)) === JSON.stringify(['Demo Requested', 'Pricing Viewed', 'page', 'page', 'page']),
    `anonymous calls: ${kinds(before)}`);
  check(JSON.stringify(kinds(after)) === JSON.stringify(['Signed Up', 'identify']), `known calls: ${kinds(after)}`);
  check(messages.every((m) => m.context?.library?.name === 'leadflow.js' && m.context?.page?.url?.startsWith(site.origin)),
    'a message without its context');
  await assertNoPageErrors(page, 'visit');
  await testPage(anonymousId);
  result.anonymousId = anonymousId;
  result.userId = userId;
  result.anonymous = before.map((m) => ({ messageId: m.messageId, type: m.type, event: m.event ?? null }));
  result.known = after.map((m) => ({ messageId: m.messageId, type: m.type, event: m.event ?? null }));
  await site.close();
}

// The gateway's own test page (/sdk/test.html), in a context of its own: it loads ls.js as its
// query says, and its button's track call is answered 200. It never shows the write key.
async function testPage(visitorsId) {
  const own = await browser.newContext();
  const ownErrors = await probeErrors(own);
  const ownRequests = recordRequests(own, gateway);
  const page = await own.newPage();
  await page.goto(`${gateway}/sdk/test.html?api=${encodeURIComponent(gateway)}&key=${encodeURIComponent(writeKey)}`);
  await page.waitForFunction(() => window.leadflow && window.leadflow.loaded === true, null, { timeout: 30_000 });
  await page.click('#track-pricing');
  const batches = () => ownRequests.requests.filter((r) => r.url === `${gateway}/v1/batch` && r.method === 'POST');
  await waitFor('test page: the track sent and answered', 30_000,
    () => batches().flatMap((r) => messagesIn(r.body)).some((m) => m.event === 'Pricing Viewed') && batches().every((r) => r.status !== null));
  check(batches().every((r) => r.status === 200), `test page: ${JSON.stringify(batches().map(({ body, ...r }) => r))}`);
  const shown = await page.textContent('#anonymous-id');
  check(/^[0-9a-f-]{36}$/.test(shown) && shown !== visitorsId, `test page: anonymous id shown ${shown}`);
  check(!(await page.innerText('body')).includes(writeKey.slice(-12)), 'test page: the write key is shown');
  await page.screenshot({ path: join(screenshots, 'lsjs-test-page.png') });
  const seen = await ownErrors.read(page);
  check(seen.messages.length === 0 && ownErrors.pageErrors.length === 0, `test page errors: ${seen.messages.concat(ownErrors.pageErrors)}`);
  // A link naming another host's script: the page (on the gateway's origin) must not load it.
  const elsewhere = [];
  own.on('request', (request) => { if (new URL(request.url()).hostname === 'tracker.invalid') elsewhere.push(request.url()); });
  await page.goto(`${gateway}/sdk/test.html?api=${encodeURIComponent('https://tracker.invalid')}&key=k`);
  await expectCalls(page, /must be this page's origin or a loopback address/);
  check(elsewhere.length === 0, `test page loaded ${elsewhere}`);
  await own.close();
}

async function expectCalls(page, pattern) {
  await waitFor(`test page: "${pattern}" shown`, 30_000, async () => pattern.test(await page.textContent('#calls')));
}

async function down() {
  const ownCopy = readFileSync(fileURLToPath(new URL('../../sdk/ls.js', import.meta.url)));
  const site = await servePages(Number(required('PAGE_PORT')), {
    '/tracker.js': { type: 'application/javascript', body: ownCopy },
    '/': sitePage('Gateway down', `<script async src="/tracker.js" data-write-key="${attr(writeKey)}" data-api-host="${attr(gateway)}"></script>`,
      "leadflow.push(['track', 'Queued Early']);"),
    '/script-down': sitePage('Tracker unreachable', `<script async src="${attr(gateway)}/sdk/ls.js" data-write-key="${attr(writeKey)}"></script>`,
      "leadflow.push(['track', 'Queued Early']);"),
  });
  const batches = () => recorded.requests.filter((r) => r.url === `${gateway}/v1/batch`);
  const page = await context.newPage();
  await page.goto(`${site.origin}/`);
  await page.waitForFunction(() => window.leadflow && window.leadflow.loaded === true, null, { timeout: 30_000 });
  await page.evaluate(() => {
    const lf = window.leadflow;
    lf.track('Pricing Viewed', { plan: 'pro' });
    lf.page('Pricing');
    lf.identify('down-user', { name: 'Ada' });
    for (const odd of [undefined, null, 42, {}, [], () => {}]) { lf.track(odd, odd); lf.page(odd, odd); lf.identify(odd, odd); lf.push(odd); }
  });
  // Every batch is tried three times (about 7 s of backoff) and then dropped.
  await waitFor('the tracker tried the closed port and gave up', 60_000,
    () => batches().filter((r) => r.failure).length >= 3 && batches().every((r) => r.failure));
  await page.evaluate(() => {
    window.leadflow.track('Leaving');
    window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false }));
  });
  await waitFor('the beacon to the closed port ended', 30_000, () => batches().some((r) => r.resourceType === 'ping' && (r.failure || r.status !== null)));
  await page.screenshot({ path: join(screenshots, 'lsjs-gateway-down.png') });
  const seenOnPage = await assertNoPageErrors(page, 'gateway down');

  const second = await context.newPage();
  await second.goto(`${site.origin}/script-down`);
  await waitFor('the tracker script failed to load', 30_000,
    () => recorded.requests.some((r) => r.url === `${gateway}/sdk/ls.js` && r.failure));
  const queue = await second.evaluate(() => (Array.isArray(window.leadflow) ? window.leadflow.length : -1));
  check(queue === 1, `without the tracker, the page's queue should still hold its call: ${queue}`);
  await assertNoPageErrors(second, 'tracker unreachable');
  result.failedRequests = batches().filter((r) => r.failure).length;
  result.browserNetworkLines = errors.browserNetworkLines.length;
  result.scriptErrors = seenOnPage;
  await site.close();
}

try {
  if (mode === 'visit') await visit();
  else if (mode === 'down') await down();
  else throw new Error(`MODE ${mode}: expected visit or down`);
  log('passed');
} catch (error) {
  log(`FAILED: ${error.message}`);
  if (errors.pageErrors.length) log(`page errors: ${errors.pageErrors.join(' | ')}`);
  await browser.close();
  process.exit(1);
}
await browser.close();
printResult(result);
