// The real server SDKs from npm, @segment/analytics-node and @rudderstack/rudder-sdk-node,
// pointed at the gateway's /v1/batch with a project's write key: each sends identify, track and
// page calls with explicit messageIds, and this prints them (`RESULT {...}`) for
// ingest-gateway/tests/sdk_stack.rs, which checks that they were scored under those eventIds.
//
// MODE=send: straight to the gateway.
// MODE=retry: through a proxy in this script that forwards the SDK's first batch to the gateway
// and then answers the SDK 503, as if the answer had been lost; the SDK resends the same batch
// (forwarded as it is from then on), then sends one more call, a marker that follows the
// duplicates on the lead's partition. The proxy's log of what it forwarded is printed too.
//
// Env: GATEWAY_URL (http://127.0.0.1:PORT), WRITE_KEY, RUN (unique text for ids), MODE.

import { createServer, request as httpRequest } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { Analytics as SegmentAnalytics } from '@segment/analytics-node';
import RudderAnalytics from '@rudderstack/rudder-sdk-node';
import { logger, required } from './harness.mjs';
import { check, messagesIn, printResult } from './sdk_harness.mjs';

const log = logger('sdk-node');
const gatewayUrl = required('GATEWAY_URL');
const writeKey = required('WRITE_KEY');
const run = required('RUN');
const mode = required('MODE');

// Identify, track and page of one user, with messageIds of this run's. The userId has a space,
// which the gateway keeps reversibly ("b64." lead ids): SDK user ids are free text.
function callsOf(sdk) {
  const userId = `${sdk} user ${run}`;
  const id = (what) => `${run}-${sdk}-${what}`;
  return {
    userId,
    identify: {
      userId, messageId: id('identify'),
      traits: { name: 'Ada Lovelace', email: `ada.${sdk}@example.com`, company: 'Analytical Engines' },
    },
    track: { userId, messageId: id('track'), event: 'Signed Up', properties: { plan: 'pro' } },
    page: { userId, messageId: id('page'), name: 'Pricing', properties: { path: '/pricing', url: 'https://example.com/pricing' } },
    marker: { userId, messageId: id('marker'), event: 'Demo Requested', properties: {} },
  };
}

async function sendWithSegment(host, calls, withMarker) {
  const analytics = new SegmentAnalytics({
    writeKey, host, path: '/v1/batch', maxEventsInBatch: 15, flushInterval: 200, maxRetries: 3,
  });
  const errors = [];
  const statuses = [];
  analytics.on('error', (error) => errors.push(String(error?.reason ?? error?.message ?? error)));
  analytics.on('http_response', (response) => statuses.push(response.status));
  const delivered = (call) => (method) => new Promise((resolve, reject) => {
    analytics[method](call, (error) => (error ? reject(error) : resolve()));
  });
  await Promise.all([
    delivered(calls.track)('track'),
    delivered(calls.identify)('identify'),
    delivered(calls.page)('page'),
  ]);
  if (withMarker) await delivered(calls.marker)('track');
  await analytics.closeAndFlush({ timeout: 30_000 });
  check(errors.length === 0, `analytics-node reported errors: ${errors.join(' | ')}`);
  return statuses;
}

async function sendWithRudder(host, calls, withMarker) {
  // The SDK's defaults, as RudderStack users would meet the gateway: gzip on, which makes its
  // HTTP client (axios, given a Buffer) send Content-Type application/x-www-form-urlencoded.
  // errorHandler: a failed flush is reported through the calls' callbacks, not thrown out of
  // the SDK's own timer as an unhandled rejection that would end this script unreported.
  const client = new RudderAnalytics(writeKey, {
    dataPlaneUrl: host, flushAt: 15, flushInterval: 200, logLevel: 'error', errorHandler: () => {},
  });
  // An axios error: its message is only the status, the gateway's answer says why.
  const described = (error) => {
    const sentAs = error.config?.headers?.['Content-Type'] ?? '(none)';
    const answer = error.response ? JSON.stringify(error.response.data) : '';
    return new Error(`${error.message}; sent as Content-Type ${sentAs}; the gateway answered ${answer}`);
  };
  const delivered = (method, call) => new Promise((resolve, reject) => {
    client[method](call, (error) => (error ? reject(described(error)) : resolve()));
  });
  // RudderStack sends the first call of a client alone, at once: a scored one, so that the
  // batch the retry test fails holds points.
  await Promise.all([
    delivered('track', calls.track),
    delivered('identify', calls.identify),
    delivered('page', calls.page),
  ]);
  if (withMarker) await delivered('track', calls.marker);
  await client.flush();
}

// The proxy of MODE=retry: the first POST is forwarded and then answered 503; every other
// request is forwarded and answered as the gateway answered it. `log` lists what it did.
function startFaultProxy(upstream) {
  const target = new URL(upstream);
  const proxyLog = [];
  const server = createServer((incoming, outgoing) => {
    const chunks = [];
    incoming.on('data', (chunk) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks);
      const first = incoming.method === 'POST' && !proxyLog.some((entry) => entry.method === 'POST');
      const forwarded = httpRequest(
        { host: target.hostname, port: target.port, path: incoming.url, method: incoming.method, headers: { ...incoming.headers, host: target.host } },
        (answer) => {
          const answerChunks = [];
          answer.on('data', (chunk) => answerChunks.push(chunk));
          answer.on('end', () => {
            const plain = incoming.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body;
            proxyLog.push({
              method: incoming.method,
              path: incoming.url,
              gatewayStatus: answer.statusCode,
              answeredSdk: first ? 503 : answer.statusCode,
              messageIds: messagesIn(plain.toString('utf8')).map((m) => m.messageId),
            });
            if (first) {
              outgoing.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"injected by the test"}');
            } else {
              outgoing.writeHead(answer.statusCode, answer.headers).end(Buffer.concat(answerChunks));
            }
          });
        },
      );
      forwarded.on('error', (error) => {
        proxyLog.push({ method: incoming.method, path: incoming.url, error: error.message });
        outgoing.writeHead(502).end();
      });
      forwarded.end(body);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${server.address().port}`,
      log: proxyLog,
      close: () => new Promise((done) => server.close(done)),
    }));
  });
}

const result = { mode, sdks: {} };
const failures = [];
for (const [sdk, send] of [['segment', sendWithSegment], ['rudder', sendWithRudder]]) {
  try {
    await sendOne(sdk, send);
  } catch (error) {
    // The other SDK still runs: a failure of one says nothing about the other.
    failures.push(`${sdk}: ${error.message}`);
    log(`${sdk} FAILED: ${error.message}`);
  }
}
printResult(result);
if (failures.length) {
  log(`FAILED: ${failures.join(' | ')}`);
  process.exit(1);
}

async function sendOne(sdk, send) {
  const calls = callsOf(mode === 'retry' ? `${sdk}-retry` : sdk);
  const ids = {
    identify: calls.identify.messageId, track: calls.track.messageId, page: calls.page.messageId,
  };
  if (mode === 'send') {
    await send(gatewayUrl, calls, false);
    result.sdks[sdk] = { userId: calls.userId, messageIds: ids };
  } else if (mode === 'retry') {
    const proxy = await startFaultProxy(gatewayUrl);
    await send(proxy.url, calls, true);
    await proxy.close();
    const posts = proxy.log.filter((entry) => entry.method === 'POST');
    log(`${sdk} through the proxy: ${JSON.stringify(posts)}`);
    check(posts.length >= 2 && posts[0].answeredSdk === 503, `${sdk}: the proxy did not fail a first batch`);
    check(posts.every((p) => p.gatewayStatus === 200), `${sdk}: the gateway did not take every request: ${JSON.stringify(posts)}`);
    const [failed, retried] = posts;
    check(
      JSON.stringify(failed.messageIds) === JSON.stringify(retried.messageIds) && failed.messageIds.length > 0,
      `${sdk}: the SDK's next request after the 503 was not the same batch: ${JSON.stringify(posts)}`,
    );
    ids.marker = calls.marker.messageId;
    result.sdks[sdk] = { userId: calls.userId, messageIds: ids, retried: failed.messageIds, proxyLog: proxy.log };
  } else {
    throw new Error(`MODE ${mode}: expected send or retry`);
  }
  log(`${sdk}: sent ${Object.values(ids).join(', ')}`);
}
