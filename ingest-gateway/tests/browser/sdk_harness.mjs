// What the SDK drivers (sdk_node.mjs, sdk_analytics_next.mjs, sdk_lsjs.mjs) share: a page
// server on its own 127.0.0.1 port (another origin than the gateway's), a record of every request
// a browser context made and how it ended, a probe of the errors a page's scripts saw, and the
// one line of JSON a driver prints for the Rust test that runs it.

import { createServer } from 'node:http';

/** Prints `value` as the driver's result: one line `RESULT {json}` (the Rust test parses it). */
export function printResult(value) {
  console.log(`RESULT ${JSON.stringify(value)}`);
}

/** Throws `message` unless `condition`. */
export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/**
 * Serves `files` ({ '/path': { type, body } }) on 127.0.0.1:`port` (0: any free port). Resolves
 * to { origin, close }.
 */
export function servePages(port, files) {
  const server = createServer((request, response) => {
    const path = new URL(request.url, 'http://page').pathname;
    if (path === '/favicon.ico') {
      response.writeHead(204).end(); // asked by every page; a 404 would be a console error
      return;
    }
    const file = files[path];
    if (!file) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    response.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      resolve({
        origin: `http://127.0.0.1:${server.address().port}`,
        close: () => new Promise((done) => server.close(done)),
      });
    });
  });
}

/**
 * Records the requests `context`'s pages make to `origin` (method, URL, Content-Type, body,
 * status, the CORS header answered, or the failure). `settled()` is how many have ended.
 */
export function recordRequests(context, origin) {
  const requests = [];
  const entry = new Map();
  context.on('request', (request) => {
    if (!request.url().startsWith(origin)) return;
    const seen = {
      method: request.method(),
      url: request.url(),
      contentType: request.headers()['content-type'] ?? null,
      resourceType: request.resourceType(),
      body: request.postData(),
      status: null,
      allowOrigin: null,
      failure: null,
    };
    entry.set(request, seen);
    requests.push(seen);
  });
  context.on('requestfinished', async (request) => {
    const seen = entry.get(request);
    if (!seen) return;
    const response = await request.response().catch(() => null);
    seen.status = response ? response.status() : 0;
    seen.allowOrigin = response ? (await response.allHeaders())['access-control-allow-origin'] ?? null : null;
  });
  context.on('requestfailed', (request) => {
    const seen = entry.get(request);
    if (seen) seen.failure = request.failure()?.errorText ?? 'failed';
  });
  const settled = () => requests.filter((r) => r.status !== null || r.failure !== null).length;
  return { requests, settled };
}

/**
 * Counts, in every page of `context`, what its scripts saw go wrong: window.onerror,
 * unhandled rejections and console.error / console.warn calls (wrapped before any script runs).
 * `read(page)` answers the counts and messages; `pageErrors` holds Playwright's 'pageerror's and
 * the console's error lines, `browserNetworkLines` the ones the browser itself logs for a
 * failed load ("Failed to load resource: ..."), which are not a script's doing.
 */
export async function probeErrors(context) {
  await context.addInitScript(() => {
    const seen = { onerror: 0, unhandledRejections: 0, consoleErrors: 0, messages: [] };
    Object.defineProperty(window, '__errorsSeen', { value: seen });
    window.addEventListener('error', (event) => {
      // A failed <script src> or <img> fires 'error' on the element, not as a script error.
      if (event.target !== window && event.target && event.target.tagName) return;
      seen.onerror++;
      seen.messages.push(`onerror: ${event.message}`);
    });
    window.addEventListener('unhandledrejection', (event) => {
      seen.unhandledRejections++;
      seen.messages.push(`unhandled rejection: ${event.reason}`);
    });
    for (const level of ['error', 'warn']) {
      const original = console[level].bind(console);
      console[level] = (...args) => {
        seen.consoleErrors++;
        seen.messages.push(`console.${level}: ${args.map(String).join(' ')}`);
        original(...args);
      };
    }
  }, undefined);
  const pageErrors = [];
  const browserNetworkLines = [];
  const watch = (page) => {
    page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() !== 'error' && message.type() !== 'warning') return;
      if (/^Failed to load resource: net::/.test(message.text())) browserNetworkLines.push(message.text());
      else pageErrors.push(`console ${message.type()}: ${message.text()}`);
    });
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  const read = (page) => page.evaluate(() => window.__errorsSeen);
  return { pageErrors, browserNetworkLines, read };
}

/** Polls `probe` every 100 ms until it answers truthy; throws `what` after `ms`. */
export async function waitFor(what, ms, probe) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what}: not within ${ms / 1000} s`);
}

/** The messages of a /v1 request body (a batch's `batch`, or the single call itself). */
export function messagesIn(body) {
  if (!body) return [];
  try {
    const parsed = JSON.parse(body);
    return Array.isArray(parsed.batch) ? parsed.batch : [parsed];
  } catch {
    return [];
  }
}
