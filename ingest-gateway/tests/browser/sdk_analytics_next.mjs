// The real @segment/analytics-next from npm, bundled by esbuild (build_bundle.mjs), in headless
// Chromium on a page of another origin than the gateway's (http://127.0.0.1:PAGE_PORT, which the
// project lists in allowedOrigins): identify, track and page go to the gateway's /v1 through
// CORS as text/plain (with the write key as Basic auth too, so Chromium sends a preflight,
// which the gateway must allow). Two ways of configuring it, each in a browser context of its own:
//   - cdnSettings: the settings given in the page, the Segment.io destination pointed at
//     GATEWAY/v1 over http;
//   - cdnURL: the page names only the gateway, and analytics.js loads the gateway's settings
//     document (GET /v1/projects/{writeKey}/settings) as it would from Segment's CDN.
// Then a page of an origin the project does not list: the browser must not let it through.
// Checks every request the pages made (method, URL, Content-Type, status, the CORS header
// answered), and prints the messageIds the SDK generated
// (`RESULT {...}`) for ingest-gateway/tests/sdk_browser.rs, which checks that they were scored.
//
// Env: GATEWAY_URL, WRITE_KEY, RUN, PAGE_PORT, CHROMIUM, SCREENSHOT_DIR.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { logger, required } from './harness.mjs';
import { ensureBundle } from './build_bundle.mjs';
import { check, messagesIn, printResult, probeErrors, recordRequests, servePages, waitFor } from './sdk_harness.mjs';

const log = logger('analytics-next');
const gateway = required('GATEWAY_URL');
const writeKey = required('WRITE_KEY');
const run = required('RUN');
const screenshots = required('SCREENSHOT_DIR');

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>A site using analytics-next</title>
<script src="/analytics-next.js"></script>
<script>
  // Loads analytics-next as the test says and makes the three calls; answers what each call's
  // context says (type, messageId, and why delivery failed, if it did).
  window.runSdk = async ({ writeKey, gateway, variant, userId }) => {
    const { AnalyticsBrowser } = window.SegmentAnalytics;
    const apiHost = gateway.replace(/^https?:\\/\\//, '') + '/v1';
    const [analytics] = variant === 'cdnURL'
      ? await AnalyticsBrowser.load({ writeKey, cdnURL: gateway })
      : await AnalyticsBrowser.load(
          {
            writeKey,
            cdnSettings: {
              integrations: { 'Segment.io': { apiKey: writeKey, apiHost, protocol: 'http' } },
              metrics: { sampleRate: 0 },
              remotePlugins: [],
            },
          },
          { integrations: { 'Segment.io': { apiHost, protocol: 'http' } } },
        );
    const contexts = [
      await analytics.identify(userId, { name: 'Grace Hopper', email: 'grace@example.com' }),
      await analytics.track('Signed Up', { plan: 'pro' }),
      await analytics.page('Docs', 'Pricing', { path: '/pricing' }),
    ];
    document.body.dataset.sent = variant;
    return contexts.map((ctx) => ({
      type: ctx.event.type,
      messageId: ctx.event.messageId,
      failed: ctx.failedDelivery() ? String(ctx.failedDelivery().reason) : null,
    }));
  };
</script></head>
<body><h1>A site using analytics-next</h1><p>It sends to the LeadFlow gateway.</p></body></html>`;

const bundle = await ensureBundle(log);
const files = {
  '/': { type: 'text/html; charset=utf-8', body: PAGE },
  '/analytics-next.js': { type: 'application/javascript', body: readFileSync(bundle) },
};
const allowed = await servePages(Number(required('PAGE_PORT')), files);
const notAllowed = await servePages(0, files);
const browser = await chromium.launch({ executablePath: required('CHROMIUM') });

// One variant in a fresh context from `site`: the SDK's answers, the requests and the errors.
async function sendFrom(site, variant, userId) {
  const context = await browser.newContext();
  const errors = await probeErrors(context);
  const recorded = recordRequests(context, gateway);
  const page = await context.newPage();
  await page.goto(`${site.origin}/`);
  const answers = await page.evaluate((args) => window.runSdk(args), { writeKey, gateway, variant, userId });
  return { context, page, errors, recorded, answers };
}

const result = { pageOrigin: allowed.origin, variants: {} };
try {
  for (const variant of ['cdnSettings', 'cdnURL']) {
    const userId = `${variant === 'cdnURL' ? 'next-cdn' : 'next'} user ${run}`;
    const sent = await sendFrom(allowed, variant, userId);
    const { requests } = sent.recorded;
    const posts = () => requests.filter((r) => r.method === 'POST');
    // Every call's request answered (the SDK awaits delivery, but the record's events may lag).
    await waitFor(`${variant}: three POSTs answered`, 30_000, () => posts().filter((r) => r.status !== null || r.failure).length >= 3);
    await sent.page.screenshot({ path: join(screenshots, `analytics-next-${variant}.png`) });
    const seen = (await sent.errors.read(sent.page));
    log(`${variant}: requests ${JSON.stringify(requests.map(({ body, ...r }) => r))}`);
    check(sent.answers.every((a) => !a.failed), `${variant}: the SDK says delivery failed: ${JSON.stringify(sent.answers)}`);
    for (const r of posts()) {
      check(r.contentType === 'text/plain', `${variant}: ${r.url} was sent as ${r.contentType}, not text/plain`);
      check(r.status === 200 && !r.failure, `${variant}: ${r.url} answered ${r.status} ${r.failure ?? ''}`);
      check(r.allowOrigin === allowed.origin, `${variant}: ${r.url} answered Access-Control-Allow-Origin ${r.allowOrigin}, not ${allowed.origin}`);
    }
    const paths = posts().map((r) => new URL(r.url).pathname).sort();
    check(JSON.stringify(paths) === JSON.stringify(['/v1/i', '/v1/p', '/v1/t']), `${variant}: posted to ${paths}`);
    if (variant === 'cdnURL') {
      const settings = requests.filter((r) => r.method === 'GET' && r.url.endsWith(`/v1/projects/${writeKey}/settings`));
      check(settings.length === 1 && settings[0].status === 200 && settings[0].allowOrigin === allowed.origin,
        `cdnURL: the settings document was not loaded through CORS: ${JSON.stringify(settings)}`);
    }
    const bodies = posts().flatMap((r) => messagesIn(r.body));
    const sentIds = bodies.map((m) => m.messageId).sort();
    const answeredIds = sent.answers.map((a) => a.messageId).sort();
    check(JSON.stringify(sentIds) === JSON.stringify(answeredIds), `${variant}: sent ${sentIds}, the SDK answered ${answeredIds}`);
    check(bodies.every((m) => m.userId === userId), `${variant}: a call without the userId`);
    check(seen.onerror + seen.unhandledRejections + seen.consoleErrors === 0 && sent.errors.pageErrors.length === 0,
      `${variant}: the page saw errors: ${JSON.stringify(seen.messages.concat(sent.errors.pageErrors))}`);
    result.variants[variant] = {
      userId,
      anonymousId: bodies[0]?.anonymousId ?? null,
      messages: sent.answers.map(({ type, messageId }) => ({ type, messageId })),
      requests: requests.map(({ body, ...r }) => r),
    };
    await sent.context.close();
  }

  // An origin no project lists: the gateway grants it nothing, so the browser blocks the calls.
  const blocked = await sendFrom(notAllowed, 'cdnSettings', `next-blocked user ${run}`);
  await waitFor('the other origin: a call refused', 30_000, () => blocked.errors.pageErrors.some((e) => /CORS/.test(e)));
  const delivered = blocked.recorded.requests.filter((r) => r.method === 'POST' && r.status === 200 && r.allowOrigin);
  check(delivered.length === 0, `a page of ${notAllowed.origin} got answers through CORS: ${JSON.stringify(delivered)}`);
  result.otherOrigin = { origin: notAllowed.origin, corsErrors: blocked.errors.pageErrors.filter((e) => /CORS/.test(e)).length };
  await blocked.context.close();
  log('passed');
} catch (error) {
  log(`FAILED: ${error.message}`);
  await browser.close();
  process.exit(1);
}
await browser.close();
await allowed.close();
await notAllowed.close();
printResult(result);
