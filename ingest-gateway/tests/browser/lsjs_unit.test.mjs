// The tracker's (ingest-gateway/sdk/ls.js) logic without a browser: ls.js runs in a node `vm`
// context with stand-ins for window, document, storage, fetch and sendBeacon, so that the
// queue, the message shape, the storage fallbacks, the retries and the error swallowing are
// checked in milliseconds. The browser tests (sdk_lsjs.mjs) check it in Chromium on the stack.
// Run: node --test lsjs_unit.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const source = readFileSync(fileURLToPath(new URL('../../sdk/ls.js', import.meta.url)), 'utf8');
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// A page that includes ls.js: `options` says what the browser has. Returns the window, the
// requests it made, and `tick(ms)` to run the timers due within `ms` (fake time).
function page({
  queue,
  attributes = { 'data-write-key': 'wk_test', 'data-api-host': 'http://gateway.test' },
  storage = 'local',
  fetchAnswers = [],
  beacon = 'accept',
  randomUUID = true,
} = {}) {
  const requests = [];
  const timers = [];
  let clock = 0;
  const listeners = {};
  const store = new Map();
  let cookie = '';
  const localStorage = {
    getItem: (k) => { if (storage !== 'local') throw new Error('blocked'); return store.has(k) ? store.get(k) : null; },
    setItem: (k, v) => { if (storage !== 'local') throw new Error('blocked'); store.set(k, String(v)); },
    removeItem: (k) => { if (storage !== 'local') throw new Error('blocked'); store.delete(k); },
  };
  const document = {
    title: 'Pricing — Example',
    referrer: 'https://search.example/',
    visibilityState: 'visible',
    currentScript: { src: 'http://gateway.test/sdk/ls.js', getAttribute: (name) => attributes[name] ?? null },
    getElementsByTagName: () => [],
    addEventListener: (type, fn) => { (listeners[type] ||= []).push(fn); },
    get cookie() { if (storage === 'none') throw new Error('cookies blocked'); return cookie; },
    set cookie(value) {
      if (storage === 'none') throw new Error('cookies blocked');
      const [pair] = value.split(';');
      const [k] = pair.split('=');
      const kept = cookie.split('; ').filter((c) => c && !c.startsWith(`${k}=`));
      if (!/max-age=0/.test(value)) kept.push(pair);
      cookie = kept.join('; ');
    },
  };
  const window = {
    location: {
      pathname: '/pricing', href: 'https://shop.example/pricing?utm_source=news&utm_campaign=spring+sale',
      search: '?utm_source=news&utm_campaign=spring+sale', origin: 'https://shop.example',
    },
    navigator: {
      userAgent: 'test-agent', language: 'en-GB',
      sendBeacon: beacon === 'missing' ? undefined : (url, blob) => {
        requests.push({ via: 'beacon', url, type: blob.type, blob });
        return beacon === 'accept';
      },
    },
    crypto: {
      randomUUID: randomUUID ? () => globalThis.crypto.randomUUID() : undefined,
      getRandomValues: (a) => globalThis.crypto.getRandomValues(a),
    },
    localStorage,
    addEventListener: (type, fn) => { (listeners[type] ||= []).push(fn); },
    fetch: (url, init) => {
      requests.push({ via: 'fetch', url, init, body: JSON.parse(init.body) });
      const answer = fetchAnswers.length ? fetchAnswers.shift() : 200;
      if (answer === 'network') return Promise.reject(new TypeError('Failed to fetch'));
      return Promise.resolve({ ok: answer < 300, status: answer });
    },
    setTimeout: (fn, ms) => { timers.push({ at: clock + ms, fn }); return timers.length; },
    leadflow: queue,
  };
  // As in a browser, the window is the global object.
  Object.assign(window, { window, document, Blob, URL });
  vm.runInContext(source, vm.createContext(window));
  const tick = async (ms) => {
    const until = clock + ms;
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve)); // let fetch promises settle
      const due = timers.filter((t) => t.at <= until && !t.done).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      clock = Math.max(clock, due.at);
      due.done = true;
      due.fn();
    }
    clock = until;
  };
  const fire = (type) => (listeners[type] || []).forEach((fn) => fn({ type }));
  return { window, document, requests, tick, fire, store, cookie: () => cookie };
}

const messagesOf = (requests) => requests.filter((r) => r.via === 'fetch').flatMap((r) => r.body.batch);

test('on load it sends a page view, then the queued calls, in the Segment shape', async () => {
  const p = page({ queue: [['track', 'Signed Up', { plan: 'pro' }], ['identify', 'user 42', { name: 'Ada' }]] });
  await p.tick(1000);
  assert.equal(p.requests.length, 1);
  const [request] = p.requests;
  assert.equal(request.url, 'http://gateway.test/v1/batch');
  assert.equal(request.init.method, 'POST');
  assert.equal(request.init.headers['Content-Type'], 'text/plain');
  assert.equal(request.init.keepalive, true);
  assert.equal(request.body.writeKey, 'wk_test');
  assert.ok(!Number.isNaN(Date.parse(request.body.sentAt)));
  const [page_, track, identify] = request.body.batch;
  assert.deepEqual([page_.type, track.type, identify.type], ['page', 'track', 'identify']);
  const anonymousId = p.store.get('lf_anon_id');
  assert.match(anonymousId, UUID_V4);
  for (const m of request.body.batch) {
    assert.match(m.messageId, UUID_V4);
    assert.equal(m.anonymousId, anonymousId);
    assert.ok(!Number.isNaN(Date.parse(m.originalTimestamp)));
    assert.deepEqual(m.context.library, { name: 'leadflow.js', version: '1.0.0' });
    assert.deepEqual(m.context.page, {
      path: '/pricing', url: 'https://shop.example/pricing?utm_source=news&utm_campaign=spring+sale',
      referrer: 'https://search.example/', title: 'Pricing — Example', search: '?utm_source=news&utm_campaign=spring+sale',
    });
    assert.deepEqual(m.context.campaign, { source: 'news', name: 'spring sale' });
    assert.equal(m.context.userAgent, 'test-agent');
  }
  assert.equal(new Set(request.body.batch.map((m) => m.messageId)).size, 3);
  assert.equal(page_.properties.path, '/pricing');
  assert.equal(track.event, 'Signed Up');
  assert.deepEqual(track.properties, { plan: 'pro' });
  assert.equal(track.userId, undefined, 'the track was queued before identify');
  assert.equal(identify.userId, 'user 42');
  assert.deepEqual(identify.traits, { name: 'Ada' });
  assert.equal(p.store.get('lf_user_id'), 'user 42');
});

test('after identify, calls carry the userId and the same anonymousId', async () => {
  const p = page({ queue: [] });
  p.window.leadflow.identify('u-1');
  p.window.leadflow.track('Demo Requested');
  await p.tick(1000);
  const [, , track] = messagesOf(p.requests);
  assert.equal(track.userId, 'u-1');
  assert.equal(track.anonymousId, p.store.get('lf_anon_id'));
  p.window.leadflow.reset();
  assert.equal(p.store.has('lf_user_id'), false);
});

test('a load() call in the queue configures it; without a write key nothing is sent', async () => {
  const p = page({ attributes: {}, queue: [['track', 'Early'], ['load', { writeKey: 'wk_q', apiHost: 'http://other.test/' }]] });
  await p.tick(1000);
  assert.equal(p.requests.length, 1);
  assert.equal(p.requests[0].url, 'http://other.test/v1/batch');
  assert.deepEqual(p.requests[0].body.batch.map((m) => m.type), ['page', 'track']);

  const unconfigured = page({ attributes: {}, queue: [['track', 'Early']] });
  await unconfigured.tick(5000);
  assert.equal(unconfigured.requests.length, 0);
  unconfigured.window.leadflow.load({ writeKey: 'wk_late', apiHost: 'http://late.test', autoPage: false });
  await unconfigured.tick(1000);
  assert.deepEqual(messagesOf(unconfigured.requests).map((m) => m.event), ['Early']);
});

test('the api host defaults to the origin the script came from', async () => {
  const p = page({ attributes: { 'data-write-key': 'wk', 'data-auto-page': 'false' }, queue: [] });
  p.window.leadflow.track('X');
  await p.tick(1000);
  assert.equal(p.requests[0].url, 'http://gateway.test/v1/batch');
  assert.deepEqual(messagesOf(p.requests).map((m) => m.type), ['track']);
});

test('the anonymous id falls back to a cookie, then to memory, and to getRandomValues', async () => {
  const cookies = page({ storage: 'cookie', randomUUID: false, queue: [] });
  await cookies.tick(1000);
  const id = /lf_anon_id=([^;]+)/.exec(cookies.cookie())[1];
  assert.match(id, UUID_V4);
  assert.equal(messagesOf(cookies.requests)[0].anonymousId, id);

  const none = page({ storage: 'none', queue: [] });
  none.window.leadflow.track('A');
  await none.tick(1000);
  const ids = new Set(messagesOf(none.requests).map((m) => m.anonymousId));
  assert.equal(ids.size, 1, 'one id for the page view, kept in memory');
});

test('a failed send is retried with the same messageIds, at most three times', async () => {
  const p = page({ queue: [], fetchAnswers: ['network', 503, 'network'] });
  await p.tick(60_000);
  const sends = p.requests.filter((r) => r.via === 'fetch');
  assert.equal(sends.length, 3);
  const ids = sends.map((r) => r.body.batch.map((m) => m.messageId).join());
  assert.equal(new Set(ids).size, 1, 'every retry resends the same messages');
});

test('a 400 is not retried; a later call is still sent', async () => {
  const p = page({ queue: [], fetchAnswers: [400] });
  await p.tick(5000);
  p.window.leadflow.track('After');
  await p.tick(5000);
  assert.deepEqual(p.requests.map((r) => r.body.batch[0].type), ['page', 'track']);
});

test('on pagehide what is queued goes by sendBeacon as text/plain, by fetch when it refuses', async () => {
  for (const beacon of ['accept', 'refuse', 'missing']) {
    const p = page({ queue: [], beacon });
    p.window.leadflow.track('Leaving');
    p.fire('pagehide');
    const beacons = p.requests.filter((r) => r.via === 'beacon');
    const fetches = p.requests.filter((r) => r.via === 'fetch');
    if (beacon !== 'missing') {
      assert.equal(beacons.length, 1, beacon);
      assert.equal(beacons[0].url, 'http://gateway.test/v1/batch');
      assert.equal(beacons[0].type, 'text/plain');
      const body = JSON.parse(await beacons[0].blob.text());
      assert.deepEqual(body.batch.map((m) => m.type), ['page', 'track']);
    }
    assert.equal(fetches.length, beacon === 'accept' ? 0 : 1, beacon);
    if (fetches.length) assert.equal(fetches[0].init.keepalive, true);
    const sent = p.requests.length;
    await p.tick(5000);
    assert.equal(p.requests.length, sent, `${beacon}: nothing is sent twice`);
  }
});

test('no entry point throws, whatever it is given or whatever the browser does', async () => {
  const p = page({ queue: [] });
  p.window.fetch = () => { throw new Error('fetch refused'); };
  p.window.navigator.sendBeacon = () => { throw new Error('beacon refused'); };
  const lf = p.window.leadflow;
  const bad = [undefined, null, 42, {}, [], () => {}, Symbol('s'), { toString() { throw new Error('x'); } }];
  for (const a of bad) {
    for (const b of bad) {
      assert.doesNotThrow(() => { lf.track(a, b); lf.page(a, b); lf.identify(a, b); lf.load(a); lf.push(a); lf.push([a, b]); });
    }
  }
  await assert.doesNotReject(p.tick(60_000));
  assert.doesNotThrow(() => p.fire('pagehide'));
});

test('a second copy of the script leaves the first one in place', () => {
  const p = page({ queue: [] });
  const first = p.window.leadflow;
  vm.runInContext(source, vm.createContext(p.window));
  assert.equal(p.window.leadflow, first);
});
